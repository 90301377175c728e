//! Per-link capture: every link is watched at its `a` end, by one AF_PACKET socket per node
//! for the `a` ends there (a kernel filter keeps the node's other interfaces out), opened
//! inside that node before any traffic, with a receive ring (TPACKET_V3) mapped into this
//! process and drained by its own thread until stopped. The kernel copies each frame into the ring as it
//! passes (no clone of the packet for a socket queue, no system call per packet to read it);
//! frames are parsed where they lie. Packet times are the kernel's timestamps.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::lab::{Gate, Lab};
use crate::model::{FlowSpec, Topology};
use crate::observe::packet;
use crate::observe::{Frame, Sightings};

/// How long a capture thread sleeps between two drains of its ring. It never waits on the
/// socket itself: a reader asleep in poll(2) makes the kernel wake it for every block, and
/// wakeups cost more than forwarding a packet (perf: ~35% of a 3000-flow run, per packet).
/// With nobody waiting, a frame is only copied; the ring holds far more than arrives in this
/// time.
const NAP: Duration = Duration::from_millis(1);

/// Running captures; [`Capture::stop`] returns what they saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    last_ns: Arc<AtomicU64>,
    /// ICMP errors seen on the watched links.
    icmp_errors: Arc<AtomicU64>,
    threads: Vec<JoinHandle<io::Result<NodeCapture>>>,
    /// Wall-clock time the captures started, for pcap timestamps.
    pub started: std::time::SystemTime,
}

/// What one node's capture thread returns: its links' sightings (by link index), the links,
/// the packets the kernel dropped, (when kept) the whole frames, and its ring, to be closed
/// off the caller's path.
type NodeCapture = (
    Vec<(usize, Sightings)>,
    Vec<usize>,
    u32,
    Vec<Frame>,
    Option<Ring>,
);

/// A link's `a` end, as its node's capture thread reads it.
#[derive(Debug, Clone)]
struct End {
    link: usize,
    iface: String,
    mac: [u8; 6],
    /// Whether its ICMP errors are counted.
    watched: bool,
}

/// The most `a` ends one socket watches (its filter's jumps count 255 at most).
const ENDS_PER_SOCKET: usize = 128;

/// Packets the kernel dropped before a capture thread could read them, with the links that
/// socket watched (by index).
pub type Losses = Vec<(Vec<usize>, u32)>;

/// Each capture's ring: [`BLOCKS`] blocks of at most [`BLOCK`] bytes, about twenty thousand
/// small frames (a frame takes its ~100 bytes and an 80-byte header). The kernel hands a block
/// over when it is full or [`RETIRE_MS`] after its first frame, so at a trickle each block
/// holds a few frames: many blocks give a thread held back from its CPU (a busy 2-core machine
/// can hold it for tens of milliseconds) half a second before frames are lost.
const BLOCK: usize = 1 << 16;
const BLOCKS: usize = 64;
/// The smallest block: two pages.
const MIN_BLOCK: usize = 1 << 13;
/// What a frame takes in a block, at most, for the harness's own small packets.
const FRAME_ROOM: usize = 256;

/// The block size for a run whose every link sees at most `frames` frames: half the blocks
/// (the other half may be handed over part full) hold them all, so that no delay of the
/// reading thread can lose one, up to blocks of 64 KiB (about 8000 frames), the most. Setting
/// up a ring zeroes it: 64 KiB blocks are 4 MiB a link, which on a 34-link lab is a third of
/// its build time.
pub fn block_size(frames: usize) -> usize {
    (frames.saturating_mul(FRAME_ROOM) / (BLOCKS / 2))
        .next_power_of_two()
        .clamp(MIN_BLOCK, BLOCK)
}

/// At most how many frames one link sees in a run of `flows`: each flow's handshake, four a
/// round trip, its close and a few retransmissions or ICMP errors (16 + 4 per round trip), and
/// ARP.
pub fn frames_bound(flows: &[FlowSpec]) -> usize {
    64 + flows
        .iter()
        .map(|f| 16 + 4 * f.round_trips as usize)
        .sum::<usize>()
}

/// The kernel hands over a block once it is full or after this many milliseconds.
const RETIRE_MS: u32 = 8;
/// At stop, the longest a thread waits for the kernel to hand over a block it is filling.
const RETIRE_WAIT: Duration = Duration::from_millis(200);

impl Capture {
    /// Opens a capture socket on every link, each in its node, and starts reading; counts the
    /// ICMP errors seen on the links in `watch`. With `keep_frames`, every whole frame is kept
    /// too (for pcap files). Each ring has room for `frames` frames (see [`block_size`]). The
    /// rings are set up at once, and each socket bound to its link once `wired` opens (the lab
    /// may still be wiring); this returns without waiting, so that other work (wiring,
    /// installing rules) overlaps the kernel's waits: [`Opening::ready`] waits.
    pub fn open(
        lab: &Lab,
        topo: &Topology,
        watch: &[usize],
        keep_frames: bool,
        frames: usize,
        wired: &Gate,
    ) -> io::Result<Opening> {
        let started = std::time::SystemTime::now();
        let epoch_ns = started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let last_ns = Arc::new(AtomicU64::new(0));
        let icmp_errors = Arc::new(AtomicU64::new(0));
        // The `a` ends by node, in link order.
        let mut by_node: Vec<(&str, Vec<End>)> = Vec::new();
        for (i, link) in topo.links.iter().enumerate() {
            let end = End {
                link: i,
                iface: link.a.iface.clone(),
                mac: link.a.mac,
                watched: watch.contains(&i),
            };
            let node = by_node
                .iter_mut()
                .find(|(n, e)| *n == link.a.node && e.len() < ENDS_PER_SOCKET);
            match node {
                Some((_, ends)) => ends.push(end),
                None => by_node.push((&link.a.node, vec![end])),
            }
        }
        // Each node's thread opens its ring inside the node, all at once: setting up a ring
        // waits out an RCU grace period (~12 ms), and those overlap.
        let (ready_tx, ready) = std::sync::mpsc::channel::<(usize, io::Result<()>)>();
        let mut threads = Vec::new();
        for (node, ends) in by_node {
            // Every frame of each of its links fits, as in a ring of its own.
            let block = block_size(frames.saturating_mul(ends.len()));
            let (stop, last_ns) = (Arc::clone(&stop), Arc::clone(&last_ns));
            let errors = Arc::clone(&icmp_errors);
            let ready_tx = ready_tx.clone();
            let wired = wired.clone();
            threads.push(lab.ns(node).spawn("cap", move || {
                let links: Vec<usize> = ends.iter().map(|e| e.link).collect();
                let ifaces: Vec<&str> = ends.iter().map(|e| e.iface.as_str()).collect();
                let opened = Ring::new(block).and_then(|ring| match wired.wait() {
                    true => ring.bind(&ifaces).map(|index| (ring, index)),
                    false => Err(io::Error::other("the lab was not wired")),
                });
                let (ring, index) = match opened {
                    Ok(opened) => {
                        for &i in &links {
                            let _ = ready_tx.send((i, Ok(())));
                        }
                        opened
                    }
                    Err(e) => {
                        for &i in &links {
                            let _ =
                                ready_tx.send((i, Err(io::Error::new(e.kind(), e.to_string()))));
                        }
                        return NodeCapture::default();
                    }
                };
                // `start` waits until every sender is gone.
                drop(ready_tx);
                let mut frames = keep_frames.then(Vec::new);
                let seen = read_until_stopped(
                    &ends,
                    &index,
                    &ring,
                    &stop,
                    &last_ns,
                    &errors,
                    epoch_ns,
                    frames.as_mut(),
                );
                let drops = dropped(ring.fd.as_raw_fd());
                (seen, links, drops, frames.unwrap_or_default(), Some(ring))
            })?);
        }
        drop(ready_tx);
        Ok(Opening {
            capture: Capture {
                stop,
                last_ns,
                icmp_errors,
                threads,
                started,
            },
            ready,
        })
    }

    /// Waits until no packet has been seen on any link for `quiet`: the packets of finished
    /// flows still queued on a busy CPU are captured before the captures stop.
    ///
    /// # Errors
    /// The [`Timeout`](crate::wait::Timeout) when the links are still busy at `deadline`: a
    /// capture stopped then would miss packets, and call them dead.
    pub fn wait_quiet(
        &self,
        quiet: Duration,
        deadline: Instant,
    ) -> Result<(), crate::wait::Timeout> {
        crate::wait::wait_until(
            deadline,
            || {
                // Packet times are wall-clock (kernel timestamps) since `started`.
                let now = std::time::SystemTime::now()
                    .duration_since(self.started)
                    .map_or(0, |d| d.as_nanos() as u64);
                let last = self.last_ns.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= quiet.as_nanos() as u64 {
                    Ok(())
                } else {
                    Err(())
                }
            },
            |()| format!("the links going quiet for {} ms", quiet.as_millis()),
        )
    }

    /// Waits until `n` ICMP errors have been seen on the watched links.
    ///
    /// # Errors
    /// The [`Timeout`](crate::wait::Timeout) naming how many were seen, at `deadline`.
    pub fn wait_icmp_errors(&self, n: u64, deadline: Instant) -> Result<(), crate::wait::Timeout> {
        crate::wait::wait_until(
            deadline,
            || {
                let seen = self.icmp_errors.load(Ordering::Relaxed);
                if seen >= n {
                    Ok(())
                } else {
                    Err(seen)
                }
            },
            |seen| {
                format!(
                    "the captures seeing on the clients' links the {n} ICMP errors their kernels sent for the RELATED probes (they saw {seen})"
                )
            },
        )
    }

    /// Stops every capture once its socket is drained: the sightings (link by link), and the
    /// links where the kernel dropped packets no thread read in time.
    pub fn stop(mut self) -> (Sightings, Losses, Vec<Frame>) {
        self.stop.store(true, Ordering::Release);
        let mut sockets = Vec::new();
        let mut by_link = Vec::new();
        let mut losses = Vec::new();
        let mut frames = Vec::new();
        for t in std::mem::take(&mut self.threads) {
            let (seen, links, drops, kept, ring) =
                t.join().ok().and_then(Result::ok).unwrap_or_default();
            sockets.extend(ring);
            by_link.extend(seen);
            frames.extend(kept);
            if drops > 0 {
                losses.push((links, drops));
            }
        }
        // Link by link, in the topology's order.
        by_link.sort_by_key(|(link, _)| *link);
        let mut all = Sightings::new();
        for (_, seen) in by_link {
            all.append(seen);
        }
        // Closing a packet socket waits out an RCU grace period (packet_release calls
        // synchronize_net). Nothing needs to wait for that: each is closed on a thread of its
        // own, so the grace periods overlap (one after another they took ~70 ms for six links,
        // and a process that exits with them open closes them one after another too). Should
        // no thread be available, the failed spawn closes that socket here.
        for fd in sockets {
            let _ = thread::Builder::new()
                .name("cap-close".into())
                .spawn(move || drop(fd));
        }
        (all, losses, frames)
    }
}

/// Captures whose rings are being opened: [`Opening::ready`] waits for them.
pub struct Opening {
    capture: Capture,
    ready: std::sync::mpsc::Receiver<(usize, io::Result<()>)>,
}

impl Opening {
    /// Waits until every link's ring is open (before any traffic), or names the first link
    /// whose ring could not be.
    pub fn ready(self, topo: &Topology) -> io::Result<Capture> {
        let mut failed = None;
        let mut open = vec![false; topo.links.len()];
        for (i, opened) in self.ready.iter() {
            open[i] = opened.is_ok();
            if let (Err(e), None) = (opened, &failed) {
                let link = &topo.links[i];
                failed = Some(io::Error::new(
                    e.kind(),
                    format!(
                        "capturing on link `{}` ({}:{}): {e}",
                        link.name, link.a.node, link.a.iface
                    ),
                ));
            }
        }
        // A thread that could not enter its node ends without a word.
        if let (None, Some(i)) = (&failed, open.iter().position(|o| !o)) {
            let link = &topo.links[i];
            failed = Some(io::Error::other(format!(
                "capturing on link `{}`: could not enter node `{}`",
                link.name, link.a.node
            )));
        }
        match failed {
            // Dropping the capture stops and joins the threads that did open.
            Some(e) => Err(e),
            None => Ok(self.capture),
        }
    }
}

/// A capture dropped without [`Capture::stop`] (a run that failed half-way) still ends its
/// threads: their sockets would otherwise keep the lab's namespaces alive.
impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A receive ring: [`BLOCKS`] blocks the kernel fills with frames and hands over whole
/// (TPACKET_V3), mapped from its AF_PACKET socket. Unmapped, then closed, when dropped.
struct Ring {
    map: *mut u8,
    /// Bytes per block.
    block: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping belongs to the Ring alone (one thread reads it, then it is dropped
// wherever it is sent); the kernel writes the blocks it owns, and ownership passes through
// each block's status word.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `map` is the mapping of block * BLOCKS bytes made in `Ring::new`; nothing refers
        // into it once the ring is dropped. The socket closes after (field drop).
        unsafe {
            libc::munmap(self.map.cast(), self.block * BLOCKS);
        }
    }
}

impl Ring {
    /// Block `n`'s descriptor.
    fn block(&self, n: usize) -> *mut libc::tpacket_block_desc {
        // SAFETY: n < BLOCKS keeps the pointer inside the mapping.
        unsafe { self.map.add((n % BLOCKS) * self.block).cast() }
    }

    /// Whether block `n` is ours to read (the kernel has handed it over).
    fn ready(&self, n: usize) -> bool {
        // SAFETY: the status word is in the mapping; the kernel writes it, hence volatile,
        // and the acquire fence orders the reads of the frames after it.
        let status = unsafe {
            std::ptr::read_volatile(std::ptr::addr_of!((*self.block(n)).hdr.bh1.block_status))
        };
        fence(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    /// Frames the kernel has put in block `n` so far (it counts them as it fills it).
    fn filling(&self, n: usize) -> u32 {
        // SAFETY: as in `ready`.
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.block(n)).hdr.bh1.num_pkts)) }
    }

    /// Calls `each(frame, time in ns since the epoch, interface index)` for every frame of
    /// block `n`, which must be [`ready`](Ring::ready), then gives the block back to the
    /// kernel.
    fn read_block(&self, n: usize, mut each: impl FnMut(&[u8], u64, i32)) {
        // Where a frame's address (which interface) follows its header.
        const ADDR: usize = (std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15;
        let desc = self.block(n);
        // SAFETY: the block is ours (TP_STATUS_USER) until its status is set back below; the
        // kernel laid out `num_pkts` frames from `offset_to_first_pkt`, each header giving the
        // offset of the next, its address after it, and each frame `tp_snaplen` bytes at
        // `tp_mac`, all within the block.
        unsafe {
            let h = std::ptr::addr_of!((*desc).hdr.bh1).read();
            let base = desc.cast::<u8>();
            let mut at = h.offset_to_first_pkt as usize;
            for _ in 0..h.num_pkts {
                let p = base.add(at).cast::<libc::tpacket3_hdr>().read_unaligned();
                let frame = std::slice::from_raw_parts(
                    base.add(at + usize::from(p.tp_mac)),
                    p.tp_snaplen as usize,
                );
                let addr = base
                    .add(at + ADDR)
                    .cast::<libc::sockaddr_ll>()
                    .read_unaligned();
                each(
                    frame,
                    u64::from(p.tp_sec) * 1_000_000_000 + u64::from(p.tp_nsec),
                    addr.sll_ifindex,
                );
                at += p.tp_next_offset as usize;
            }
            // The kernel resets the count when it opens the block again; until then a stale
            // one would read as frames still coming (see `filling`).
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*desc).hdr.bh1.num_pkts), 0);
            fence(Ordering::Release);
            std::ptr::write_volatile(
                std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status),
                libc::TP_STATUS_KERNEL,
            );
        }
    }
}

impl Ring {
    /// An AF_PACKET socket, bound to nothing yet, with its receive ring mapped: setting up the
    /// ring waits out an RCU grace period (about 12 ms). Call inside the node's namespace.
    fn new(block: usize) -> io::Result<Ring> {
        // SAFETY: plain socket(2), setsockopt(2) and mmap(2) calls on an fd owned from creation,
        // with option values that live across each call.
        unsafe {
            // Protocol 0: the socket receives nothing until `bind` binds it with ETH_P_ALL.
            // Created with ETH_P_ALL it would hook every packet at once, and re-binding would wait
            // out an RCU grace period (about 12 ms per link).
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let raw = fd.as_raw_fd();
            let set = |level, opt, v: *const libc::c_void, len: usize| {
                if libc::setsockopt(raw, level, opt, v, len as libc::socklen_t) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            };
            let int = |v: &libc::c_int| (v as *const libc::c_int).cast::<libc::c_void>();
            let isize = std::mem::size_of::<libc::c_int>();
            let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
            set(libc::SOL_PACKET, libc::PACKET_VERSION, int(&v3), isize)?;
            // Receive times stamped as the packet is received, not when it is copied.
            set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, int(&1), isize)?;
            let req = libc::tpacket_req3 {
                tp_block_size: block as u32,
                tp_block_nr: BLOCKS as u32,
                // For V3 only a bound the kernel checks (frames are packed by their size).
                tp_frame_size: 2048,
                tp_frame_nr: (block * BLOCKS / 2048) as u32,
                tp_retire_blk_tov: RETIRE_MS,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            set(
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                (&req as *const libc::tpacket_req3).cast(),
                std::mem::size_of::<libc::tpacket_req3>(),
            )?;
            let map = libc::mmap(
                std::ptr::null_mut(),
                block * BLOCKS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            );
            if map == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Ring {
                map: map.cast(),
                block,
                fd,
            })
        }
    }

    /// Binds the socket to `ifaces` (all protocols, both directions): from now on the kernel
    /// copies every frame that passes on them into the ring. One interface is bound to;
    /// several are picked out of all the node's by a socket filter on the interface index.
    /// Returns their indexes. Call inside the interfaces' namespace.
    fn bind(&self, ifaces: &[&str]) -> io::Result<Vec<u32>> {
        let mut index = Vec::with_capacity(ifaces.len());
        for iface in ifaces {
            let name =
                std::ffi::CString::new(*iface).map_err(|_| io::Error::other("NUL in name"))?;
            // SAFETY: if_nametoindex reads a NUL-terminated string.
            let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if i == 0 {
                return Err(io::Error::other(format!("no interface `{iface}`")));
            }
            index.push(i);
        }
        let on = match index[..] {
            [one] => one,
            _ => {
                self.only(&index)?;
                0
            }
        };
        // SAFETY: bind(2) on the ring's own socket with an address that lives across the call.
        unsafe {
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            addr.sll_ifindex = on as i32;
            let alen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            if libc::bind(
                self.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                alen,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(index)
    }

    /// Attaches a socket filter that takes the frames of the interfaces `index` only, whole.
    fn only(&self, index: &[u32]) -> io::Result<()> {
        let n = index.len();
        let op = |code: u32, jt: usize, k: u32| libc::sock_filter {
            code: code as u16,
            jt: jt as u8,
            jf: 0,
            k,
        };
        // A = the frame's interface; for each index, jump to the last (take) when equal;
        // else the one before it (drop).
        let mut prog = vec![op(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_IFINDEX) as u32,
        )];
        for (j, &i) in index.iter().enumerate() {
            prog.push(op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, n - j, i));
        }
        prog.push(op(libc::BPF_RET | libc::BPF_K, 0, 0));
        prog.push(op(libc::BPF_RET | libc::BPF_K, 0, u32::MAX));
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: setsockopt(2) with a program that lives across the call (the kernel copies
        // it).
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Packets the kernel dropped on this capture socket (PACKET_STATISTICS; reading resets it).
fn dropped(fd: RawFd) -> u32 {
    #[repr(C)]
    #[derive(Default)]
    struct TpacketStats {
        packets: u32,
        drops: u32,
    }
    let mut st = TpacketStats::default();
    let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `st`, which is that large; the fd
    // is still open (the receiver that owns it is alive until this thread returns).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut TpacketStats).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        st.drops
    } else {
        0
    }
}

/// Reads every frame until asked to stop, then drains what is left (waiting for the kernel to
/// hand over the block it was filling). Times are the kernel's receive times, relative to
/// `epoch_ns` (when the captures started).
#[allow(clippy::too_many_arguments)]
fn read_until_stopped(
    ends: &[End],
    index: &[u32],
    ring: &Ring,
    stop: &AtomicBool,
    last_ns: &AtomicU64,
    icmp_errors: &AtomicU64,
    epoch_ns: u64,
    mut frames: Option<&mut Vec<Frame>>,
) -> Vec<(usize, Sightings)> {
    // An end's place, by its interface's index.
    let top = index.iter().copied().max().unwrap_or(0) as usize;
    let mut place = vec![None; top + 1];
    for (k, &i) in index.iter().enumerate() {
        place[i as usize] = Some(k);
    }
    let mut out: Vec<Sightings> = ends.iter().map(|_| Sightings::new()).collect();
    let mut next = 0;
    let mut stopped_at = None;
    loop {
        // Read before looking at the flag: once it is set, the last blocks are drained.
        let stopping = stop.load(Ordering::Acquire);
        while ring.ready(next) {
            ring.read_block(next, |frame, t, ifindex| {
                let Some(k) = usize::try_from(ifindex)
                    .ok()
                    .and_then(|i| place.get(i).copied().flatten())
                else {
                    return;
                };
                let end = &ends[k];
                let t_ns = t.saturating_sub(epoch_ns);
                if let Some(f) = frames.as_deref_mut() {
                    f.push(Frame {
                        link: end.link,
                        t_ns,
                        data: frame.to_vec(),
                    });
                }
                if let Some(pkt) = packet::parse(frame) {
                    last_ns.fetch_max(t_ns, Ordering::Relaxed);
                    if end.watched && pkt.inner.is_some() {
                        icmp_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let from_a = packet::source_mac(frame) == Some(end.mac);
                    out[k].push(end.link, t_ns, from_a, &pkt);
                }
            });
            next = (next + 1) % BLOCKS;
        }
        if stopping {
            // The block being filled is handed over within a few ms of its first frame.
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if ring.filling(next) == 0 || since.elapsed() >= RETIRE_WAIT {
                return ends.iter().map(|e| e.link).zip(out).collect();
            }
        }
        // Not a wait for a condition (so not `crate::wait::wait_until`): the reader's idle
        // nap between two drains of the ring, which does its work on every turn and runs
        // until asked to stop (then at most `RETIRE_WAIT` more, still draining; running out
        // of it is no failure). A fixed short nap keeps up with the ring; `wait_until`'s
        // backoff to 20 ms would not (see `NAP`).
        thread::sleep(NAP);
    }
}

#[cfg(test)]
mod tests {
    use super::{block_size, BLOCK, BLOCKS, FRAME_ROOM, MIN_BLOCK};

    #[test]
    fn half_the_ring_holds_every_frame_up_to_the_largest_block() {
        assert_eq!(block_size(0), MIN_BLOCK);
        assert_eq!(block_size(300), MIN_BLOCK);
        assert_eq!(block_size(1_000_000), BLOCK);
        for frames in [500, 1000, 2000, 5000, 8000] {
            let b = block_size(frames);
            assert!(b.is_power_of_two() && b >= MIN_BLOCK, "{frames}: {b}");
            assert!(BLOCKS / 2 * b >= frames * FRAME_ROOM, "{frames}: {b}");
        }
    }
}

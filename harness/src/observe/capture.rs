//! Per-link capture: one AF_PACKET socket on the `a` end of every link, opened inside that
//! node before any traffic, drained by its own thread until stopped. Packet times are the
//! kernel's receive timestamps.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::packet;
use super::Sightings;
use crate::lab::Lab;
use crate::spec::Topology;

/// How long a capture thread sleeps between two drains of its socket. It never waits on the
/// socket itself: a reader asleep in poll(2) makes the kernel wake it for every packet, and
/// those wakeups cost more than forwarding the packet (perf: ~35% of a 3000-flow run). With
/// nobody waiting, a packet is only queued; the 8 MiB buffer holds far more than arrives in
/// this time.
const NAP: Duration = Duration::from_millis(1);

/// Running captures; [`Capture::stop`] returns what they saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    last_ns: Arc<AtomicU64>,
    /// ICMP errors seen on the watched links.
    icmp_errors: Arc<AtomicU64>,
    threads: Vec<JoinHandle<LinkCapture>>,
    /// Wall-clock time the captures started, for pcap timestamps.
    pub started: std::time::SystemTime,
}

/// What one link's capture thread returns: its sightings, the packets the kernel dropped,
/// and (when kept) the whole frames.
type LinkCapture = (Sightings, u32, Vec<Frame>, Option<OwnedFd>);

/// A whole frame as captured, kept for pcap files.
#[derive(Debug, Clone)]
pub struct Frame {
    pub link: usize,
    pub t_ns: u64,
    pub data: Vec<u8>,
}

/// Packets the kernel dropped before a capture thread could read them, by link index.
pub type Losses = Vec<(usize, u32)>;

/// Each capture socket's receive buffer: room for a long burst while its thread waits for a
/// CPU (a busy 2-core machine can hold it back for tens of milliseconds).
const RCVBUF: libc::c_int = 8 << 20;

impl Capture {
    /// Opens a capture socket on every link, each in its node, and starts reading; counts the
    /// ICMP errors seen on the links in `watch`.
    /// With `keep_frames`, every whole frame is kept too (for pcap files).
    pub fn start(
        lab: &Lab,
        topo: &Topology,
        watch: &[usize],
        keep_frames: bool,
    ) -> io::Result<Capture> {
        let started = std::time::SystemTime::now();
        let epoch_ns = started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let last_ns = Arc::new(AtomicU64::new(0));
        let icmp_errors = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for (i, link) in topo.links.iter().enumerate() {
            let iface = link.a.iface.clone();
            let fd = lab
                .ns(&link.a.node)
                .run(move || open(&iface))?
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "capturing on link `{}` ({}:{}): {e}",
                            link.name, link.a.node, link.a.iface
                        ),
                    )
                })?;
            let (stop, last_ns) = (Arc::clone(&stop), Arc::clone(&last_ns));
            let errors = watch.contains(&i).then(|| Arc::clone(&icmp_errors));
            let a_mac = link.a.mac;
            threads.push(
                thread::Builder::new()
                    .name(format!("cap-{}", link.name))
                    .spawn(move || {
                        let mut frames = keep_frames.then(Vec::new);
                        let seen = read_until_stopped(
                            (i, a_mac),
                            fd.as_raw_fd(),
                            &stop,
                            &last_ns,
                            errors.as_deref(),
                            epoch_ns,
                            frames.as_mut(),
                        );
                        let drops = dropped(fd.as_raw_fd());
                        (seen, drops, frames.unwrap_or_default(), Some(fd))
                    })?,
            );
        }
        Ok(Capture {
            stop,
            last_ns,
            icmp_errors,
            threads,
            started,
        })
    }

    /// Waits until no packet has been seen on any link for `quiet`, at most `max`.
    pub fn wait_quiet(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        loop {
            // Packet times are wall-clock (kernel timestamps) since `started`.
            let now = std::time::SystemTime::now()
                .duration_since(self.started)
                .map_or(0, |d| d.as_nanos() as u64);
            let last = self.last_ns.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= quiet.as_nanos() as u64 || Instant::now() >= deadline {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `n` ICMP errors have been seen on the watched links, until `deadline`.
    pub fn wait_icmp_errors(&self, n: u64, deadline: Instant) {
        while self.icmp_errors.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops every capture once its socket is drained: the sightings (link by link), and the
    /// links where the kernel dropped packets no thread read in time.
    pub fn stop(mut self) -> (Sightings, Losses, Vec<Frame>) {
        self.stop.store(true, Ordering::Release);
        let mut sockets = Vec::new();
        let mut all = Sightings::new();
        let mut losses = Vec::new();
        let mut frames = Vec::new();
        for (i, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            let (seen, drops, kept, fd) = t.join().unwrap_or_default();
            sockets.extend(fd);
            all.append(seen);
            frames.extend(kept);
            if drops > 0 {
                losses.push((i, drops));
            }
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

/// An AF_PACKET socket bound to `iface` (all protocols, both directions), with a large
/// receive buffer and kernel receive timestamps. Call inside the interface's namespace.
fn open(iface: &str) -> io::Result<OwnedFd> {
    let name = std::ffi::CString::new(iface).map_err(|_| io::Error::other("NUL in name"))?;
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::other(format!("no interface `{iface}`")));
    }
    // SAFETY: plain socket(2), setsockopt(2) and bind(2) calls on an fd owned from creation.
    unsafe {
        // Protocol 0: the socket receives nothing until it is bound with ETH_P_ALL below.
        // Created with ETH_P_ALL it would hook every packet at once, and re-binding would wait
        // out an RCU grace period (about 12 ms per link).
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let int = |v: &libc::c_int| (v as *const libc::c_int).cast::<libc::c_void>();
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN); else take what we can.
        let raw = fd.as_raw_fd();
        if libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            int(&RCVBUF),
            len,
        ) != 0
        {
            libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, int(&RCVBUF), len);
        }
        if libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, int(&1), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = index as i32;
        let alen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        if libc::bind(raw, (&addr as *const libc::sockaddr_ll).cast(), alen) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Reads one frame without waiting: its length and the kernel's receive time (ns since the
/// epoch), or None when the socket is empty.
fn recv_frame(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, u64)>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS control message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr points at live buffers of the given sizes for the duration of the call;
    // the CMSG_* walk stays within `control` as recvmsg filled it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => recv_frame(fd, buf),
                _ => Err(e),
            };
        }
        let mut t = 0;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                t = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok(Some((n as usize, t)))
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

/// Reads every frame until asked to stop, then drains what is left. Times are the kernel's
/// receive times, relative to `epoch_ns` (when the captures started).
fn read_until_stopped(
    (link, a_mac): (usize, [u8; 6]),
    fd: RawFd,
    stop: &AtomicBool,
    last_ns: &AtomicU64,
    icmp_errors: Option<&AtomicU64>,
    epoch_ns: u64,
    mut frames: Option<&mut Vec<Frame>>,
) -> Sightings {
    let mut out = Sightings::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // Read before looking at the flag: once it is set, one more drain empties the socket.
        let stopping = stop.load(Ordering::Acquire);
        loop {
            let (n, t) = match recv_frame(fd, &mut buf) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(_) => return out,
            };
            let frame = &buf[..n];
            let t_ns = t.saturating_sub(epoch_ns);
            if let Some(f) = frames.as_deref_mut() {
                f.push(Frame {
                    link,
                    t_ns,
                    data: frame.to_vec(),
                });
            }
            if let Some(pkt) = packet::parse(frame) {
                last_ns.fetch_max(t_ns, Ordering::Relaxed);
                if let (Some(n), Some(_)) = (icmp_errors, pkt.inner) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                let from_a = packet::source_mac(frame) == Some(a_mac);
                out.push(link, t_ns, from_a, &pkt);
            }
        }
        if stopping {
            return out;
        }
        thread::sleep(NAP);
    }
}

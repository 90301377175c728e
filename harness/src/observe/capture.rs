//! Per-link capture with pnet: one AF_PACKET socket on the `a` end of every link, opened
//! inside that node before any traffic, read by its own thread until stopped.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config, DataLinkReceiver};

use super::packet;
use super::Sighting;
use crate::lab::Lab;
use crate::spec::Topology;

/// How long a capture read waits for a frame; a capture being stopped ends after one such
/// wait that found nothing (its socket is drained).
const POLL: Duration = Duration::from_millis(5);

/// Running captures; [`Capture::stop`] returns what they saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    last_ns: Arc<AtomicU64>,
    /// ICMP errors seen on the watched links.
    icmp_errors: Arc<AtomicU64>,
    start: Instant,
    threads: Vec<JoinHandle<LinkCapture>>,
    /// Wall-clock time the captures started, for pcap timestamps.
    pub started: std::time::SystemTime,
}

/// What one link's capture thread returns: its sightings, the packets the kernel dropped,
/// and (when kept) the whole frames.
type LinkCapture = (Vec<Sighting>, u32, Vec<Frame>);

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
        let stop = Arc::new(AtomicBool::new(false));
        let last_ns = Arc::new(AtomicU64::new(0));
        let icmp_errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut threads = Vec::new();
        for (i, link) in topo.links.iter().enumerate() {
            let iface = link.a.iface.clone();
            let (rx, fd) = lab
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
            threads.push(
                thread::Builder::new()
                    .name(format!("cap-{}", link.name))
                    .spawn(move || {
                        let mut rx = rx;
                        let mut frames = keep_frames.then(Vec::new);
                        let seen = read_until_stopped(
                            i,
                            &mut rx,
                            &stop,
                            &last_ns,
                            errors.as_deref(),
                            start,
                            frames.as_mut(),
                        );
                        // Read the drop counter while the receiver still holds the socket open.
                        let drops = dropped(fd);
                        drop(rx);
                        (seen, drops, frames.unwrap_or_default())
                    })?,
            );
        }
        Ok(Capture {
            stop,
            last_ns,
            icmp_errors,
            start,
            threads,
            started,
        })
    }

    /// Waits until no packet has been seen on any link for `quiet`, at most `max`.
    pub fn wait_quiet(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        loop {
            let now = self.start.elapsed().as_nanos() as u64;
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

    /// Stops every capture once its socket is drained: the sightings sorted by time, and the
    /// links where the kernel dropped packets no thread read in time.
    pub fn stop(mut self) -> (Vec<Sighting>, Losses, Vec<Frame>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut losses = Vec::new();
        let mut frames = Vec::new();
        for (i, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            let (seen, drops, kept) = t.join().unwrap_or_default();
            all.extend(seen);
            frames.extend(kept);
            if drops > 0 {
                losses.push((i, drops));
            }
        }
        all.sort_by_key(|s| (s.t_ns, s.link, s.seq));
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

/// An AF_PACKET socket on `iface` with a large receive buffer, read through pnet; also its fd,
/// for the drop counter.
fn open(iface: &str) -> io::Result<(Box<dyn DataLinkReceiver>, RawFd)> {
    let ni = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == iface)
        .ok_or_else(|| io::Error::other(format!("no interface `{iface}`")))?;
    // SAFETY: plain socket(2) and setsockopt(2) calls on an fd this function owns until it
    // hands it to pnet, which closes it with the channel.
    let fd = unsafe {
        // Protocol 0: the socket receives nothing until pnet binds it to the interface with
        // ETH_P_ALL. Created with ETH_P_ALL it would hook every packet at once, and re-binding
        // would wait out an RCU grace period (about 12 ms per link).
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let size = &RCVBUF as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN); else take what we can.
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size, len) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size, len);
        }
        fd
    };
    let config = Config {
        read_timeout: Some(POLL),
        read_buffer_size: 65536,
        promiscuous: false,
        socket_fd: Some(fd),
        ..Config::default()
    };
    match pnet_datalink::channel(&ni, config)? {
        Channel::Ethernet(_tx, rx) => Ok((rx, fd)),
        _ => Err(io::Error::other("not an Ethernet channel")),
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

fn read_until_stopped(
    link: usize,
    rx: &mut Box<dyn DataLinkReceiver>,
    stop: &AtomicBool,
    last_ns: &AtomicU64,
    icmp_errors: Option<&AtomicU64>,
    start: Instant,
    mut frames: Option<&mut Vec<Frame>>,
) -> Vec<Sighting> {
    let mut out = Vec::new();
    let mut seq = 0;
    loop {
        match rx.next() {
            Ok(frame) => {
                let t_ns = start.elapsed().as_nanos() as u64;
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
                    out.push(Sighting {
                        link,
                        seq,
                        t_ns,
                        pkt,
                    });
                    seq += 1;
                }
            }
            // A timeout means the socket is empty: stop here if asked to.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if stop.load(Ordering::Relaxed) {
                    return out;
                }
            }
            Err(_) => return out,
        }
    }
}

//! Per-link capture with pnet: one AF_PACKET socket on the `a` end of every link, opened
//! inside that node before any traffic, read by its own thread until stopped.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config, DataLinkReceiver};

use super::packet;
use super::Sighting;
use crate::lab::Lab;
use crate::spec::Topology;

const POLL: Duration = Duration::from_millis(20);

/// Running captures; [`Capture::stop`] returns what they saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    last_ns: Arc<AtomicU64>,
    /// ICMP errors seen on the watched links.
    icmp_errors: Arc<AtomicU64>,
    start: Instant,
    threads: Vec<JoinHandle<Vec<Sighting>>>,
}

impl Capture {
    /// Opens a capture socket on every link, each in its node, and starts reading; counts the
    /// ICMP errors seen on the links in `watch`.
    pub fn start(lab: &Lab, topo: &Topology, watch: &[usize]) -> io::Result<Capture> {
        let stop = Arc::new(AtomicBool::new(false));
        let last_ns = Arc::new(AtomicU64::new(0));
        let icmp_errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut threads = Vec::new();
        for (i, link) in topo.links.iter().enumerate() {
            let iface = link.a.iface.clone();
            let rx = lab
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
                        read_until_stopped(i, rx, &stop, &last_ns, errors.as_deref(), start)
                    })?,
            );
        }
        Ok(Capture {
            stop,
            last_ns,
            icmp_errors,
            start,
            threads,
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

    /// Stops every capture once its socket is drained; sightings sorted by time.
    pub fn stop(mut self) -> Vec<Sighting> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Sighting> = std::mem::take(&mut self.threads)
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|s| (s.t_ns, s.link, s.seq));
        all
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

fn open(iface: &str) -> io::Result<Box<dyn DataLinkReceiver>> {
    let ni = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == iface)
        .ok_or_else(|| io::Error::other(format!("no interface `{iface}`")))?;
    let config = Config {
        read_timeout: Some(POLL),
        read_buffer_size: 65536,
        promiscuous: false,
        ..Config::default()
    };
    match pnet_datalink::channel(&ni, config)? {
        Channel::Ethernet(_tx, rx) => Ok(rx),
        _ => Err(io::Error::other("not an Ethernet channel")),
    }
}

fn read_until_stopped(
    link: usize,
    mut rx: Box<dyn DataLinkReceiver>,
    stop: &AtomicBool,
    last_ns: &AtomicU64,
    icmp_errors: Option<&AtomicU64>,
    start: Instant,
) -> Vec<Sighting> {
    let mut out = Vec::new();
    let mut seq = 0;
    loop {
        match rx.next() {
            Ok(frame) => {
                let t_ns = start.elapsed().as_nanos() as u64;
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

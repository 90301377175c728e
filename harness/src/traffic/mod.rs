//! Drives the flows: the harness's own servers (sockets opened inside the server's node) and
//! clients (sockets opened inside the client's node, bound to the flow's fixed port). The
//! clients are polled by one tokio runtime on a thread pinned to one CPU, the servers by
//! another on a thread of their own (on another CPU when there is one, so the kernel's work
//! for the replies is done there). Flows start in order — the next one once the previous
//! one's first packet is sent, or after a short gap, or on their group's `pace:` — so an nth
//! rule sees them in a known order; their round trips then run side by side (with `interval:`
//! pauses), at most 4096 flows at once. Events between groups are made once every earlier flow
//! is done; events during a group by a thread of their own at their time, each recorded with
//! when it was asked for and when it was in force.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

use crate::lab::Lab;
use crate::model::{Change, Event, FlowSpec, Proto, Topology, When};
use crate::observe::packet::{
    late_payload, padded_request, parse_tag, reply_payload, request_payload,
};
use crate::observe::ClientOutcome;

/// The longest a client waits for its server to send a RELATED probe's late datagram.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// The longest the next flow waits for the previous one's first packet to be sent.
const START_GAP: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub struct TrafficResult {
    pub clients: BTreeMap<u32, ClientOutcome>,
    pub server_saw: BTreeMap<u32, IpAddr>,
    /// Flows whose client gave up because the harness itself was slow, not the network: the
    /// flow, and what was seen ("flow 7: …"). Unless the network lost some of the flow's
    /// packets too, a verdict on them would be a false alarm.
    pub lagged: Vec<(u32, String)>,
    /// Flows whose client gave up waiting for an answer (or for its connection), and when
    /// (wall-clock, as the captures' times are).
    pub gave_up: BTreeMap<u32, std::time::SystemTime>,
    /// RELATED probes that the client's kernel answered with an ICMP error.
    pub probes_answered: u64,
    /// When each flow ran: its first packet sent, its client done (wall-clock).
    pub times: BTreeMap<u32, (std::time::SystemTime, std::time::SystemTime)>,
    /// The events, in the order they happened.
    pub events: Vec<EventMade>,
}

/// An event as the driver made it: asked for at `asked` (wall-clock), in force at `done` (for
/// a carrier, once the other end sees it), and how late that was against its schedule.
#[derive(Debug, Clone)]
pub struct EventMade {
    pub name: String,
    pub asked: std::time::SystemTime,
    pub done: std::time::SystemTime,
    pub late: Duration,
}

/// What the servers read, by flow: the source address of its first request, and the last
/// request (its number, when it was read).
#[derive(Debug, Clone, Copy)]
struct Read {
    source: IpAddr,
    last: u32,
    at: Instant,
}

#[derive(Default)]
struct ServerState {
    reads: BTreeMap<u32, Read>,
    /// Bytes a server socket still held unread when the servers stopped.
    unread_at_stop: usize,
}

type Seen = Arc<Mutex<ServerState>>;

/// A client that gave up waiting: on which step (0: the connect), when it sent what it was
/// waiting an answer for, and whether the answer was in its socket, unread, when it gave up.
#[derive(Debug, Clone, Copy)]
struct Stall {
    step: u32,
    sent: Instant,
    answer_waiting: bool,
    at: std::time::SystemTime,
}

/// How a client task ended: its outcome, its stall if it gave up waiting, and when it ran
/// (its first packet sent, its end).
type Ran = (ClientOutcome, Option<Stall>, Option<FlowTime>);

/// When a flow ran, wall-clock: its first packet sent, and its client done.
type FlowTime = (std::time::SystemTime, std::time::SystemTime);

enum ClientSock {
    Tcp(TcpSocket),
    Udp(std::net::UdpSocket),
}

pub mod craft;

/// Runs every flow to its end (completed or timed out); crafted packets are left to
/// [`craft::inject`].
pub fn drive(
    lab: &Lab,
    topo: &Topology,
    flows: &[FlowSpec],
    events: &[Event],
) -> io::Result<TrafficResult> {
    let flows: Vec<FlowSpec> = flows
        .iter()
        .filter(|f| f.craft.is_none())
        .cloned()
        .collect();
    let flows = &flows[..];
    // Servers: one socket per (node, protocol, address, port).
    let servers: BTreeSet<(String, Proto, SocketAddr)> = flows
        .iter()
        .map(|f| (f.server_node.clone(), f.proto, f.server))
        .collect();
    let mut tcp_listeners = Vec::new();
    let mut udp_servers = Vec::new();
    // Flows running at once: fewer when a UDP server's receive buffer cannot hold a datagram
    // from each (rootless, SO_RCVBUFFORCE is refused and net.core.rmem_max caps it).
    let mut max_running = RUNNING;
    for (node, proto, addr) in servers {
        match proto {
            Proto::Tcp => {
                let l = lab
                    .ns(&node)
                    .run(move || std::net::TcpListener::bind(addr))?
                    .map_err(|e| ctx(e, &node, addr))?;
                // std listens with a backlog of 128: thousands of flows starting within
                // milliseconds would overflow it and lose SYNs. listen(2) again raises it (up to
                // the node's net.core.somaxconn, 4096 by default).
                // SAFETY: listen(2) on a socket this function owns.
                if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 4096) } != 0 {
                    return Err(ctx(io::Error::last_os_error(), &node, addr));
                }
                l.set_nonblocking(true)?;
                tcp_listeners.push(l);
            }
            // Crafted packets need no server: `craft::inject` sends them.
            Proto::Icmp => {}
            Proto::Udp => {
                let s = lab
                    .ns(&node)
                    .run(move || std::net::UdpSocket::bind(addr))?
                    .map_err(|e| ctx(e, &node, addr))?;
                s.set_nonblocking(true)?;
                // Every running flow's datagram can arrive before the server reads one: room
                // for them all, not the default few hundred (which would drop the rest).
                {
                    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
                    let room = RUNNING * DATAGRAM_ROOM;
                    if setsockopt(&s, sockopt::RcvBufForce, &room).is_err() {
                        let _ = setsockopt(&s, sockopt::RcvBuf, &room);
                    }
                    let got = getsockopt(&s, sockopt::RcvBuf).unwrap_or(0);
                    max_running = max_running.min((got / DATAGRAM_ROOM).max(16));
                }
                udp_servers.push((addr, s));
            }
        }
    }
    // Flows start in order, each once the previous one's first packet is sent, not answered.
    // A packet sent on a veth is queued to the sending CPU's backlog, which is processed in
    // order; on one CPU, the router sees the flows' first packets in the order they started
    // (which is what `nth` counts). The client tasks all run on this thread: pin it.
    let pinned = Pinned::here();
    let seen: Seen = Arc::default();
    let mut probes: BTreeMap<SocketAddr, mpsc::UnboundedSender<Probe>> = BTreeMap::new();
    let udp_servers: Vec<_> = udp_servers
        .into_iter()
        .map(|(addr, s)| {
            let (tx, rx) = mpsc::unbounded_channel();
            probes.insert(addr, tx);
            (s, rx)
        })
        .collect();
    // The servers answer from a thread of their own, on another CPU when there is one: the
    // kernel's work for what they send (replies, their side of the close) is done there.
    let servers = Servers::start(tcp_listeners, udp_servers, &seen, pinned.other_cpu())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Events during traffic are made by a thread of their own, at their time, while the
    // clients run on this one.
    let happened: Mutex<Vec<EventMade>> = Mutex::default();
    let event_errors: Mutex<Vec<io::Error>> = Mutex::default();
    let clients = std::thread::scope(|scope| {
        let (fire, firing) = std::sync::mpsc::channel::<(&Event, Instant)>();
        // Dropped once every flow is done: an event whose time has not come then never
        // happens (an expectation tied to it says so).
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (happened, event_errors) = (&happened, &event_errors);
        scope.spawn(move || {
            for (e, when) in firing {
                let wait = when.saturating_duration_since(Instant::now());
                if !matches!(
                    stopped.recv_timeout(wait),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                ) && !wait.is_zero()
                {
                    break;
                }
                let asked = std::time::SystemTime::now();
                match make(lab, topo, e) {
                    Ok(()) => happened.lock().expect("events").push(EventMade {
                        name: e.name.clone(),
                        asked,
                        done: std::time::SystemTime::now(),
                        late: Instant::now().saturating_duration_since(when),
                    }),
                    Err(err) => event_errors.lock().expect("events").push(err),
                }
            }
        });
        rt.block_on(async {
            let mut running: VecDeque<(u32, tokio::task::JoinHandle<Ran>)> = VecDeque::new();
            let mut out = BTreeMap::new();
            let mut stalls: Vec<(u32, Stall)> = Vec::new();
            let mut times: BTreeMap<u32, FlowTime> = BTreeMap::new();
            let mut finished = |id: u32, ran: Ran| {
                if let Some(s) = ran.1 {
                    stalls.push((id, s));
                }
                if let Some(t) = ran.2 {
                    times.insert(id, t);
                }
                out.insert(id, ran.0);
            };
            let mut group = "";
            // The current group's first flow's start, and how many of its flows have started.
            let mut group_start = Instant::now();
            let mut in_group = 0u32;
            let mut socks: BTreeMap<u32, ClientSock> = BTreeMap::new();
            for (i, f) in flows.iter().enumerate() {
                // Client sockets are made ahead in batches, and at most RUNNING flows hold theirs
                // at once: open files stay bounded however many flows a run has.
                if !socks.contains_key(&f.id) {
                    let end = (i + SOCKET_BATCH).min(flows.len());
                    socks.extend(client_sockets(lab, &flows[i..end])?);
                }
                if running.len() >= max_running {
                    if let Some((id, h)) = running.pop_front() {
                        finished(id, join(h).await);
                    }
                }
                // Entering a traffic group with events before it: let every earlier flow finish,
                // then make them.
                if f.group != group {
                    group = &f.group;
                    let before: Vec<&Event> = events
                        .iter()
                        .filter(|e| e.when == When::Before(f.group.clone()))
                        .collect();
                    if !before.is_empty() {
                        for (id, h) in running.drain(..) {
                            finished(id, join(h).await);
                        }
                        for e in before {
                            let asked = std::time::SystemTime::now();
                            make(lab, topo, e)?;
                            happened.lock().expect("events").push(EventMade {
                                name: e.name.clone(),
                                asked,
                                done: std::time::SystemTime::now(),
                                // Between groups nothing waits on its time.
                                late: Duration::ZERO,
                            });
                        }
                    }
                    group_start = Instant::now();
                    in_group = 0;
                    // Events at a time into the group, in time order.
                    let mut timed: Vec<(&Event, Duration)> = events
                        .iter()
                        .filter_map(|e| match &e.when {
                            When::At(g, d) if *g == f.group => Some((e, *d)),
                            _ => None,
                        })
                        .collect();
                    timed.sort_by_key(|(_, d)| *d);
                    for (e, d) in timed {
                        let _ = fire.send((e, group_start + d));
                    }
                }
                // Events once N of the group's flows have started.
                for e in events
                    .iter()
                    .filter(|e| e.when == When::AfterFlows(f.group.clone(), in_group))
                {
                    let _ = fire.send((e, Instant::now()));
                }
                in_group += 1;
                let sock = socks.remove(&f.id).expect("a socket per flow");
                let (tx, rx) = oneshot::channel();
                let flow = f.clone();
                running.push_back((
                    f.id,
                    tokio::spawn(async move { run_flow(&flow, sock, tx).await }),
                ));
                let _ = tokio::time::timeout(START_GAP.min(f.timeout), rx).await;
                // `pace:`: the group's next flow starts that long after this one was due.
                if let Some(p) = f.pace {
                    tokio::time::sleep_until(group_start + p * in_group).await;
                }
            }
            for (id, h) in running {
                finished(id, join(h).await);
            }
            drop((fire, stop));
            // RELATED probes, one at a time once every flow is done, each watched until the
            // client's kernel has answered it.
            let mut answered = 0;
            for f in flows
                .iter()
                .filter(|f| f.related_probe && out.get(&f.id).is_some_and(|o| o.completed))
            {
                if let Some(server) = probes.get(&f.server) {
                    answered += u64::from(probe(lab, f, server).await?);
                }
            }
            Ok::<_, io::Error>((out, stalls, answered, times))
        })
    });
    drop(rt);
    // Stops serving (open connections are closed) and waits for the servers' thread.
    drop(servers);
    let (clients, stalls, probes_answered, times) = clients?;
    if let Some(e) = event_errors.into_inner().expect("events").pop() {
        return Err(e);
    }
    let state = std::mem::take(&mut *seen.lock().expect("server state"));
    let timeouts: BTreeMap<u32, Duration> = flows.iter().map(|f| (f.id, f.timeout)).collect();
    let lagged = lagged(&stalls, &state, &timeouts);
    let server_saw = state.reads.iter().map(|(f, r)| (*f, r.source)).collect();
    Ok(TrafficResult {
        clients,
        server_saw,
        lagged,
        gave_up: stalls.iter().map(|(id, s)| (*id, s.at)).collect(),
        probes_answered,
        times,
        events: happened.into_inner().expect("events"),
    })
}

/// Makes event `e`'s change, and waits until the kernel has it: a carrier change until the
/// other end sees it (routes through the link learn of it only then). The lab's error rides
/// inside: a link slow to follow is the lab's fault, which `run` tells from the rest.
fn make(lab: &Lab, topo: &Topology, e: &Event) -> io::Result<()> {
    match e.change {
        Change::Carrier(up) => {
            lab.set_link(&e.node, &e.iface, up)
                .map_err(io::Error::other)?;
            let deadline = std::time::Instant::now() + crate::wait::lab_patience();
            lab.wait_oper(&e.peer_node, &e.peer_iface, up, deadline)
                .map_err(io::Error::other)?;
            if up {
                // Routes through the end went with it; the node's topology brings them back.
                if let Some(n) = topo.node(&e.node) {
                    lab.restore_routes(&e.node, &n.routes)
                        .map_err(io::Error::other)?;
                }
            }
            Ok(())
        }
        change => lab
            .fault(&e.node, &e.iface, change)
            .map_err(io::Error::other),
    }
}

/// The stalls that the harness caused itself: the client's answer was waiting in its socket;
/// the server read the request late (more than half the flow's time after it was sent, on a
/// network with no delay of its own); or a server socket still held unread requests when the
/// servers stopped. A request that never reached the server's socket, or an answer that never
/// reached the client's, is the network's doing, and stays a verdict.
fn lagged(
    stalls: &[(u32, Stall)],
    state: &ServerState,
    timeouts: &BTreeMap<u32, Duration>,
) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for (id, s) in stalls {
        let half = timeouts.get(id).copied().unwrap_or_default() / 2;
        let read = state
            .reads
            .get(id)
            .filter(|r| s.step > 0 && r.last >= s.step);
        if s.answer_waiting {
            out.push((
                *id,
                format!(
                "flow {id}: its answer was waiting, unread, in the client's socket when it gave up"
            ),
            ));
        } else if let Some(r) = read.filter(|r| r.at.saturating_duration_since(s.sent) > half) {
            out.push((
                *id,
                format!(
                    "flow {id}: the harness's server read its request {} ms after it was sent",
                    r.at.saturating_duration_since(s.sent).as_millis()
                ),
            ));
        } else if state.unread_at_stop > 0 {
            out.push((*id, format!(
                "flow {id}: gave up while the harness's servers still had {} bytes of requests unread",
                state.unread_at_stop
            )));
        }
    }
    out
}

/// Keeps the calling thread on one CPU, until dropped: when pinned, the CPUs it was allowed
/// before and the one it is on.
struct Pinned(Option<(nix::sched::CpuSet, usize)>);

impl Pinned {
    /// On the CPU it runs on now.
    fn here() -> Pinned {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        Pinned::to(usize::try_from(cpu).ok())
    }

    /// On `cpu` (not pinned when there is none or the kernel refuses).
    fn to(cpu: Option<usize>) -> Pinned {
        use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
        let me = nix::unistd::Pid::from_raw(0);
        let (Some(cpu), Ok(before)) = (cpu, sched_getaffinity(me)) else {
            return Pinned(None);
        };
        let mut one = CpuSet::new();
        if one.set(cpu).is_err() || sched_setaffinity(me, &one).is_err() {
            return Pinned(None);
        }
        Pinned(Some((before, cpu)))
    }

    /// A CPU the thread was allowed besides the one it is pinned to.
    fn other_cpu(&self) -> Option<usize> {
        let (before, cpu) = self.0.as_ref()?;
        (0..nix::sched::CpuSet::count()).find(|&c| c != *cpu && before.is_set(c).unwrap_or(false))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some((before, _)) = &self.0 {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), before);
        }
    }
}

/// The harness's servers, answering on a thread of their own until dropped.
struct Servers {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Servers {
    /// Starts serving; returns once every listener is registered (or one could not be).
    fn start(
        tcp: Vec<std::net::TcpListener>,
        udp: Vec<(std::net::UdpSocket, mpsc::UnboundedReceiver<Probe>)>,
        seen: &Seen,
        cpu: Option<usize>,
    ) -> io::Result<Servers> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<io::Result<()>>();
        let seen = Arc::clone(seen);
        let thread = std::thread::Builder::new()
            .name("servers".into())
            .spawn(move || {
                let _pinned = Pinned::to(cpu);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let conns: Conns = Arc::default();
                    let mut udp_socks = Vec::new();
                    let started = (|| {
                        for l in tcp {
                            tokio::spawn(serve_tcp(
                                TcpListener::from_std(l)?,
                                Arc::clone(&seen),
                                Arc::clone(&conns),
                            ));
                        }
                        for (s, probes) in udp {
                            let s = Arc::new(UdpSocket::from_std(s)?);
                            udp_socks.push(Arc::clone(&s));
                            tokio::spawn(serve_udp(s, Arc::clone(&seen), probes));
                        }
                        Ok(())
                    })();
                    let ok = started.is_ok();
                    let _ = ready_tx.send(started);
                    if ok {
                        let _ = stopped.await;
                        // What the servers had not read yet: the datagrams are read now (their
                        // source is known, and that they were read late); what a connection
                        // still holds is counted.
                        let mut buf = [0u8; 2048];
                        for s in &udp_socks {
                            while let Ok((n, peer)) = s.try_recv_from(&mut buf) {
                                record(&seen, &buf[..n], peer);
                            }
                        }
                        let unread: usize = conns
                            .lock()
                            .expect("connections")
                            .values()
                            .map(|fd| unread_bytes(*fd))
                            .sum();
                        seen.lock().expect("server state").unread_at_stop += unread;
                    }
                });
            })?;
        let servers = Servers {
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready.recv() {
            Ok(Ok(())) => Ok(servers),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("the servers' thread ended before serving")),
        }
    }
}

/// Stops serving (open connections are closed) and waits for the thread to end.
impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Client sockets made ahead of their flows' start, per batch.
const SOCKET_BATCH: usize = 1024;
/// Flows running at once, at most (each holds a socket at the client and one at the server).
const RUNNING: usize = 4096;
/// What a small datagram takes of a socket's receive buffer, with the kernel's overhead.
const DATAGRAM_ROOM: usize = 2048;

/// Sockets for `flows`, bound to their fixed client ports inside their nodes (one visit per
/// node).
fn client_sockets(lab: &Lab, flows: &[FlowSpec]) -> io::Result<Vec<(u32, ClientSock)>> {
    let mut socks = Vec::with_capacity(flows.len());
    let nodes: BTreeSet<&str> = flows.iter().map(|f| f.client_node.as_str()).collect();
    for node in nodes {
        let mine: Vec<FlowSpec> = flows
            .iter()
            .filter(|f| f.client_node == node)
            .cloned()
            .collect();
        let made = lab
            .ns(node)
            .run(move || -> io::Result<Vec<(u32, ClientSock)>> {
                mine.iter()
                    .map(|f| {
                        let s = match f.proto {
                            Proto::Tcp => {
                                let s = if f.client.is_ipv6() {
                                    TcpSocket::new_v6()?
                                } else {
                                    TcpSocket::new_v4()?
                                };
                                s.set_reuseaddr(true)?;
                                s.bind(f.client)?;
                                ClientSock::Tcp(s)
                            }
                            Proto::Icmp => {
                                return Err(io::Error::other(
                                    "crafted packets are injected, not driven",
                                ))
                            }
                            Proto::Udp => {
                                let s = std::net::UdpSocket::bind(f.client)?;
                                s.set_nonblocking(true)?;
                                ClientSock::Udp(s)
                            }
                        };
                        Ok((f.id, s))
                    })
                    .collect()
            })?;
        socks.extend(made.map_err(|e| ctx(e, node, "client sockets"))?);
    }
    Ok(socks)
}

async fn join(h: tokio::task::JoinHandle<Ran>) -> Ran {
    h.await.unwrap_or_else(|e| {
        let out = ClientOutcome {
            error: Some(format!("client task failed: {e}")),
            ..Default::default()
        };
        (out, None, None)
    })
}

fn ctx(e: io::Error, node: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("node `{node}`: {what}: {e}"))
}

fn record(seen: &Seen, payload: &[u8], peer: SocketAddr) -> Option<(u32, u32)> {
    let (tag, k) = parse_tag(payload)?;
    if !tag.request {
        return None;
    }
    let at = Instant::now();
    let mut state = seen.lock().expect("server state");
    let r = state.reads.entry(tag.flow).or_insert(Read {
        source: peer.ip().to_canonical(),
        last: 0,
        at,
    });
    if k > r.last {
        (r.last, r.at) = (k, at);
    }
    drop(state);
    Some((tag.flow, k))
}

/// The servers' open connections (their fds, by a number of their own), to tell at the end
/// whether any still held a request unread.
type Conns = Arc<Mutex<BTreeMap<u64, std::os::fd::RawFd>>>;

/// Bytes waiting to be read on socket `fd` (`FIONREAD`); 0 when it cannot be told.
fn unread_bytes(fd: std::os::fd::RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`; `fd` is an
    // open socket (its owner is alive while it is listed) or the call fails harmlessly.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

async fn serve_tcp(l: TcpListener, seen: Seen, conns: Conns) {
    let mut next = 0u64;
    while let Ok((stream, peer)) = l.accept().await {
        let seen = Arc::clone(&seen);
        let conns = Arc::clone(&conns);
        next += 1;
        let id = next;
        conns
            .lock()
            .expect("connections")
            .insert(id, std::os::fd::AsRawFd::as_raw_fd(&stream));
        tokio::spawn(async move {
            // Unlisted when the task ends or is dropped, before its socket closes.
            struct Listed(Conns, u64);
            impl Drop for Listed {
                fn drop(&mut self) {
                    self.0.lock().expect("connections").remove(&self.1);
                }
            }
            let (r, mut w) = stream.into_split();
            let _listed = Listed(conns, id);
            let mut lines = BufReader::new(r);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                match record(&seen, &line, peer) {
                    Some((f, k)) => {
                        if w.write_all(reply_payload(f, k).as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                }
                line.clear();
            }
        });
    }
}

/// ICMP (or, for `v6`, ICMPv6) destination-unreachable messages `node`'s kernel has sent:
/// `OutDestUnreachs` in `/proc/net/snmp`, `Icmp6OutDestUnreachs` in `/proc/net/snmp6`.
fn unreachables_sent(lab: &Lab, node: &str, v6: bool) -> io::Result<u64> {
    let file = if v6 { "snmp6" } else { "snmp" };
    let text = lab
        .ns(node)
        .run(move || std::fs::read_to_string(format!("/proc/thread-self/net/{file}")))??;
    Ok(if v6 {
        snmp6_value(&text, "Icmp6OutDestUnreachs")
    } else {
        snmp_value(&text, "Icmp", "OutDestUnreachs")
    })
}

/// A counter of `/proc/net/snmp`: a line of names after `group: `, then one of values.
fn snmp_value(snmp: &str, group: &str, name: &str) -> u64 {
    let head = format!("{group}: ");
    let mut lines = snmp.lines().filter(|l| l.starts_with(&head));
    let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let at = names.split_whitespace().position(|n| n == name);
    at.and_then(|i| values.split_whitespace().nth(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A counter of `/proc/net/snmp6`: one `name value` per line.
fn snmp6_value(snmp6: &str, name: &str) -> u64 {
    snmp6
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A RELATED probe for flow `f`: its server sends the closed client port a late datagram, and
/// the probe waits until the client's kernel has sent its port unreachable (the one packet it
/// sends for it); a datagram that drew no answer is sent again, up to three times. (Under load,
/// a late datagram can reach the client's interface and draw no answer; the cause is unknown.)
/// Whether the client's kernel answered.
async fn probe(lab: &Lab, f: &FlowSpec, server: &mpsc::UnboundedSender<Probe>) -> io::Result<bool> {
    for _ in 0..3 {
        let before = unreachables_sent(lab, &f.client_node, f.client.is_ipv6())?;
        let (tx, rx) = oneshot::channel();
        if server.send((f.id, tx)).is_err() {
            return Ok(false);
        }
        let _ = tokio::time::timeout(PROBE_WAIT, rx).await;
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            if unreachables_sent(lab, &f.client_node, f.client.is_ipv6())? > before {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(false)
}

/// A client asking its UDP server to send it a late datagram: (flow, done).
type Probe = (u32, oneshot::Sender<()>);

async fn serve_udp(s: Arc<UdpSocket>, seen: Seen, mut probes: mpsc::UnboundedReceiver<Probe>) {
    let mut buf = [0u8; 2048];
    let mut peers: BTreeMap<u32, SocketAddr> = BTreeMap::new();
    loop {
        tokio::select! {
            got = s.recv_from(&mut buf) => {
                let Ok((n, peer)) = got else { return };
                if let Some((f, k)) = record(&seen, &buf[..n], peer) {
                    peers.insert(f, peer);
                    let _ = s.send_to(reply_payload(f, k).as_bytes(), peer).await;
                }
            }
            Some((f, done)) = probes.recv() => {
                if let Some(peer) = peers.get(&f) {
                    let _ = s.send_to(late_payload(f).as_bytes(), *peer).await;
                }
                let _ = done.send(());
            }
        }
    }
}

/// Whether a socket error is the connection refused or reset: a TCP RST reached the client.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
    )
}

/// Runs one flow; `first` is told as soon as its first packet has been sent.
async fn run_flow(f: &FlowSpec, sock: ClientSock, first: oneshot::Sender<()>) -> Ran {
    let deadline = Instant::now() + f.timeout;
    let mut stall = None;
    let started = std::time::SystemTime::now();
    let out = drive_flow(f, sock, first, deadline, &mut stall).await;
    (out, stall, Some((started, std::time::SystemTime::now())))
}

/// Runs one flow until `deadline`; when it gives up waiting, says so in `stall`.
async fn drive_flow(
    f: &FlowSpec,
    sock: ClientSock,
    first: oneshot::Sender<()>,
    deadline: Instant,
    stall: &mut Option<Stall>,
) -> ClientOutcome {
    let late = || format!("no answer within {}", crate::model::human(f.timeout));
    let mut out = ClientOutcome::default();
    let mut first = Some(first);
    let mut sent = || {
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
    };
    match sock {
        ClientSock::Tcp(s) => {
            // The first poll makes the connect(2) call that sends the SYN.
            let connect = timeout_at(deadline, s.connect(f.dial));
            tokio::pin!(connect);
            let connected = match futures::poll!(&mut connect) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => {
                    sent();
                    connect.await
                }
            };
            sent();
            let stream = match connected {
                Err(_) => {
                    *stall = Some(Stall {
                        step: 0,
                        sent: deadline - f.timeout,
                        answer_waiting: false,
                        at: std::time::SystemTime::now(),
                    });
                    return ClientOutcome {
                        error: Some(format!("connect: {}", late())),
                        ..out
                    };
                }
                Ok(Err(e)) => {
                    return ClientOutcome {
                        error: Some(format!("connect: {e}")),
                        reset: is_reset(&e),
                        ..out
                    }
                }
                Ok(Ok(s)) => s,
            };
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            let mut line = Vec::new();
            for k in 1..=f.round_trips {
                let step = format!("round trip {k} of {}", f.round_trips);
                if k > 1 && !f.interval.is_zero() {
                    tokio::time::sleep(f.interval).await;
                }
                if let Err(e) = w.write_all(&padded_request(f.id, k, f.size)).await {
                    out.reset = is_reset(&e);
                    out.error = Some(format!("{step}: {e}"));
                    return out;
                }
                let sent_at = Instant::now();
                line.clear();
                match timeout_at(deadline, r.read_until(b'\n', &mut line)).await {
                    Err(_) => {
                        let fd = std::os::fd::AsRawFd::as_raw_fd(r.get_ref().as_ref());
                        *stall = Some(Stall {
                            step: k,
                            sent: sent_at,
                            answer_waiting: !r.buffer().is_empty() || unread_bytes(fd) > 0,
                            at: std::time::SystemTime::now(),
                        });
                        out.error = Some(format!("{step}: {}", late()))
                    }
                    Ok(Err(e)) => {
                        out.reset = is_reset(&e);
                        out.error = Some(format!("{step}: {e}"));
                    }
                    Ok(Ok(0)) => {
                        out.error = Some(format!("{step}: the server closed the connection"))
                    }
                    Ok(Ok(_)) if line != reply_payload(f.id, k).as_bytes() => {
                        out.error = Some(format!(
                            "{step}: wrong answer {:?}",
                            String::from_utf8_lossy(&line)
                        ))
                    }
                    Ok(Ok(_)) => out.round_trips_done = k,
                }
                if out.error.is_some() {
                    return out;
                }
            }
            // Close both ways and wait for the server's FIN, so the whole close is captured.
            let _ = w.shutdown().await;
            let mut rest = Vec::new();
            let _ = timeout_at(deadline, r.read_to_end(&mut rest)).await;
            out.completed = true;
        }
        ClientSock::Udp(s) => {
            let s = match UdpSocket::from_std(s) {
                Ok(s) => s,
                Err(e) => {
                    return ClientOutcome {
                        error: Some(e.to_string()),
                        ..out
                    }
                }
            };
            if let Err(e) = s.connect(f.dial).await {
                return ClientOutcome {
                    error: Some(format!("connect: {e}")),
                    ..out
                };
            }
            let mut buf = [0u8; 512];
            if !f.interval.is_zero() {
                return stream(f, &s, sent, deadline, stall, out).await;
            }
            for k in 1..=f.round_trips {
                let step = format!("datagram {k} of {}", f.round_trips);
                if let Err(e) = s.send(request_payload(f.id, k).as_bytes()).await {
                    out.error = Some(format!("{step}: {e}"));
                    return out;
                }
                sent();
                let sent_at = Instant::now();
                match timeout_at(deadline, s.recv(&mut buf)).await {
                    Err(_) => {
                        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                        *stall = Some(Stall {
                            step: k,
                            sent: sent_at,
                            answer_waiting: unread_bytes(fd) > 0,
                            at: std::time::SystemTime::now(),
                        });
                        out.error = Some(format!("{step}: {}", late()))
                    }
                    Ok(Err(e)) => out.error = Some(format!("{step}: {e}")),
                    Ok(Ok(n)) if buf[..n] != *reply_payload(f.id, k).as_bytes() => {
                        out.error = Some(format!(
                            "{step}: wrong answer {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        ))
                    }
                    Ok(Ok(_)) => out.round_trips_done = k,
                }
                if out.error.is_some() {
                    return out;
                }
            }
            out.completed = true;
            // The socket closes here: a RELATED probe's late datagram finds the port closed.
        }
    }
    out
}

/// A UDP stream (`interval:`): datagram k is sent `interval` after datagram k − 1 whether or
/// not its answer came, as a voice or video stream goes on over a loss; answers are read as
/// they come. It ends once its last datagram is answered, or at its deadline. It completed if
/// every datagram was answered; it `recovered` if some were not but its last one was (the
/// stream came back, as after a failover that moved it).
async fn stream(
    f: &FlowSpec,
    s: &UdpSocket,
    mut sent: impl FnMut(),
    deadline: Instant,
    stall: &mut Option<Stall>,
    mut out: ClientOutcome,
) -> ClientOutcome {
    let n = f.round_trips;
    let start = Instant::now();
    let due = |k: u32| start + f.interval * (k - 1);
    let mut answered = vec![false; n as usize + 1];
    let mut next = 1u32;
    let mut buf = [0u8; 512];
    let mut other_error = None;
    while !answered[n as usize] {
        while next <= n && Instant::now() >= due(next) {
            if let Err(e) = s.send(request_payload(f.id, next).as_bytes()).await {
                other_error.get_or_insert(format!("datagram {next} of {n}: {e}"));
            }
            sent();
            next += 1;
        }
        let wake = if next <= n {
            due(next).min(deadline)
        } else {
            deadline
        };
        match timeout_at(wake, s.recv(&mut buf)).await {
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => {}
            Ok(Ok(len)) => match parse_tag(&buf[..len]) {
                Some((t, k)) if t.flow == f.id && !t.request && (1..=n).contains(&k) => {
                    answered[k as usize] = true
                }
                _ => {
                    other_error.get_or_insert(format!(
                        "wrong answer {:?}",
                        String::from_utf8_lossy(&buf[..len])
                    ));
                }
            },
            // An ICMP error about an earlier datagram (port unreachable): the stream goes on.
            Ok(Err(e)) => {
                other_error.get_or_insert(e.to_string());
            }
        }
    }
    let lost: Vec<u32> = (1..=n).filter(|k| !answered[*k as usize]).collect();
    out.round_trips_done = n - lost.len() as u32;
    out.completed = lost.is_empty() && other_error.is_none();
    out.recovered = !lost.is_empty() && answered[n as usize];
    if !lost.is_empty() {
        if !answered[n as usize] {
            let fd = std::os::fd::AsRawFd::as_raw_fd(s);
            *stall = Some(Stall {
                step: n,
                sent: due(n),
                answer_waiting: unread_bytes(fd) > 0,
                at: std::time::SystemTime::now(),
            });
        }
        out.error = Some(format!(
            "{} of {n} datagrams unanswered ({}){}",
            lost.len(),
            crate::report::words::ranges(&lost),
            if out.recovered {
                ", the last answered: the stream came back"
            } else {
                ""
            }
        ));
    } else if let Some(e) = other_error {
        out.error = Some(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall(step: u32, sent: Instant, answer_waiting: bool) -> Stall {
        Stall {
            step,
            sent,
            answer_waiting,
            at: std::time::SystemTime::now(),
        }
    }

    fn read(last: u32, at: Instant) -> Read {
        Read {
            source: std::net::Ipv4Addr::new(10, 37, 1, 253).into(),
            last,
            at,
        }
    }

    /// A client that gave up is the harness's own doing only on evidence: its answer waiting
    /// in its socket, its request read late by the harness's server, or requests left unread
    /// when the servers stopped. A request the server never got is the network's.
    #[test]
    fn a_stall_is_the_harness_s_only_on_evidence() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let timeouts = BTreeMap::from([(1, sec), (2, sec), (3, sec), (4, sec)]);
        let mut state = ServerState::default();
        state
            .reads
            .insert(2, read(1, t0 + Duration::from_millis(700)));
        state
            .reads
            .insert(3, read(1, t0 + Duration::from_millis(5)));
        state
            .reads
            .insert(4, read(1, t0 + Duration::from_millis(5)));
        let stalls = [
            (1, stall(1, t0, true)),  // answer waiting
            (2, stall(1, t0, false)), // read 700 ms after it was sent
            (3, stall(1, t0, false)), // read at once: the answer was lost on the way
            (4, stall(2, t0, false)), // request 2 never reached the server
        ];
        let got: Vec<u32> = lagged(&stalls, &state, &timeouts)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(got, [1, 2]);
        state.unread_at_stop = 40;
        let got = lagged(&stalls, &state, &timeouts);
        assert_eq!(got.len(), 4);
        assert!(got[3].1.contains("40 bytes of requests unread"), "{got:?}");
    }
}

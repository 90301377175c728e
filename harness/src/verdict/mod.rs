//! Observations → each flow's path → expectations checked → [`Verdict`]. Pure.
//!
//! A packet is recognised on every link by its flow's tuples: the client's own, the NAT
//! mapping from the router's conntrack, and any tuple whose payload carries the flow id. The
//! same packet is matched across links by its IP id, TCP sequence numbers, flags and length
//! (NAT changes none of these). Where it died is where its last sighting led: the receiving
//! node of a sighting that no other sighting of it leaves from.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::model::{Check, Expectation, ExpectedFailure, FlowSpec, Plan, Proto, Topology};
use crate::observe::packet::{self, Packet};
use crate::observe::{CtEntry, Observations, Sighting, SightingId, Tuple};
use smol_str::SmolStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// client → server
    Out,
    /// server → client
    Back,
}

impl Dir {
    /// The other way.
    fn reversed(self) -> Dir {
        match self {
            Dir::Out => Dir::Back,
            Dir::Back => Dir::Out,
        }
    }
}

/// Where packets of a flow died, and how many.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DropSite {
    pub dir: Dir,
    pub node: String,
    pub after_link: String,
    pub count: u32,
}

/// A flow's path through the lab, as observed.
///
/// Names are [`SmolStr`]s: a link or group name is kept inline and a story line shared between
/// the flows that tell it, so a hundred thousand paths stay small.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowPath {
    pub id: u32,
    pub group: SmolStr,
    pub proto: Proto,
    pub client: SocketAddrV4,
    /// Uplinks its packets left the router on, in order of first use.
    pub out: Vec<SmolStr>,
    /// Uplinks its replies came back on, in order of first use.
    pub back: Vec<SmolStr>,
    /// The source address the flow's first packet had on its uplink.
    pub first_out_source: Option<Ipv4Addr>,
    /// Uplinks the router itself sent the flow's packets out on, either way.
    pub router_out: Vec<SmolStr>,
    /// The uplink its first packet left on: the router's choice for the flow.
    pub first_out: Option<SmolStr>,
    pub source_seen: Option<Ipv4Addr>,
    pub mark: Option<u32>,
    pub completed: bool,
    pub client_error: Option<String>,
    /// With a RELATED probe: whether an ICMP error of the flow was seen.
    pub related_seen: Option<bool>,
    /// Distinct packets seen, both ways (retransmissions count).
    pub packets: u32,
    pub drops: Vec<DropSite>,
    /// Hop summary, one line per run of similar packets.
    pub story: Vec<SmolStr>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowFailure {
    pub flow: u32,
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExpResult {
    pub name: String,
    pub check: String,
    pub selector: String,
    pub flows: Vec<u32>,
    pub failures: Vec<FlowFailure>,
    /// For an expectation on the flows together (a split): what was observed.
    pub observed: Option<String>,
    /// … and whether that broke it.
    pub broke_overall: bool,
}

impl ExpResult {
    pub fn failed_flows(&self) -> Vec<u32> {
        self.failures.iter().map(|f| f.flow).collect()
    }
    pub fn broke(&self) -> bool {
        self.broke_overall || !self.failures.is_empty()
    }
    /// Whether this expectation judges its flows together, by statistics.
    pub fn statistical(&self) -> bool {
        self.observed.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "problems", rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// Some expectation broke, and the scenario is not declared broken.
    Fail,
    /// A declared-broken scenario broke exactly as declared.
    BrokenAsDeclared,
    /// A declared-broken scenario did not break as declared: what differed.
    NotAsDeclared(Vec<String>),
}

impl Outcome {
    /// 0 when the scenario says what it should, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Pass | Outcome::BrokenAsDeclared => 0,
            Outcome::Fail | Outcome::NotAsDeclared(_) => 1,
        }
    }
    pub fn ok(&self) -> bool {
        self.exit_code() == 0
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub scenario: String,
    pub router: String,
    pub flows: Vec<FlowPath>,
    pub results: Vec<ExpResult>,
    pub declared: Option<ExpectedFailure>,
    pub outcome: Outcome,
}

impl Verdict {
    /// Flows judged together by a statistical expectation: which uplink each took varies from
    /// run to run, only their split counts.
    pub fn statistical_flows(&self) -> BTreeSet<u32> {
        self.results
            .iter()
            .filter(|r| r.statistical())
            .flat_map(|r| r.flows.iter().copied())
            .collect()
    }
}

/// Judges a run.
pub fn judge(plan: &Plan, obs: &Observations) -> Verdict {
    let flows = paths(plan, obs);

    let by_id: BTreeMap<u32, &FlowPath> = flows.iter().map(|f| (f.id, f)).collect();
    let results: Vec<ExpResult> = plan
        .expectations
        .iter()
        .map(|e| check(e, &by_id, &plan.topology.router.node))
        .collect();
    let outcome = outcome(&results, plan.expected_failure.as_ref());
    Verdict {
        scenario: plan.name.clone(),
        router: plan.topology.router.node.clone(),
        flows,
        results,
        declared: plan.expected_failure.clone(),
        outcome,
    }
}

/// Flows that gave up waiting (`gave_up`) though the captures saw none of their packets, not
/// even on the client's own link: the client's kernel sent them, so the lab lost them before
/// the rules could act (a client on the router itself is left out: its own rules can keep its
/// packets in). A verdict on such a flow would rest on nothing seen.
pub fn unseen(plan: &Plan, verdict: &Verdict, gave_up: &BTreeSet<u32>) -> Vec<String> {
    let clients: BTreeMap<u32, &str> = plan
        .flows
        .iter()
        .map(|f| (f.id, f.client_node.as_str()))
        .collect();
    verdict
        .flows
        .iter()
        .filter(|p| p.packets == 0 && gave_up.contains(&p.id))
        .filter(|p| clients.get(&p.id).is_some_and(|c| *c != verdict.router))
        .map(|p| {
            format!(
                "flow {}: its client sent it, but the captures saw none of its packets, not even on the client's own link",
                p.id
            )
        })
        .collect()
}

fn client_tuple(f: &FlowSpec) -> Tuple {
    Tuple {
        proto: f.proto.number(),
        src: *f.client.ip(),
        sport: f.client.port(),
        dst: *f.dial.ip(),
        dport: f.dial.port(),
    }
}

/// One packet, gathered from all the links it was seen on.
struct Hop<'a> {
    dir: Dir,
    first_t: u64,
    /// (sighting, sender node, receiver node)
    seen: Vec<(Sighting, &'a str, &'a str)>,
}

impl Hop<'_> {
    fn pkt(&self) -> &Packet {
        &self.seen[0].0.pkt
    }
}

/// Bit 31 of a sighting id in [`Assigned`]: the sighting goes server → client.
const BACK: u32 = 1 << 31;

/// Each flow's sightings, read from the captures: every sighting assigned to its flow. The
/// one reading of the captures that [`paths`] and [`traces`] share; the sightings are grouped
/// into packets one flow at a time ([`Assigned::hops`]), so only one flow's grouping is in
/// memory at once.
struct Assigned<'a> {
    topo: &'a Topology,
    obs: &'a Observations,
    /// Flow ids → place in the plan.
    place: rustc_hash::FxHashMap<u32, u32>,
    /// The sightings of the flow at place k are `ids[starts[k]..starts[k + 1]]` (with [`BACK`]
    /// set on replies): one array for all flows, four bytes a sighting.
    starts: Vec<u32>,
    ids: Vec<SightingId>,
    marks: BTreeMap<u32, u32>,
    sources: BTreeMap<u32, Ipv4Addr>,
}

fn assign<'a>(plan: &'a Plan, obs: &'a Observations) -> Assigned<'a> {
    // One pass over every sighting, a hash lookup each: a fast hash for small keys (the keys
    // are the harness's own, not an attacker's).
    use rustc_hash::FxHashMap as HashMap;
    let place: HashMap<u32, u32> = plan
        .flows
        .iter()
        .enumerate()
        .map(|(k, f)| (f.id, k as u32))
        .collect();
    // Tuple → (place of its flow, direction).
    let mut tuples: HashMap<Tuple, (u32, Dir)> = HashMap::default();
    let mut marks: BTreeMap<u32, u32> = BTreeMap::new();
    let mut sources: BTreeMap<u32, Ipv4Addr> = BTreeMap::new();
    // The conntrack entries by original tuple, and by tuple without its source; the first of
    // each in table order.
    let mut by_orig: HashMap<Tuple, &CtEntry> = HashMap::default();
    let mut by_port: HashMap<(u8, u16, Ipv4Addr, u16), &CtEntry> = HashMap::default();
    for c in &obs.conntrack {
        let o = c.orig;
        by_orig.entry(o).or_insert(c);
        by_port
            .entry((o.proto, o.sport, o.dst, o.dport))
            .or_insert(c);
    }
    for (k, f) in plan.flows.iter().enumerate() {
        let k = k as u32;
        let t = client_tuple(f);
        // A client bound to 0.0.0.0 is found by port and destination; the kernel chose its source.
        let ct = if t.src.is_unspecified() {
            by_port.get(&(t.proto, t.sport, t.dst, t.dport)).copied()
        } else {
            by_orig.get(&t).copied()
        };
        let orig = ct.map_or(t, |c| c.orig);
        tuples.insert(orig, (k, Dir::Out));
        tuples.insert(orig.reversed(), (k, Dir::Back));
        if let Some(ct) = ct {
            tuples.entry(ct.reply).or_insert((k, Dir::Back));
            tuples.entry(ct.reply.reversed()).or_insert((k, Dir::Out));
            marks.insert(f.id, ct.mark);
            sources.insert(f.id, ct.orig.src);
        }
    }
    drop((by_orig, by_port));
    // Tuples the payload names (NAT the conntrack table did not show).
    for (t, tag) in obs.sightings.tagged() {
        let Some(&k) = place.get(&tag.flow) else {
            continue;
        };
        let dir = if tag.request { Dir::Out } else { Dir::Back };
        tuples.entry(t).or_insert((k, dir));
        tuples.entry(t.reversed()).or_insert((k, dir.reversed()));
    }
    // Each sighting's flow (place, with BACK for replies; u32::MAX for none), then the
    // sightings of each flow together.
    let code = |found: Option<(u32, Dir)>| match found {
        Some((k, dir)) => k | if dir == Dir::Back { BACK } else { 0 },
        None => u32::MAX,
    };
    let owner: Vec<u32> = obs.sightings.classify(
        |t| code(tuples.get(t).copied()),
        // An ICMP error belongs to the flow of the packet it quotes, going the other way.
        |inner| code(tuples.get(inner).map(|&(f, d)| (f, d.reversed()))),
    );
    drop(tuples);
    let mut counts = vec![0u32; plan.flows.len() + 1];
    for &o in owner.iter().filter(|&&o| o != u32::MAX) {
        counts[(o & !BACK) as usize + 1] += 1;
    }
    let mut starts = counts;
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut fill = starts.clone();
    let mut ids = vec![0; starts[plan.flows.len()] as usize];
    for (id, o) in obs.sightings.ids().zip(owner) {
        if o != u32::MAX {
            let k = (o & !BACK) as usize;
            ids[fill[k] as usize] = id | (o & BACK);
            fill[k] += 1;
        }
    }
    Assigned {
        topo: &plan.topology,
        obs,
        place,
        starts,
        ids,
        marks,
        sources,
    }
}

impl<'a> Assigned<'a> {
    /// Flow `f`'s sightings grouped into packets, ordered.
    fn hops(&self, f: &'a FlowSpec) -> Vec<Hop<'a>> {
        use rustc_hash::FxHashMap as HashMap;
        let topo = self.topo;
        let Some(&k) = self.place.get(&f.id) else {
            return Vec::new();
        };
        let (from, to) = (self.starts[k as usize], self.starts[k as usize + 1]);
        // In the order they were seen (time, then link and capture order).
        let mut mine: Vec<(Sighting, Dir)> = self.ids[from as usize..to as usize]
            .iter()
            .map(|&id| {
                let dir = if id & BACK != 0 { Dir::Back } else { Dir::Out };
                (self.obs.sightings.get(id), dir)
            })
            .collect();
        mine.sort_unstable_by_key(|(s, _)| (s.t_ns, s.link, s.seq));
        // The n-th copy of a packet on a link matches the n-th on another (a retransmitted
        // SYN-ACK can repeat its IP id); a packet sent back out the link it came in on
        // crosses it the other way and stays one.
        type Key = (Dir, u16, u32, u32, u8, u16, u32);
        let mut per_packet: HashMap<Key, Hop> = HashMap::default();
        let mut copies: HashMap<(usize, bool, Key), u32> = HashMap::default();
        for (s, dir) in mine {
            let p = &s.pkt;
            let base: Key = (dir, p.ip_id, p.seq, p.ack, p.flags, p.payload_len, 0);
            let n = copies.entry((s.link, s.from_a, base)).or_insert(0);
            let key = (base.0, base.1, base.2, base.3, base.4, base.5, *n);
            *n += 1;
            let link = &topo.links[s.link];
            let (from, to) = if s.from_a {
                (&link.a.node, &link.b.node)
            } else {
                (&link.b.node, &link.a.node)
            };
            let hop = per_packet.entry(key).or_insert(Hop {
                dir,
                first_t: s.t_ns,
                seen: Vec::new(),
            });
            hop.first_t = hop.first_t.min(s.t_ns);
            hop.seen.push((s, from.as_str(), to.as_str()));
        }
        let mut hops: Vec<Hop> = per_packet.into_values().collect();
        // Order packets by their sighting on the client's link, where one capture thread saw
        // both directions in order; failing that, on the link they started on.
        hops.sort_by_key(|h| {
            let origin = origin(f, h.dir);
            let at = |pick: &dyn Fn(&str, &str) -> bool| {
                h.seen
                    .iter()
                    .filter(|(_, from, to)| pick(from, to))
                    .map(|(s, ..)| (s.t_ns, s.link, s.seq))
                    .min()
            };
            at(&|from, to| from == f.client_node || to == f.client_node)
                .map(|t| (0, t))
                .or_else(|| at(&|from, _| from == origin).map(|t| (1, t)))
                .unwrap_or((2, (h.first_t, 0, 0)))
        });
        hops
    }
}

/// Every flow's path, in flow order.
pub fn paths(plan: &Plan, obs: &Observations) -> Vec<FlowPath> {
    let a = assign(plan, obs);
    let mut lines = Lines::default();
    plan.flows
        .iter()
        .map(|f| {
            let hops = a.hops(f);
            let mark = a.marks.get(&f.id).copied();
            let mut p = flow_path(&plan.topology, f, &hops, obs, mark, &mut lines);
            if let Some(src) = a
                .sources
                .get(&f.id)
                .filter(|_| f.client.ip().is_unspecified())
            {
                p.client.set_ip(*src);
            }
            p
        })
        .collect()
}

/// One link a packet was seen on, with its addresses there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HopTrace {
    pub link: String,
    /// The node that sent it on the link, and the one it went to.
    pub from: String,
    pub to: String,
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    /// Nanoseconds since the capture started (approximate across links).
    pub t_ns: u64,
}

/// One packet of a flow, hop by hop, as the captures saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PacketTrace {
    pub dir: Dir,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    /// `SYN`, `SYN-ACK`, `ACK`, `data`, `FIN`, `RST`, `datagram`, `ICMP port unreachable` …
    pub kind: &'static str,
    /// TCP flags as letters, `S`, `SA`, `PA`, `FA`, `R` (empty for UDP and ICMP).
    pub flags: String,
    pub payload_len: u16,
    /// Its sightings in path order: from the flow's end it left, each next one sent by the node
    /// the previous one reached.
    pub hops: Vec<HopTrace>,
    /// Where it died, when it did not reach the flow's other end: the node, and the link it
    /// was last seen on.
    pub died: Option<(String, String)>,
}

/// `S`, `SA`, `PA`, `FA`, `R`: the TCP flags of a packet, as tcpdump prints them.
fn flag_letters(p: &Packet) -> String {
    if p.proto != 6 {
        return String::new();
    }
    [
        (packet::FIN, 'F'),
        (packet::SYN, 'S'),
        (packet::RST, 'R'),
        (0x08, 'P'), // PSH
        (packet::ACK, 'A'),
    ]
    .iter()
    .filter(|(bit, _)| p.flags & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// Each flow's packets, hop by hop, in the order [`paths`] reads them: the same assignment of
/// sightings to flows and packets, for pages that show the packets themselves.
pub fn traces(plan: &Plan, obs: &Observations) -> BTreeMap<u32, Vec<PacketTrace>> {
    let a = assign(plan, obs);
    let topo = &plan.topology;
    plan.flows
        .iter()
        .map(|f| {
            let hops = a.hops(f);
            let packets = hops
                .iter()
                .map(|h| {
                    let p = h.pkt();
                    PacketTrace {
                        dir: h.dir,
                        proto: p.proto,
                        kind: packet::kind(p),
                        flags: flag_letters(p),
                        payload_len: p.payload_len,
                        hops: path_order(&h.seen, origin(f, h.dir))
                            .into_iter()
                            .map(|(s, from, to)| HopTrace {
                                link: topo.links[s.link].name.clone(),
                                from: from.to_string(),
                                to: to.to_string(),
                                src: s.pkt.src,
                                sport: s.pkt.sport,
                                dst: s.pkt.dst,
                                dport: s.pkt.dport,
                                t_ns: s.t_ns,
                            })
                            .collect(),
                        died: fate(topo, f, h)
                            .died
                            .map(|(node, link)| (node.to_string(), link.to_string())),
                    }
                })
                .collect();
            (f.id, packets)
        })
        .collect()
}

/// What became of one packet: the uplink it crossed (with its source there) and where it died.
struct Fate<'a> {
    uplink: Option<(&'a str, Ipv4Addr)>,
    died: Option<(&'a str, &'a str)>,
}

/// The node a packet going `dir` leaves from: the client out, the server back.
fn origin(f: &FlowSpec, dir: Dir) -> &str {
    if dir == Dir::Out {
        &f.client_node
    } else {
        &f.server_node
    }
}

fn fate<'a>(topo: &'a Topology, f: &FlowSpec, h: &Hop<'a>) -> Fate<'a> {
    let uplink = path_order(&h.seen, origin(f, h.dir))
        .into_iter()
        .find_map(|(s, ..)| {
            let name = &topo.links[s.link].name;
            topo.router
                .uplinks
                .contains(name)
                .then_some((name.as_str(), s.pkt.src))
        });
    let senders: BTreeSet<&str> = h.seen.iter().map(|(_, from, _)| *from).collect();
    let dest = if h.dir == Dir::Out {
        &f.server_node
    } else {
        &f.client_node
    };
    let finals: Vec<_> = h
        .seen
        .iter()
        .filter(|(_, _, to)| !senders.contains(to))
        .collect();
    let died = if finals.iter().any(|(_, _, to)| *to == dest) {
        None
    } else {
        finals
            .last()
            .map(|(s, _, to)| (*to, topo.links[s.link].name.as_str()))
    };
    Fate { uplink, died }
}

/// A packet's sightings along its path: from `origin`, each next one sent by the node the
/// previous one reached; any left over (a path the captures saw only in part) after, by time.
fn path_order<'a>(
    seen: &'a [(Sighting, &'a str, &'a str)],
    origin: &str,
) -> Vec<&'a (Sighting, &'a str, &'a str)> {
    let mut left: Vec<&(Sighting, &str, &str)> = seen.iter().collect();
    let mut out = Vec::with_capacity(seen.len());
    let mut at = origin;
    while let Some(i) = left.iter().position(|(_, from, _)| *from == at) {
        let next = left.remove(i);
        at = next.2;
        out.push(next);
    }
    out.extend(left);
    out
}

fn push_unique(v: &mut Vec<SmolStr>, s: &str) {
    if !v.iter().any(|x| x == s) {
        // One at a time: a flow uses one uplink or a few, and a hundred thousand lists of
        // four would be most of the paths' memory.
        v.reserve_exact(1);
        v.push(s.into());
    }
}

/// Story lines, each kept once however many flows tell it.
#[derive(Default)]
struct Lines(rustc_hash::FxHashSet<SmolStr>);

impl Lines {
    fn get(&mut self, line: String) -> SmolStr {
        if let Some(l) = self.0.get(line.as_str()) {
            return l.clone();
        }
        let l = SmolStr::from(line);
        self.0.insert(l.clone());
        l
    }
}

fn flow_path(
    topo: &Topology,
    f: &FlowSpec,
    hops: &[Hop],
    obs: &Observations,
    mark: Option<u32>,
    lines: &mut Lines,
) -> FlowPath {
    let mut out = Vec::new();
    let mut back = Vec::new();
    let mut first_out = None;
    let mut router_out = Vec::new();
    let mut first_out_source = None;
    let mut drops: Vec<DropSite> = Vec::new();
    // Groups of similar packets for the story: (dir, uplink and source there, died at, kinds, count).
    type Run<'a> = (
        Dir,
        Option<(&'a str, Ipv4Addr)>,
        Option<(&'a str, &'a str)>,
        Vec<&'static str>,
        u32,
    );
    let mut runs: Vec<Run> = Vec::new();
    for h in hops {
        let fate = fate(topo, f, h);
        // An ICMP error that a router on the way sends about the flow (net unreachable, say)
        // is told in the story, but it is not the flow's own traffic on an uplink.
        let started_by = h
            .seen
            .iter()
            .map(|(_, from, _)| *from)
            .find(|from| !h.seen.iter().any(|(_, _, to)| to == from));
        let own = h.pkt().inner.is_none()
            || started_by.is_none_or(|n| n == f.client_node || n == f.server_node);
        if own {
            if let (Some((l, src)), Dir::Out, None) = (&fate.uplink, h.dir, &first_out) {
                first_out = Some(SmolStr::from(*l));
                first_out_source = Some(*src);
            }
            // Every uplink the packet crossed (a packet in transit crosses two), in path order.
            for (sg, from, _) in path_order(&h.seen, origin(f, h.dir)) {
                let name = &topo.links[sg.link].name;
                if topo.router.uplinks.contains(name) {
                    push_unique(
                        if h.dir == Dir::Out {
                            &mut out
                        } else {
                            &mut back
                        },
                        name,
                    );
                    if *from == topo.router.node {
                        push_unique(&mut router_out, name);
                    }
                }
            }
        }
        if let Some((node, link)) = fate.died {
            match drops
                .iter_mut()
                .find(|d| d.dir == h.dir && d.node == node && d.after_link == link)
            {
                Some(d) => d.count += 1,
                None => drops.push(DropSite {
                    dir: h.dir,
                    node: node.to_string(),
                    after_link: link.to_string(),
                    count: 1,
                }),
            }
        }
        let kind = packet::kind(h.pkt());
        // Packets that went the same way and met the same fate are told together, in the
        // order the first of them was seen.
        match runs
            .iter_mut()
            .find(|r| r.0 == h.dir && r.1 == fate.uplink && r.2 == fate.died)
        {
            Some(r) => {
                if !r.3.contains(&kind) {
                    r.3.push(kind);
                }
                r.4 += 1;
            }
            _ => runs.push((h.dir, fate.uplink, fate.died, vec![kind], 1)),
        }
    }
    let story = runs
        .iter()
        .map(|(dir, up, died, kinds, n)| {
            let arrow = if *dir == Dir::Out { "→" } else { "←" };
            let what = if *n == 1 {
                kinds[0].to_string()
            } else {
                format!("{n} packets ({})", kinds.join(", "))
            };
            let via = match (dir, up) {
                (Dir::Out, Some((l, src))) => format!(" left via {l} with source {src}"),
                (Dir::Back, Some((l, _))) => format!(" came back via {l}"),
                (_, None) => " crossed no uplink".to_string(),
            };
            let end = match died {
                None => format!(
                    ", reached {}",
                    if *dir == Dir::Out {
                        &f.server_node
                    } else {
                        &f.client_node
                    }
                ),
                Some((node, link)) => format!(", died at {node} (last seen on {link})"),
            };
            lines.get(format!("{arrow} {what}{via}{end}"))
        })
        .collect();
    let client = obs.clients.get(&f.id).cloned().unwrap_or_default();
    FlowPath {
        id: f.id,
        group: f.group.as_str().into(),
        proto: f.proto,
        client: f.client,
        out,
        back,
        router_out,
        first_out,
        first_out_source,
        source_seen: obs.server_saw.get(&f.id).copied(),
        mark,
        completed: client.completed,
        client_error: client.error,
        related_seen: f
            .related_probe
            .then(|| hops.iter().any(|h| h.pkt().inner.is_some())),
        packets: hops.len() as u32,
        drops,
        story,
    }
}

/// How many of `flows` left on each uplink (`no uplink` for those that left on none).
pub fn split_counts<'a>(flows: impl IntoIterator<Item = &'a FlowPath>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry(f.first_uplink().to_string()).or_insert(0) += 1;
    }
    m
}

/// Uplink names joined by `sep`, or `—` for none.
pub fn links_or_dash(v: &[SmolStr], sep: &str) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v.join(sep)
    }
}

impl FlowPath {
    /// The uplink its first packet left on, or `no uplink`: what [`split_counts`] are keyed by.
    pub fn first_uplink(&self) -> &str {
        self.first_out.as_deref().unwrap_or("no uplink")
    }

    /// "6 packets died at isp1 (after wan1)", for messages.
    pub fn drop_summary(&self) -> Option<String> {
        let parts: Vec<String> = self
            .drops
            .iter()
            .map(|d| {
                let what = if d.count == 1 {
                    "1 packet".to_string()
                } else {
                    format!("{} packets", d.count)
                };
                let way = if d.dir == Dir::Out {
                    "outgoing"
                } else {
                    "returning"
                };
                format!(
                    "{what} {way} died at {} (last seen on {})",
                    d.node, d.after_link
                )
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn left(&self) -> String {
        match &self.first_out {
            Some(l) => format!("left via {l}"),
            None => "left on no uplink".to_string(),
        }
    }
}

fn check(e: &Expectation, flows: &BTreeMap<u32, &FlowPath>, router: &str) -> ExpResult {
    if let Check::Split(weights) = &e.check {
        let (observed, broke) = check_split(
            weights,
            e.flows.iter().filter_map(|id| flows.get(id).copied()),
        );
        return ExpResult {
            name: e.name.clone(),
            check: e.check.to_string(),
            selector: e.selector.clone(),
            flows: e.flows.clone(),
            failures: Vec::new(),
            observed: Some(observed),
            broke_overall: broke,
        };
    }
    let mut failures = Vec::new();
    for (k, id) in e.flows.iter().enumerate() {
        let Some(p) = flows.get(id) else { continue };
        if let Some(msg) = check_flow(&e.check, k, p, router) {
            failures.push(FlowFailure { flow: *id, msg });
        }
    }
    ExpResult {
        name: e.name.clone(),
        check: e.check.to_string(),
        selector: e.selector.clone(),
        flows: e.flows.clone(),
        failures,
        observed: None,
        broke_overall: false,
    }
}

/// Counts the flows by the uplink they left on and checks each count against its binomial
/// interval: `wan1 212 (expected 200, 150–251), wan2 388 (expected 400, 349–450)`.
fn check_split<'a>(
    weights: &[(String, u32)],
    flows: impl Iterator<Item = &'a FlowPath>,
) -> (String, bool) {
    let mut counts = split_counts(flows);
    let n: u64 = counts.values().sum();
    let w: Vec<u32> = weights.iter().map(|(_, w)| *w).collect();
    let total: u32 = w.iter().sum();
    let bounds = stats::split_intervals(n, &w, stats::FALSE_FAILURE_RATE);
    let mut broke = false;
    let mut parts = Vec::new();
    for ((link, wt), (lo, hi)) in weights.iter().zip(&bounds) {
        let c = counts.remove(link).unwrap_or(0);
        let inside = (*lo..=*hi).contains(&c);
        broke |= !inside;
        let mean = n as f64 * f64::from(*wt) / f64::from(total);
        parts.push(format!(
            "{link} {c} (expected {mean:.0}, {lo}–{hi}){}",
            if inside { "" } else { " ✗" }
        ));
    }
    for (link, c) in counts {
        broke = true;
        parts.push(format!("{link} {c} (expected 0) ✗"));
    }
    (format!("{n} flows: {}", parts.join(", ")), broke)
}

/// `None` when the flow meets the check, else what was observed instead.
fn check_flow(c: &Check, k: usize, p: &FlowPath, router: &str) -> Option<String> {
    let with_drops = |msg: String| match p.drop_summary() {
        Some(d) => format!("{msg}; {d}"),
        None => msg,
    };
    match c {
        Check::Via(None) => (!p.out.is_empty() || !p.back.is_empty()).then(|| {
            with_drops(format!(
                "crossed uplinks: out via {}, back via {}; expected none",
                list(&p.out),
                list(&p.back)
            ))
        }),
        Check::Via(Some(l)) => {
            if p.out != [l.clone()] {
                Some(with_drops(format!(
                    "left via {}, expected only {l}",
                    list(&p.out)
                )))
            } else if p.back != [l.clone()] {
                Some(with_drops(format!(
                    "left via {l}, but its replies came back via {}",
                    list(&p.back)
                )))
            } else {
                None
            }
        }
        Check::Sequence(seq) => {
            let want = &seq[k % seq.len()];
            (p.first_out.as_deref() != Some(want.as_str())).then(|| {
                format!(
                    "{}, expected {want} (it is number {} in the sequence {}, …)",
                    p.left(),
                    k + 1,
                    seq.join(", ")
                )
            })
        }
        Check::Source(map) => {
            let Some(l) = &p.first_out else {
                return Some(with_drops("left on no uplink".to_string()));
            };
            let Some(want) = map.get(l.as_str()) else {
                return Some(format!(
                    "left via {l}, which this expectation gives no source for"
                ));
            };
            match p.source_seen {
                Some(a) if a == *want => None,
                Some(a) => Some(format!(
                    "left via {l}; the server saw source {a}, expected {want}"
                )),
                None => Some(with_drops(format!(
                    "left via {l}{}; the server saw nothing of it (expected source {want})",
                    p.first_out_source
                        .map(|a| format!(" with source {a}"))
                        .unwrap_or_default()
                ))),
            }
        }
        Check::Mark(map) => {
            let Some(l) = &p.first_out else {
                return Some(with_drops("left on no uplink".to_string()));
            };
            let Some(want) = map.get(l.as_str()) else {
                return Some(format!(
                    "left via {l}, which this expectation gives no mark for"
                ));
            };
            match p.mark {
                Some(m) if m == *want => None,
                Some(m) => Some(format!(
                    "left via {l} with conntrack mark {m}, expected {want}"
                )),
                None => Some(format!(
                    "left via {l}, but {router} has no conntrack entry for it"
                )),
            }
        }
        Check::OneUplink => {
            if p.completed && p.related_seen == Some(false) {
                return Some(format!(
                    "its RELATED probe drew no ICMP error on any link: the late datagram was lost, or the client did not answer it: {}",
                    p.story.join("; ")
                ));
            }
            let mut all = p.out.clone();
            for b in &p.back {
                push_unique(&mut all, b);
            }
            match all.len() {
                1 => None,
                0 => Some(with_drops("crossed no uplink".to_string())),
                _ => Some(format!(
                    "packets left via {}, replies came back via {}: {}",
                    list(&p.out),
                    list(&p.back),
                    p.story.join("; ")
                )),
            }
        }
        Check::Completes(want) => match (p.completed, want) {
            (true, true) | (false, false) => None,
            (false, true) => Some(with_drops(format!(
                "did not complete: {}",
                p.client_error.as_deref().unwrap_or("no outcome recorded")
            ))),
            (true, false) => Some("completed, expected it not to".to_string()),
        },
        // Judged on the flows together, in `check`.
        Check::Split(_) => None,
        Check::LeavesVia(want) => {
            let got = &p.router_out;
            match want {
                Some(l) if got == std::slice::from_ref(l) => None,
                None if got.is_empty() => None,
                _ => Some(with_drops(format!(
                    "{router} sent it out via {}, expected {}",
                    list(got),
                    want.as_deref().unwrap_or("no uplink")
                ))),
            }
        }
    }
}

fn list(v: &[SmolStr]) -> String {
    if v.is_empty() {
        "no uplink".to_string()
    } else {
        v.join(" and ")
    }
}

pub fn ids(v: &[u32]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome(results: &[ExpResult], declared: Option<&ExpectedFailure>) -> Outcome {
    let any_failed = results.iter().any(ExpResult::broke);
    let Some(decl) = declared else {
        return if any_failed {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
    };
    let mut problems = Vec::new();
    for r in results {
        let failed = r.failed_flows();
        match decl.breaks.iter().find(|b| b.expectation == r.name) {
            None if r.broke_overall => problems.push(format!(
                "`{}` broke ({}), which the declaration does not expect",
                r.name,
                r.observed.as_deref().unwrap_or("")
            )),
            None if !failed.is_empty() => problems.push(format!(
                "`{}` broke for flows {}, which the declaration does not expect",
                r.name,
                ids(&failed)
            )),
            None => {}
            Some(_) if !r.broke() => {
                problems.push(format!("`{}` was declared to break, but it held", r.name))
            }
            Some(b) => {
                if let Some(want) = &b.flows {
                    if *want != failed {
                        problems.push(format!(
                            "`{}` was declared to break for flows {}; it broke for flows {}",
                            r.name,
                            ids(want),
                            ids(&failed)
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Outcome::BrokenAsDeclared
    } else {
        Outcome::NotAsDeclared(problems)
    }
}

pub mod compare;
pub mod stats;
#[cfg(test)]
mod tests;

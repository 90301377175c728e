//! Each flow's path, read from the captures once: its sightings assigned to it, grouped into
//! packets, each packet followed hop by hop to where it arrived or died.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use smol_str::SmolStr;

use super::{Dir, DropSite, End, FlowPath, HopTrace, PacketTrace, Step};
use crate::model::{FlowSpec, Plan, Topology};
use crate::observe::packet::{self, Packet};
use crate::observe::{CtEntry, Observations, Sighting, SightingId, Tuple};

/// Which flows' packets a verdict keeps, hop by hop ([`FlowPath::trace`]): for pages and
/// files that show the packets themselves. The hops are computed once either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Traces {
    #[default]
    None,
    All,
    Only(BTreeSet<u32>),
}

impl Traces {
    fn wants(&self, id: u32) -> bool {
        match self {
            Traces::None => false,
            Traces::All => true,
            Traces::Only(ids) => ids.contains(&id),
        }
    }
}

/// Every flow's path, in flow order.
pub fn paths(plan: &Plan, obs: &Observations, traces: &Traces) -> Vec<FlowPath> {
    let a = assign(plan, obs);
    let mut steps = Steps::default();
    plan.flows
        .iter()
        .map(|f| {
            let hops = a.hops(f);
            let mark = a.marks.get(&f.id).copied();
            let mut p = flow_path(&plan.topology, f, &hops, obs, mark, &mut steps);
            if let Some(src) = a
                .sources
                .get(&f.id)
                .filter(|_| f.client.ip().is_unspecified())
            {
                p.client.set_ip(*src);
            }
            if traces.wants(f.id) {
                p.trace = Some(trace(&plan.topology, f, &hops));
            }
            p
        })
        .collect()
}

/// A flow's packets, hop by hop, from the hops its path was read from.
fn trace(topo: &Topology, f: &FlowSpec, hops: &[Hop]) -> Vec<PacketTrace> {
    hops.iter()
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
                        link: topo.links[s.link].name.as_str().into(),
                        from: (*from).into(),
                        to: (*to).into(),
                        src: s.pkt.src,
                        sport: s.pkt.sport,
                        dst: s.pkt.dst,
                        dport: s.pkt.dport,
                        t_ns: s.t_ns,
                    })
                    .collect(),
                died: fate(topo, f, h)
                    .died
                    .map(|(node, link)| (node.into(), link.into())),
            }
        })
        .collect()
}

fn client_tuple(f: &FlowSpec) -> Tuple {
    Tuple {
        proto: f.proto.number(),
        src: f.client.ip(),
        sport: f.client.port(),
        dst: f.dial.ip(),
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
    sources: BTreeMap<u32, IpAddr>,
}

/// A tuple by its addresses' numbers in [`Keys`]: source, destination, source port,
/// destination port, protocol.
type Key = (u32, u32, u16, u16, u8);

/// Numbers for the addresses of a run's tuples, so that a key takes 16 bytes whatever the
/// family. An IPv4 address is its own number, found with no lookup (most tuples are IPv4);
/// an IPv6 address is its place in a table of the few distinct ones, plus one: a number in
/// 0.0.0.0/8, which no IPv4 packet on a link carries (0.0.0.0 itself stays 0).
#[derive(Default)]
struct Keys(rustc_hash::FxHashMap<Ipv6Addr, u32>);

impl Keys {
    fn id(&mut self, a: IpAddr) -> u32 {
        match a {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(v6) => {
                let next = self.0.len() as u32 + 1;
                debug_assert!(next < 1 << 24, "more IPv6 addresses than 0.0.0.0/8 numbers");
                *self.0.entry(v6).or_insert(next)
            }
        }
    }

    fn key(&mut self, t: &Tuple) -> Key {
        (self.id(t.src), self.id(t.dst), t.sport, t.dport, t.proto)
    }

    /// The number of an address already given one; `None` for an IPv6 address that is not.
    fn found(&self, a: IpAddr) -> Option<u32> {
        match a {
            IpAddr::V4(v4) => Some(u32::from(v4)),
            IpAddr::V6(v6) => self.0.get(&v6).copied(),
        }
    }

    /// The key of a tuple whose addresses are known; `None` when one is not (then no flow
    /// has the tuple).
    fn find(&self, t: &Tuple) -> Option<Key> {
        Some((
            self.found(t.src)?,
            self.found(t.dst)?,
            t.sport,
            t.dport,
            t.proto,
        ))
    }
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
    // Tuples are keyed by their addresses' numbers ([`Keys`]), so that a key takes 16 bytes
    // whatever the family: there are several keys for each of a hundred thousand flows.
    let mut keys = Keys::default();
    // Tuple → (place of its flow, direction).
    let mut tuples: HashMap<Key, (u32, Dir)> = HashMap::default();
    let mut marks: BTreeMap<u32, u32> = BTreeMap::new();
    let mut sources: BTreeMap<u32, IpAddr> = BTreeMap::new();
    // Each flow by its server's end and its client's port (protocol, client port, server
    // address, server port), for packets whose client address a translation changed that
    // neither conntrack nor a tagged packet shows: a stateless one (NPTv6, an nft prefix
    // rewrite) of a flow that died before its first request crossed it.
    let mut ends: HashMap<(u8, u16, u32, u16), u32> = HashMap::default();
    // The conntrack entries by original tuple, and by tuple without its source; the first of
    // each in table order.
    let mut by_orig: HashMap<Key, &CtEntry> = HashMap::default();
    let mut by_port: HashMap<(u8, u16, u32, u16), &CtEntry> = HashMap::default();
    for c in &obs.conntrack {
        let o = keys.key(&c.orig);
        by_orig.entry(o).or_insert(c);
        by_port.entry((o.4, o.2, o.1, o.3)).or_insert(c);
    }
    for (k, f) in plan.flows.iter().enumerate() {
        let k = k as u32;
        let t = client_tuple(f);
        // A client bound to 0.0.0.0 is found by port and destination; the kernel chose its source.
        let tk = keys.key(&t);
        let ct = if t.src.is_unspecified() {
            by_port.get(&(tk.4, tk.2, tk.1, tk.3)).copied()
        } else {
            by_orig.get(&tk).copied()
        };
        let orig = ct.map_or(t, |c| c.orig);
        let ok = keys.key(&orig);
        ends.entry((ok.4, ok.2, ok.1, ok.3)).or_insert(k);
        tuples.insert(ok, (k, Dir::Out));
        tuples.insert(keys.key(&orig.reversed()), (k, Dir::Back));
        if let Some(ct) = ct {
            tuples.entry(keys.key(&ct.reply)).or_insert((k, Dir::Back));
            tuples
                .entry(keys.key(&ct.reply.reversed()))
                .or_insert((k, Dir::Out));
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
        // A packet of the other family naming a flow is not its traffic.
        if t.dst.is_ipv6() != plan.flows[k as usize].dial.is_ipv6() {
            continue;
        }
        let dir = if tag.request { Dir::Out } else { Dir::Back };
        tuples.entry(keys.key(&t)).or_insert((k, dir));
        tuples
            .entry(keys.key(&t.reversed()))
            .or_insert((k, dir.reversed()));
    }
    // Each sighting's flow (place, with BACK for replies; u32::MAX for none), then the
    // sightings of each flow together.
    let code = |found: Option<(u32, Dir)>| match found {
        Some((k, dir)) => k | if dir == Dir::Back { BACK } else { 0 },
        None => u32::MAX,
    };
    let find = |t: &Tuple| {
        keys.find(t)
            .and_then(|key| tuples.get(&key).copied())
            .or_else(|| {
                // Not a tuple of any flow: one whose client address was translated unseen?
                // Towards the server (its end and the client's port), or back from it.
                let out = keys
                    .found(t.dst)
                    .and_then(|d| ends.get(&(t.proto, t.sport, d, t.dport)));
                let back = || {
                    keys.found(t.src)
                        .and_then(|s| ends.get(&(t.proto, t.dport, s, t.sport)))
                };
                out.map(|&k| (k, Dir::Out))
                    .or_else(|| back().map(|&k| (k, Dir::Back)))
            })
    };
    let owner: Vec<u32> = obs.sightings.classify(
        |t| code(find(t)),
        // An ICMP error belongs to the flow of the packet it quotes, going the other way.
        |inner| code(find(inner).map(|(f, d)| (f, d.reversed()))),
    );
    drop((tuples, ends, keys));
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

/// What became of one packet: the uplink it crossed (with its source there) and where it died.
struct Fate<'a> {
    uplink: Option<(&'a str, IpAddr)>,
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

/// Story steps, each kept once however many flows take it.
#[derive(Default)]
struct Steps(rustc_hash::FxHashSet<Arc<Step>>);

impl Steps {
    fn get(&mut self, step: Step) -> Arc<Step> {
        if let Some(s) = self.0.get(&step) {
            return s.clone();
        }
        let s = Arc::new(step);
        self.0.insert(s.clone());
        s
    }
}

fn flow_path(
    topo: &Topology,
    f: &FlowSpec,
    hops: &[Hop],
    obs: &Observations,
    mark: Option<u32>,
    steps: &mut Steps,
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
        Option<(&'a str, IpAddr)>,
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
    // Into a new vector of its own size: collecting `runs.into_iter()` would reuse the runs'
    // larger buffer, ten times the story's size, for every one of a hundred thousand flows.
    let mut story = Vec::with_capacity(runs.len());
    story.extend(runs.into_iter().map(|(dir, up, died, kinds, count)| {
        steps.get(Step {
            dir,
            count,
            kinds,
            uplink: up.map(|(l, _)| l.into()),
            source: up.map(|(_, src)| src),
            end: match died {
                None => End::Reached(if dir == Dir::Out {
                    f.server_node.as_str().into()
                } else {
                    f.client_node.as_str().into()
                }),
                Some((node, link)) => End::Died {
                    node: node.into(),
                    link: link.into(),
                },
            },
        })
    }));
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
        reset: client.reset,
        recovered: client.recovered,
        started_ms: obs.times.get(&f.id).map(|t| ms(t.started_ns)),
        ended_ms: obs.times.get(&f.id).map(|t| ms(t.ended_ns)),
        related_seen: f
            .related_probe
            .then(|| hops.iter().any(|h| h.pkt().inner.is_some())),
        packets: hops.len() as u32,
        drops,
        story,
        trace: None,
    }
}

/// Nanoseconds as milliseconds, to the microsecond.
pub(super) fn ms(ns: u64) -> f64 {
    (ns / 1000) as f64 / 1000.0
}

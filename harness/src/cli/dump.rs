//! `run --dump` (hidden, for debugging the harness): every packet seen, in time order, and
//! the router's conntrack table, on stderr.

use crate::model::Plan;
use crate::run::RunResult;

/// Prints every sighting of `r` (time in µs, link, sender, addresses, IP id, TCP flags,
/// payload length) and its conntrack entries to stderr.
pub fn observations(plan: &Plan, r: &RunResult) {
    let sightings = &r.observations.sightings;
    for id in sightings.by_time() {
        let s = sightings.get(id);
        let l = &plan.topology.links[s.link];
        let p = &s.pkt;
        let from = if s.from_a { &l.a.node } else { &l.b.node };
        eprintln!(
            "{:>9} {:<6} from {:<8} {}:{} > {}:{} proto {} id {} flags {:#04x} len {}",
            s.t_ns / 1000,
            l.name,
            from,
            p.src,
            p.sport,
            p.dst,
            p.dport,
            p.proto,
            p.ip_id,
            p.flags,
            p.payload_len
        );
    }
    for c in &r.observations.conntrack {
        eprintln!("ct {c:?}");
    }
}

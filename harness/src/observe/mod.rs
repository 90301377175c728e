//! What the harness saw: every packet on every link, the router's conntrack table, and what
//! clients and servers experienced. [`Observations`] is pure data; [`capture`] and
//! [`read_conntrack`] are the kernel-facing parts.

pub mod capture;
pub mod conntrack;
pub mod counters;
pub mod coverage;
pub mod losses;
pub mod packet;
pub mod sightings;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub use conntrack::{CtEntry, Tuple};
pub use packet::Packet;
pub use sightings::{Sighting, SightingId, Sightings};

use crate::lab::Lab;

/// How a flow went, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientOutcome {
    pub round_trips_done: u32,
    pub completed: bool,
    /// Why it stopped, when it did not complete: `connect: no answer within 1s`.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub sightings: Sightings,
    pub conntrack: Vec<CtEntry>,
    pub clients: BTreeMap<u32, ClientOutcome>,
    /// Source address the server saw, by flow id.
    pub server_saw: BTreeMap<u32, Ipv4Addr>,
}

/// Reads the conntrack table of `node` (from a thread inside it: /proc/thread-self/net).
pub fn read_conntrack(lab: &Lab, node: &str) -> std::io::Result<Vec<CtEntry>> {
    let text = lab
        .ns(node)
        .run(|| std::fs::read_to_string("/proc/thread-self/net/nf_conntrack"))?;
    match text {
        Ok(t) => Ok(conntrack::parse(&t)),
        // No rule in the node loaded conntrack: there is nothing to read.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

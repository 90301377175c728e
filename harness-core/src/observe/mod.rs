//! What the harness saw: every packet on every link, the router's conntrack table, the rules'
//! packet counters, and what clients and servers experienced. Pure data, and the parsing that
//! makes it from the kernel's texts and frames: nothing here touches the kernel or the lab
//! (it is in the harness-core crate, which depends on nothing that could). The harness
//! crate's `watch` is the kernel-facing half that reads them.

pub mod conntrack;
pub mod counters;
pub mod daemons;
pub mod frame;
pub mod losses;
pub mod packet;
pub mod sightings;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use conntrack::{CtEntry, Tuple};
pub use frame::Frame;
pub use packet::Packet;
pub use sightings::{Sighting, SightingId, Sightings};

/// How a flow went, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientOutcome {
    pub round_trips_done: u32,
    pub completed: bool,
    /// Why it stopped, when it did not complete: `connect: no answer within 1s`.
    pub error: Option<String>,
    /// Whether its connection was refused or reset (a TCP RST reached the client).
    pub reset: bool,
    /// A UDP stream (`interval:`): some datagrams went unanswered but its last one was
    /// answered: the stream came back.
    pub recovered: bool,
}

/// When a flow ran, in nanoseconds since the captures started (the captures' clock): its
/// first packet sent, and its client done (completed or given up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimes {
    pub started_ns: u64,
    pub ended_ns: u64,
}

/// An event as it happened: its name, when the change was asked for and when it was in force
/// (for a carrier, once the router's end saw it), in ns since the captures started. A flow
/// that started between the two is neither before nor after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSeen {
    pub name: String,
    pub asked_ns: u64,
    pub t_ns: u64,
}

/// Everything one run saw: what the verdict judges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub sightings: Sightings,
    pub conntrack: Vec<CtEntry>,
    pub clients: BTreeMap<u32, ClientOutcome>,
    /// Source address the server saw, by flow id.
    pub server_saw: BTreeMap<u32, IpAddr>,
    /// When each driven flow ran.
    pub times: BTreeMap<u32, FlowTimes>,
    /// The events that happened, in order.
    pub events: Vec<EventSeen>,
}

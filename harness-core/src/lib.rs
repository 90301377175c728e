//! The pure half of harness: what a scenario says, what was seen, how it is judged and how
//! the judgement is told. Nothing here can reach the kernel: this crate depends on nothing
//! that talks to it (no nix, rtnetlink, netlink or tokio), so the compiler keeps the line that
//! `harness` (the labs, the rule tools, the traffic, the captures) sits on the other side of.
//! Everything here is tested without privileges.
//!
//! * [`model`] YAML → validated [`model::Plan`]
//! * [`observe`] what was seen, as data: packets, sightings, conntrack entries, frames, rule
//!   hits, loss counters, and the parsers that make them from the kernel's texts
//! * [`verdict`] observations → each flow's path → typed findings, "as declared" decided once
//! * [`report`] every word about a verdict: terminal text, snapshots, JSON, JUnit, HTML, pcap
//! * [`mutate`] mutants of a rule set, and a campaign's results

pub mod model;
pub mod mutate;
pub mod observe;
pub mod report;
pub mod verdict;

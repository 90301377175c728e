//! The kernel-facing half of observing: what [`crate::observe`] holds as data, read from the
//! live lab. Capture rings on every link ([`capture`]), a node's conntrack table
//! ([`conntrack`]), every node's loss counters ([`losses`]), every iptables rule's packet
//! counter ([`coverage`]). Each reads from threads inside
//! the lab's nodes and hands back `observe`'s pure types; the parsing lives there.

pub mod capture;
pub mod conntrack;
pub mod coverage;
pub mod losses;

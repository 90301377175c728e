//! Reading a node's conntrack table (parsed by [`crate::observe::conntrack`]).

use crate::lab::Lab;
use crate::observe::conntrack::{self, CtEntry};

/// Reads the conntrack table of `node` (from a thread inside it: /proc/thread-self/net).
pub fn read(lab: &Lab, node: &str) -> std::io::Result<Vec<CtEntry>> {
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

//! Reading every node's loss counters (see [`crate::observe::losses`]) from a thread inside it.

use std::io;

use crate::lab::Lab;
use crate::observe::losses::{parse, LossCounters};

/// Reads every node's loss counters (from a thread inside each), but for the interfaces in
/// `except` (node, interface).
pub fn read(lab: &Lab, except: &[(&str, &str)]) -> io::Result<LossCounters> {
    let mut all = LossCounters::new();
    for (node, ns) in &lab.nodes {
        let texts = ns.run(|| -> io::Result<[String; 3]> {
            Ok([
                std::fs::read_to_string("/proc/thread-self/net/dev")?,
                std::fs::read_to_string("/proc/thread-self/net/snmp")?,
                std::fs::read_to_string("/proc/thread-self/net/netstat")?,
            ])
        })??;
        for (iface, name, v) in parse(&texts[0], &texts[1], &texts[2]) {
            if !iface.is_some_and(|i| except.contains(&(node.as_str(), i.as_str()))) {
                all.insert((node.clone(), name), v);
            }
        }
    }
    Ok(all)
}

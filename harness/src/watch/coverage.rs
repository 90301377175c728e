//! Rule coverage: every iptables rule loaded in each node, with its packet counter after the
//! run (`iptables-save -c` inside the node).

use std::process::Command;

use crate::install::{Backend, InstallError, Loadable};
use crate::lab::spawn::run_with_input;
use crate::lab::Lab;
use crate::model::RuleKind;
use crate::observe::counters::{iptables_coverage, Loaded, RuleHit};

/// Every iptables rule loaded in each node, with its packet counter (`iptables-save -c`).
pub fn read(
    lab: &Lab,
    loaded: &[(String, Loadable)],
    backend: Backend,
) -> Result<Vec<RuleHit>, InstallError> {
    let save = match backend {
        Backend::System => "iptables-save",
        Backend::Nft => "iptables-nft-save",
        Backend::Legacy => "iptables-legacy-save",
    };
    let mut nodes: Vec<&str> = loaded
        .iter()
        .filter(|(_, l)| l.kind == RuleKind::Iptables)
        .map(|(n, _)| n.as_str())
        .collect();
    nodes.dedup();
    let mut hits = Vec::new();
    for node in nodes {
        let mut cmd = Command::new(save);
        cmd.arg("-c");
        let out = run_with_input(lab.ns(node), cmd, None, None, b"").map_err(|error| {
            InstallError::Spawn {
                tool: save,
                node: node.to_string(),
                error,
            }
        })?;
        let files: Vec<Loaded> = loaded
            .iter()
            .filter(|(n, l)| n == node && l.kind == RuleKind::Iptables)
            .map(|(_, l)| Loaded {
                shown: &l.shown,
                first_line: l.first_line,
                text: &l.text,
            })
            .collect();
        hits.extend(iptables_coverage(
            &files,
            &String::from_utf8_lossy(&out.stdout),
        ));
    }
    Ok(hits)
}

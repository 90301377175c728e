//! Rule coverage: every iptables and ip6tables rule loaded in each node, with its packet
//! counter after the run (`iptables-save -c` and `ip6tables-save -c` inside the node).

use std::process::Command;

use crate::install::{save_tool, Backend, InstallError, Loadable};
use crate::lab::spawn::run_with_input;
use crate::lab::Lab;
use crate::model::RuleKind;
use crate::observe::counters::{iptables_coverage, Loaded, RuleHit};

/// Every iptables and ip6tables rule loaded in each node, with its packet counter
/// (`iptables-save -c`, `ip6tables-save -c`): each node's in file order.
pub fn read(
    lab: &Lab,
    loaded: &[(String, Loadable)],
    backend: Backend,
) -> Result<Vec<RuleHit>, InstallError> {
    let counted = |k: RuleKind| matches!(k, RuleKind::Iptables | RuleKind::Ip6tables);
    let mut nodes: Vec<&str> = loaded
        .iter()
        .filter(|(_, l)| counted(l.kind))
        .map(|(n, _)| n.as_str())
        .collect();
    nodes.dedup();
    let mut hits = Vec::new();
    for node in nodes {
        let mut here = Vec::new();
        for kind in [RuleKind::Iptables, RuleKind::Ip6tables] {
            let files: Vec<Loaded> = loaded
                .iter()
                .filter(|(n, l)| n == node && l.kind == kind)
                .map(|(_, l)| Loaded {
                    shown: &l.shown,
                    first_line: l.first_line,
                    text: &l.text,
                })
                .collect();
            if files.is_empty() {
                continue;
            }
            let save = save_tool(kind, backend);
            let mut cmd = Command::new(save);
            cmd.arg("-c");
            let out = run_with_input(lab.ns(node), cmd, None, None, b"").map_err(|error| {
                InstallError::Spawn {
                    tool: save,
                    node: node.to_string(),
                    error,
                }
            })?;
            here.extend(
                iptables_coverage(&files, &String::from_utf8_lossy(&out.stdout))
                    .into_iter()
                    .map(|h| RuleHit {
                        ipv6: kind == RuleKind::Ip6tables,
                        ..h
                    }),
            );
        }
        // A bundle's ip6tables section sits among its iptables sections, by line.
        here.sort_by(|a, b| (&a.shown, a.line).cmp(&(&b.shown, b.line)));
        hits.extend(here);
    }
    Ok(hits)
}

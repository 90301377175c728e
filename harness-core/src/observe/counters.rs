//! Rule coverage: which installed rules packets hit, mapped back to their file and line. Pure.

use std::collections::HashMap;

/// One rule as loaded: where it came from and its packet counter after the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RuleHit {
    pub shown: String,
    pub line: usize,
    pub rule: String,
    /// `None` when the counters could not be matched to the file (the chain changed shape).
    pub packets: Option<u64>,
    /// An ip6tables rule (else an iptables one).
    pub ipv6: bool,
}

/// A loaded iptables-restore (or ip6tables-restore: the same text) text: where it came from, the line its first line is, the text.
pub struct Loaded<'a> {
    pub shown: &'a str,
    pub first_line: usize,
    pub text: &'a str,
}

type Chains<'a> = HashMap<(String, String), Vec<(&'a str, usize, String)>>;

/// Replays the restore files in load order: `*table` replaces that table (iptables-restore
/// without --noflush), `-A` appends, `-I CHAIN [N]` inserts, `-F` flushes.
fn replay<'a>(files: &[Loaded<'a>]) -> Chains<'a> {
    let mut chains: Chains = HashMap::new();
    for f in files {
        let mut table = String::new();
        for (i, line) in f.text.lines().enumerate() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix('*') {
                table = name.to_string();
                chains.retain(|(tb, _), _| *tb != table);
                continue;
            }
            let w: Vec<&str> = t.split_whitespace().collect();
            let here = (f.shown, f.first_line + i, t.to_string());
            match w.as_slice() {
                ["-A", chain, ..] => chains
                    .entry((table.clone(), chain.to_string()))
                    .or_default()
                    .push(here),
                ["-I", chain, rest @ ..] => {
                    let list = chains
                        .entry((table.clone(), chain.to_string()))
                        .or_default();
                    let at = rest
                        .first()
                        .and_then(|n| n.parse::<usize>().ok())
                        .map_or(0, |n| n.saturating_sub(1));
                    list.insert(at.min(list.len()), here);
                }
                ["-F", chain, ..] => {
                    chains.remove(&(table.clone(), chain.to_string()));
                }
                _ => {}
            }
        }
    }
    chains
}

/// Packet counters by table and chain, in rule order, from `iptables-save -c` or
/// `ip6tables-save -c` (`[12:720] -A PREROUTING …`).
fn counters(save: &str) -> HashMap<(String, String), Vec<u64>> {
    let mut out: HashMap<(String, String), Vec<u64>> = HashMap::new();
    let mut table = String::new();
    for line in save.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_string();
        } else if let Some(rest) = line.strip_prefix('[') {
            let Some((count, rule)) = rest.split_once("] ") else {
                continue;
            };
            let packets = count
                .split(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if let Some(chain) = rule
                .strip_prefix("-A ")
                .and_then(|r| r.split_whitespace().next())
            {
                out.entry((table.clone(), chain.to_string()))
                    .or_default()
                    .push(packets);
            }
        }
    }
    out
}

/// Every loaded rule with its packet counter, in file order. One family at a time: the
/// ip6tables files with `ip6tables-save -c`, the iptables files with `iptables-save -c`.
pub fn iptables_coverage(files: &[Loaded], save: &str) -> Vec<RuleHit> {
    let model = replay(files);
    let counts = counters(save);
    let mut out: Vec<RuleHit> = Vec::new();
    for (key, rules) in &model {
        let c = counts.get(key).filter(|c| c.len() == rules.len());
        for (i, (shown, line, rule)) in rules.iter().enumerate() {
            out.push(RuleHit {
                shown: shown.to_string(),
                line: *line,
                rule: rule.clone(),
                packets: c.map(|c| c[i]),
                ipv6: false,
            });
        }
    }
    out.sort_by(|a, b| (&a.shown, a.line).cmp(&(&b.shown, b.line)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_map_back_to_lines_through_inserts() {
        let file = "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j A\n-A PREROUTING -j B\n-I PREROUTING -j FIRST\nCOMMIT\n*nat\n-A POSTROUTING -o eth1 -j SNAT1\nCOMMIT\n";
        let save = "*mangle\n:PREROUTING ACCEPT [9:0]\n[5:300] -A PREROUTING -j FIRST\n[0:0] -A PREROUTING -j A\n[4:240] -A PREROUTING -j B\nCOMMIT\n*nat\n[0:0] -A POSTROUTING -o eth1 -j SNAT1\nCOMMIT\n";
        let hits = iptables_coverage(
            &[Loaded {
                shown: "r.iptables",
                first_line: 1,
                text: file,
            }],
            save,
        );
        let by_line: Vec<(usize, Option<u64>)> = hits.iter().map(|h| (h.line, h.packets)).collect();
        assert_eq!(
            by_line,
            [(3, Some(0)), (4, Some(4)), (5, Some(5)), (8, Some(0))]
        );
    }

    /// ip6tables-save -c as printed on this machine (v1.8.9, nf_tables), after an
    /// ip6tables-restore of a filter and a mangle table: its own expansion of CONNMARK.
    #[test]
    fn ip6tables_counters_map_back_the_same_way() {
        let file = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -s 2001:db8:1::/48 -j ACCEPT\nCOMMIT\n*mangle\n-A PREROUTING -j CONNMARK --restore-mark\nCOMMIT\n";
        let save = "# Generated by ip6tables-save v1.8.9 (nf_tables) on Sat Dec  5 08:07:54 2026\n*mangle\n:PREROUTING ACCEPT [0:0]\n[7:560] -A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n[3:240] -A FORWARD -s 2001:db8:1::/48 -j ACCEPT\nCOMMIT\n";
        let hits = iptables_coverage(
            &[Loaded {
                shown: "b.rules",
                first_line: 10,
                text: file,
            }],
            save,
        );
        let by_line: Vec<(usize, Option<u64>)> = hits.iter().map(|h| (h.line, h.packets)).collect();
        assert_eq!(by_line, [(12, Some(0)), (13, Some(3)), (16, Some(7))]);
    }
}

//! Bundles: one file (or a generator's output) holding several kinds of rules, each section
//! headed `### iptables`, `### nft`, `### ip`, `### ipset` or `### sysctl`.

use super::RuleKind;

/// Splits a bundle into its `### KIND` sections: (kind, line of its first line, text). Text
/// before any header is one section whose kind is told from its first rule line.
pub fn split_bundle(text: &str) -> Result<Vec<(RuleKind, usize, String)>, String> {
    let mut out: Vec<(Option<RuleKind>, usize, String)> = vec![(None, 1, String::new())];
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = line.trim().strip_prefix("### ") {
            let kind = RuleKind::from_name(name.trim()).ok_or_else(|| {
                format!("line {}: `### {}` is no kind of rules: use ### iptables, nft, ip, ipset or sysctl", i + 1, name.trim())
            })?;
            out.push((Some(kind), i + 2, String::new()));
            continue;
        }
        let last = out.last_mut().expect("one section");
        last.2.push_str(line);
        last.2.push('\n');
    }
    let mut sections = Vec::new();
    for (kind, first, body) in out {
        let first_rule = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let kind = match (kind, first_rule) {
            (Some(k), _) => k,
            (None, None) => continue,
            (None, Some(l)) => detect(l).ok_or_else(|| {
                format!("cannot tell what rules `{l}` are: head the section with `### iptables` (or nft, ip, ipset, sysctl)")
            })?,
        };
        sections.push((kind, first, body));
    }
    if sections.is_empty() {
        return Err("there are no rules in it".into());
    }
    Ok(sections)
}

/// The kind of rules a line belongs to, from how it starts.
fn detect(line: &str) -> Option<RuleKind> {
    let first = line.split_whitespace().next()?;
    if line.starts_with('*')
        || line.starts_with(':')
        || ["-A", "-I", "-N", "COMMIT"].contains(&first)
    {
        Some(RuleKind::Iptables)
    } else if ["table", "flush", "add", "define", "include", "delete"].contains(&first) {
        Some(RuleKind::Nft)
    } else if first == "create" {
        Some(RuleKind::Ipset)
    } else if first.starts_with("net.") || first.starts_with("kernel.") {
        Some(RuleKind::Sysctl)
    } else if [
        "route", "rule", "link", "address", "addr", "neigh", "nexthop",
    ]
    .contains(&first)
    {
        Some(RuleKind::Ip)
    } else {
        None
    }
}

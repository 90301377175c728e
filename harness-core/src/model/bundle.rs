//! Bundles: one file (or a generator's output) holding several kinds of rules, each section
//! headed `### iptables`, `### ip6tables`, `### nft`, `### ip`, `### ipset` or `### sysctl`; and a
//! `### rt_tables` section (lines `ID NAME`, as in /etc/iproute2/rt_tables) that names the
//! routing tables the other sections use.

use super::doc::valid_name;
use super::{RuleKind, MAX_TABLE};

/// A routing table named in a bundle's `### rt_tables` section, and the bundle line naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub name: String,
    pub id: u32,
    pub line: usize,
}

/// A bundle split: its rule sections (kind, line of the section's first line, text) and the
/// tables its `### rt_tables` sections name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    pub sections: Vec<(RuleKind, usize, String)>,
    pub tables: Vec<TableName>,
}

/// The header of the section that names routing tables.
const RT_TABLES: &str = "rt_tables";

/// Splits a bundle into its `### KIND` sections: (kind, line of its first line, text). Text
/// before any header is one section whose kind is told from its first rule line. The tables
/// of a `### rt_tables` section are checked, and left out (see [`parse_bundle`]).
pub fn split_bundle(text: &str) -> Result<Vec<(RuleKind, usize, String)>, String> {
    parse_bundle(text).map(|b| b.sections)
}

/// What a section's header says it holds.
#[derive(Clone, Copy)]
enum Head {
    /// No header: told from the first rule line.
    Untold,
    Rules(RuleKind),
    Tables,
}

/// Splits a bundle (see [`split_bundle`]) and reads its `### rt_tables` sections. An error
/// that has a line starts `line N: `.
pub fn parse_bundle(text: &str) -> Result<Bundle, String> {
    let mut out: Vec<(Head, usize, String)> = vec![(Head::Untold, 1, String::new())];
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = line.trim().strip_prefix("### ") {
            let name = name.trim();
            let head = if name == RT_TABLES {
                Head::Tables
            } else {
                Head::Rules(RuleKind::from_name(name).ok_or_else(|| {
                    format!("line {}: `### {name}` is no kind of rules: use ### iptables, ip6tables, nft, ip, ipset, sysctl (or ### rt_tables to name routing tables)", i + 1)
                })?)
            };
            out.push((head, i + 2, String::new()));
            continue;
        }
        let last = out.last_mut().expect("one section");
        last.2.push_str(line);
        last.2.push('\n');
    }
    let mut bundle = Bundle::default();
    for (head, first, body) in out {
        let first_rule = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let kind = match (head, first_rule) {
            (Head::Tables, _) => {
                read_tables(&body, first, &mut bundle.tables)?;
                continue;
            }
            (Head::Rules(k), _) => k,
            (Head::Untold, None) => continue,
            (Head::Untold, Some(l)) => match detect(l) {
                // ip6tables-save writes the same text as iptables-save: only its first comment
                // tells them apart.
                Some(RuleKind::Iptables) if saved_by_ip6tables(&body) => RuleKind::Ip6tables,
                Some(k) => k,
                None => return Err(format!("cannot tell what rules `{l}` are: head the section with `### iptables` (or ip6tables, nft, ip, ipset, sysctl)")),
            },
        };
        bundle.sections.push((kind, first, body));
    }
    if bundle.sections.is_empty() {
        return Err(if bundle.tables.is_empty() {
            "there are no rules in it".into()
        } else {
            "there are no rules in it, only `### rt_tables`: add the rules that use the tables"
                .into()
        });
    }
    Ok(bundle)
}

/// Reads the lines `ID NAME` of a `### rt_tables` section whose first line is line `first`,
/// as iproute2 reads rt_tables: `#` starts a comment, ids in decimal or `0x` hex.
fn read_tables(body: &str, first: usize, tables: &mut Vec<TableName>) -> Result<(), String> {
    for (i, raw) in body.lines().enumerate() {
        let line = first + i;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let [id, name] = words[..] else {
            return Err(format!(
                "line {line}: `{}` is no rt_tables line: write `ID NAME`, e.g. `1 wan1`",
                raw.trim()
            ));
        };
        let parsed = match id.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => id.parse::<u64>().ok(),
        };
        let Some(id) = parsed else {
            return Err(format!("line {line}: `{}`: `{id}` is no table id: write `ID NAME` with the id a number (1 to 252 or 256 to {MAX_TABLE}), e.g. `1 wan1`", raw.trim()));
        };
        let id = u32::try_from(id).unwrap_or(u32::MAX);
        if let Some(m) = bad_table_name(name).or_else(|| bad_table_id(name, id)) {
            return Err(format!("line {line}: {m}"));
        }
        let new = TableName {
            name: name.to_string(),
            id,
            line,
        };
        if let Some(m) = clash(tables.iter().map(|t| (t.name.as_str(), t.id)), &new, "line") {
            return Err(format!("line {line}: {m}"));
        }
        tables.push(new);
    }
    Ok(())
}

/// Why `name` cannot name a routing table, if it cannot.
pub fn bad_table_name(name: &str) -> Option<String> {
    (!valid_name(name) || ["local", "main", "default", "unspec"].contains(&name)).then(|| {
        format!("table name `{name}`: use letters, digits, `-`, `_`; `local`, `main`, `default` are taken")
    })
}

/// Why table `name` cannot have id `id`, if it cannot.
pub fn bad_table_id(name: &str, id: u32) -> Option<String> {
    if id == 0 || (253..=255).contains(&id) {
        return Some(format!("table `{name}` = {id}: 0 and 253 to 255 are the kernel's own tables; pick 1 to 252 or 256 to {MAX_TABLE}"));
    }
    (id > MAX_TABLE).then(|| format!("table `{name}` = {id}: tools do not all read ids above {MAX_TABLE} alike (`ip route show table 4294967295` lists nothing); pick 1 to 252 or 256 to {MAX_TABLE}"))
}

/// Why `new` cannot join the tables `have` (named by `by`, e.g. `the scenario`): its name
/// has another id there, or its id another name. The same name with the same id is no clash.
fn clash<'a>(
    mut have: impl Iterator<Item = (&'a str, u32)>,
    new: &TableName,
    by: &str,
) -> Option<String> {
    let (name, id) = (new.name.as_str(), new.id);
    have.find_map(|(n, i)| {
        if n == name && i != id {
            Some(format!("table `{name}` = {id}: {by} names `{name}` table {i} already; one name, one number"))
        } else if n != name && i == id {
            Some(format!("table `{name}` = {id}: {by} names table {id} `{n}` already; give each name its own number"))
        } else if n == name && by == "line" {
            Some(format!("table `{name}` = {id}: an earlier line names it already; name each table once"))
        } else {
            None
        }
    })
}

/// Adds a bundle's tables to the node's (the scenario's `tables:`, and those of bundles
/// loaded before): the first that clashes is `(line, message)`. Returns whether any was new.
pub fn merge_tables(
    have: &mut Vec<(String, u32)>,
    new: &[TableName],
    by: &str,
) -> Result<bool, (usize, String)> {
    let mut added = false;
    for t in new {
        if let Some(m) = clash(have.iter().map(|(n, i)| (n.as_str(), *i)), t, by) {
            return Err((t.line, m));
        }
        if !have.iter().any(|(n, _)| *n == t.name) {
            have.push((t.name.clone(), t.id));
            added = true;
        }
    }
    Ok(added)
}

/// Whether a headerless text is ip6tables-save's (`# Generated by ip6tables-save v1.8.9 …` or
/// `ip6tables-nft-save`, `ip6tables-legacy-save`), told by the comments before its first rule.
/// Any other iptables-restore text is taken for IPv4: head IPv6 rules `### ip6tables`.
fn saved_by_ip6tables(body: &str) -> bool {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| l.starts_with('#'))
        .any(|l| {
            l.trim_start_matches('#')
                .trim_start()
                .strip_prefix("Generated by ip6tables")
                .is_some_and(|rest| {
                    rest.starts_with("-save")
                        || rest.starts_with("-nft-save")
                        || rest.starts_with("-legacy-save")
                })
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const ROUTES: &str = "### rt_tables\n# as in /etc/iproute2/rt_tables\n1 wan1\n0x2\twan2 # hex\n\n### ip\nroute add default via 10.37.1.254 dev eth1 table wan1\n";

    #[test]
    fn tables_are_read_and_left_out_of_the_sections() {
        let b = parse_bundle(ROUTES).expect("parses");
        assert_eq!(
            b.tables,
            vec![
                TableName {
                    name: "wan1".into(),
                    id: 1,
                    line: 3
                },
                TableName {
                    name: "wan2".into(),
                    id: 2,
                    line: 4
                },
            ]
        );
        assert_eq!(b.sections.len(), 1);
        assert_eq!(b.sections[0].0, RuleKind::Ip);
        assert_eq!(b.sections[0].1, 7);
        assert_eq!(split_bundle(ROUTES).expect("splits"), b.sections);
    }

    #[rstest]
    #[case::one_word(
        "### rt_tables\nwan1\n### ip\nroute flush cache\n",
        "line 2: `wan1` is no rt_tables line"
    )]
    #[case::three_words(
        "### rt_tables\n1 wan1 x\n### ip\nroute flush cache\n",
        "line 2: `1 wan1 x` is no rt_tables line"
    )]
    #[case::not_a_number(
        "### rt_tables\none wan1\n### ip\nroute flush cache\n",
        "line 2: `one wan1`: `one` is no table id"
    )]
    #[case::kernel_id(
        "### ip\nroute flush cache\n### rt_tables\n254 wan1\n",
        "line 4: table `wan1` = 254: 0 and 253 to 255"
    )]
    #[case::zero(
        "### rt_tables\n0 wan1\n### ip\nroute flush cache\n",
        "line 2: table `wan1` = 0: 0 and 253"
    )]
    #[case::too_big(
        "### rt_tables\n4294967295 wan1\n### ip\nroute flush cache\n",
        "line 2: table `wan1` = 4294967295: tools do not all"
    )]
    #[case::reserved(
        "### rt_tables\n7 main\n### ip\nroute flush cache\n",
        "line 2: table name `main`"
    )]
    #[case::bad_name(
        "### rt_tables\n7 1wan\n### ip\nroute flush cache\n",
        "line 2: table name `1wan`"
    )]
    #[case::same_id(
        "### rt_tables\n7 wan1\n7 wan2\n### ip\nroute flush cache\n",
        "line 3: table `wan2` = 7: line names table 7 `wan1` already"
    )]
    #[case::same_name(
        "### rt_tables\n7 wan1\n8 wan1\n### ip\nroute flush cache\n",
        "line 3: table `wan1` = 8: line names `wan1` table 7 already"
    )]
    #[case::twice(
        "### rt_tables\n7 wan1\n7 wan1\n### ip\nroute flush cache\n",
        "line 3: table `wan1` = 7: an earlier line names it already"
    )]
    #[case::only_tables("### rt_tables\n7 wan1\n", "only `### rt_tables`")]
    #[case::bad_header("### rt_table\n7 wan1\n", "line 1: `### rt_table` is no kind of rules")]
    fn bad_tables(#[case] text: &str, #[case] says: &str) {
        let e = parse_bundle(text).expect_err("refused");
        assert!(e.starts_with(says) || e.contains(says), "{e}");
    }

    #[test]
    fn merging_keeps_the_scenarios_names_and_refuses_clashes() {
        let mut have = vec![("rt_link1".to_string(), 251)];
        let t = |name: &str, id, line| TableName {
            name: name.into(),
            id,
            line,
        };
        assert_eq!(
            merge_tables(&mut have, &[t("rt_link1", 251, 2)], "the scenario"),
            Ok(false)
        );
        assert_eq!(
            merge_tables(&mut have, &[t("wan1", 1, 3)], "the scenario"),
            Ok(true)
        );
        assert_eq!(have.len(), 2);
        let (line, m) =
            merge_tables(&mut have, &[t("wan2", 251, 4)], "the scenario").expect_err("same id");
        assert_eq!(line, 4);
        assert!(
            m.contains("the scenario names table 251 `rt_link1` already"),
            "{m}"
        );
        let (_, m) =
            merge_tables(&mut have, &[t("rt_link1", 9, 5)], "the scenario").expect_err("same name");
        assert!(m.contains("names `rt_link1` table 251 already"), "{m}");
    }

    #[test]
    fn an_ip6tables_section_is_its_own_kind() {
        let text = "### iptables\n*filter\n-A FORWARD -j ACCEPT\nCOMMIT\n### ip6tables\n*filter\n-A FORWARD -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n";
        let s = split_bundle(text).expect("splits");
        let kinds: Vec<(RuleKind, usize)> = s.iter().map(|(k, n, _)| (*k, *n)).collect();
        assert_eq!(
            kinds,
            vec![(RuleKind::Iptables, 2), (RuleKind::Ip6tables, 6)]
        );
        assert!(s[1].2.contains("2001:db8::/32"));
    }

    /// Without a header, ip6tables-save's output is told by its first comment; any other
    /// iptables-restore text is IPv4's.
    #[rstest]
    #[case::ip6tables_save("# Generated by ip6tables-save v1.8.9 (nf_tables) on Sat Dec  5 08:07:54 2026\n*filter\nCOMMIT\n", RuleKind::Ip6tables)]
    #[case::ip6tables_legacy_save(
        "# Generated by ip6tables-legacy-save v1.8.9\n*filter\nCOMMIT\n",
        RuleKind::Ip6tables
    )]
    #[case::iptables_save(
        "# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\nCOMMIT\n",
        RuleKind::Iptables
    )]
    #[case::plain(
        "*filter\n-A FORWARD -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n",
        RuleKind::Iptables
    )]
    #[case::comment_after_the_first_rule(
        "*filter\n# Generated by ip6tables-save\nCOMMIT\n",
        RuleKind::Iptables
    )]
    fn a_headerless_save_is_told_by_its_comment(#[case] text: &str, #[case] want: RuleKind) {
        let s = split_bundle(text).expect("splits");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, want);
    }

    #[test]
    fn an_unknown_header_names_ip6tables_among_the_kinds() {
        let m = split_bundle("### ip7tables\n*filter\nCOMMIT\n").expect_err("no such kind");
        assert!(m.contains("use ### iptables, ip6tables, nft"), "{m}");
    }
}

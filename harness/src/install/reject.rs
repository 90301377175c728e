//! Reading a tool's complaint: the line of the rule file it rejected, quoted, when the tool
//! names it or the line can be found from what it quotes.

use super::{InstallError, Loadable};
use crate::model::RuleKind;

/// Turns a tool's complaint into `file:line` with the offending line quoted, when the tool
/// names a line (`Error occurred at line: 5`, `Command failed FILE:3`, `FILE:3:1-5: Error`) or
/// the line can be found from what it quotes.
pub(super) fn rejection(node: &str, l: &Loadable, tool: &'static str, said: &str) -> InstallError {
    let shown = l.shown.clone();
    // The name a tool gives its stdin in messages (`/dev/stdin:3:1-5`, `Command failed -:3`).
    let stdin_name = match l.kind {
        RuleKind::Nft | RuleKind::Sysctl => "/dev/stdin",
        _ => "-",
    };
    let lines: Vec<&str> = l.text.lines().collect();
    let located = match find_line(said, stdin_name) {
        Some(n) => Some(match jump_before_commit(&lines, n, said) {
            Some((k, chain)) => (
                k,
                format!(
                    "\n  (line {} is the table's COMMIT, where {tool} checks jumps; line {} \
                     jumps to `{chain}`: declare the chain with `:{chain} - [0:0]` or correct \
                     the target)",
                    l.first_line - 1 + n,
                    l.first_line - 1 + k
                ),
            ),
            None => (n, String::new()),
        }),
        None if l.kind == RuleKind::Ip => line_quoted(&lines, said).map(|(k, w)| {
            let note = format!("\n  ({tool} names no line; this is the first line with `{w}`)");
            (k, note)
        }),
        None => None,
    };
    let quoted = located.and_then(|(n, note)| {
        let text = lines.get(n.checked_sub(1)?)?;
        let note = match (l.kind, already_there(text, said)) {
            (RuleKind::Ip, Some(what)) => note + &what,
            (RuleKind::Ip, None) if !l.ipv6 => {
                note + &rule_without_dash_6(text, said).unwrap_or_default()
            }
            _ => note + &other_family(l.kind, said).unwrap_or_default(),
        };
        Some((n, text.trim(), note))
    });
    match quoted {
        Some((line, text, note)) => InstallError::RejectedLine {
            file: shown,
            // A section of a bundle starts further down its file.
            line: l.first_line - 1 + line,
            text: text.to_string(),
            tool,
            node: node.to_string(),
            said: said
                .lines()
                .filter(|l| !l.starts_with("Try `"))
                .collect::<Vec<_>>()
                .join("\n    ")
                + &note,
        },
        None => InstallError::Rejected {
            file: shown,
            tool,
            node: node.to_string(),
            said: said.to_string(),
        },
    }
}

/// `Error: Invalid source address.` (or `dst`) for an `ip -batch` rule line with an IPv6
/// address: `ip rule` takes the family from `-6`, not from the address (`ip route` does).
fn rule_without_dash_6(line: &str, said: &str) -> Option<String> {
    if !(said.contains("Invalid source address") || said.contains("Invalid dst address")) {
        return None;
    }
    let w: Vec<&str> = line.split_whitespace().collect();
    let rule = w.first().is_some_and(|o| ["rule", "ru"].contains(o));
    let v6 = w.iter().any(|x| {
        let addr = x.split('/').next().unwrap_or(x);
        addr.parse::<std::net::Ipv6Addr>().is_ok()
    });
    (rule && v6).then(|| {
        "\n  (`ip rule` takes its family from `-6`, not from the address, as `ip route` does: \
         start the line with `-6`, e.g. `-6 rule add from 2001:db8:2::253 table 102`; the \
         harness runs such lines as `ip -6 rule …`)"
            .to_string()
    })
}

/// `RTNETLINK answers: File exists` for an `ip -batch` line that adds what the lab has already
/// given the node: a route (the connected routes of its addresses, and on the router the
/// default route via its first uplink, as DHCP or PPP would leave it) or an address.
fn already_there(line: &str, said: &str) -> Option<String> {
    if !said.contains("File exists") {
        return None;
    }
    let w: Vec<&str> = line.split_whitespace().collect();
    let (object, verb) = (w.first().copied()?, w.get(1).copied()?);
    let adds = ["add", "a"].contains(&verb);
    match object {
        "route" | "r" | "ro" | "rou" | "rout" if adds => Some(format!(
            "\n  (the lab already has this route: a node starts with the connected routes of its \
             addresses, and the router with a default route via its first uplink, as DHCP or PPP \
             would give it; write `route replace {}` to set the route whatever is there, or \
             add `metric N` for a second route beside it, e.g. a backup default route)",
            w[2..].join(" ")
        )),
        "address" | "addr" | "a" if adds => Some(
            "\n  (the lab already gives this interface this address: the topology's links \
             assign them; leave the line out)"
                .to_string(),
        ),
        "rule" | "ru" if adds => Some(
            "\n  (this node already has this rule: the topology's `rules:` or an earlier line \
             added it; leave the line out or delete it first)"
                .to_string(),
        ),
        _ => None,
    }
}

/// `host/network `10.0.0.1' not found` (a match) or `Bad IP address "10.0.0.1"` (a target's
/// `--to-source`) from ip6tables-restore, or an IPv6 address from iptables-restore: an address
/// of the other family, in the wrong file.
fn other_family(kind: RuleKind, said: &str) -> Option<String> {
    let quoted = match said.split("host/network `").nth(1) {
        Some(rest) => rest.split('\'').next()?,
        None => said.split("Bad IP address \"").nth(1)?.split('"').next()?,
    };
    let addr = quoted.split('/').next()?;
    match kind {
        RuleKind::Ip6tables if addr.parse::<std::net::Ipv4Addr>().is_ok() => Some(format!(
            "\n  (`{quoted}` is an IPv4 address: ip6tables holds IPv6 rules only; put this rule \
             in an `iptables:` file or a `### iptables` section)"
        )),
        RuleKind::Iptables if addr.parse::<std::net::Ipv6Addr>().is_ok() => Some(format!(
            "\n  (`{quoted}` is an IPv6 address: iptables holds IPv4 rules only; put this rule \
             in an `ip6tables:` file or a `### ip6tables` section)"
        )),
        _ => None,
    }
}

/// iptables-restore (nf_tables) checks jumps when it commits a table and blames the `COMMIT`
/// line (`Chain 'X' does not exist`): the rule at fault is the one in that table that jumps to X.
fn jump_before_commit(lines: &[&str], n: usize, said: &str) -> Option<(usize, String)> {
    if lines.get(n.checked_sub(1)?).map(|l| l.trim()) != Some("COMMIT") {
        return None;
    }
    let chain = said.split('\'').nth(1).filter(|c| !c.is_empty())?;
    for k in (0..n - 1).rev() {
        let l = lines[k].trim();
        if l.starts_with('*') {
            break;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.windows(2)
            .any(|p| ["-j", "--jump", "-g", "--goto"].contains(&p[0]) && p[1] == chain)
        {
            return Some((k + 1, chain.to_string()));
        }
    }
    None
}

/// `ip -batch` stops without naming the line when it cannot parse one (`Command "frob" is
/// unknown`, `either "to" is duplicate, or "dve" is a garbage`): the first line that has a
/// word it quotes, trying the last quoted word first.
fn line_quoted<'a>(lines: &[&str], said: &'a str) -> Option<(usize, &'a str)> {
    let words: Vec<&str> = said
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && !w.contains(' '))
        .collect();
    words.iter().rev().find_map(|w| {
        lines
            .iter()
            .position(|l| {
                let l = l.trim();
                !l.starts_with('#') && l.split_whitespace().any(|x| x == *w)
            })
            .map(|k| (k + 1, *w))
    })
}

pub fn find_line(said: &str, path: &str) -> Option<usize> {
    let digits = |s: &str| -> Option<usize> {
        let d: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        d.parse().ok().filter(|n| *n > 0)
    };
    for l in said.lines() {
        if let Some(rest) = l.split("line: ").nth(1) {
            return digits(rest);
        }
        if let Some(rest) = l.split(&format!("{path}:")).nth(1) {
            return digits(rest);
        }
        if let Some(rest) = l
            .strip_prefix("iptables-restore: line ")
            .or_else(|| l.strip_prefix("ip6tables-restore: line "))
        {
            return digits(rest);
        }
        if let Some(rest) = l.split("Error in line ").nth(1) {
            return digits(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{
        already_there, find_line, jump_before_commit, line_quoted, other_family, rejection,
        rule_without_dash_6,
    };
    use crate::model::RuleKind;
    use rstest::rstest;

    const TABLE: &[&str] = &[
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        "-A PREROUTING -j MARK --set-mark 1",
        "-A PREROUTING -i eth0 -j NOSUCH",
        "COMMIT",
    ];

    #[rstest]
    #[case::commit_blamed(5, "iptables-restore v1.8.9 (nf_tables): Chain 'NOSUCH' does not exist\nError occurred at line: 5", Some((4, "NOSUCH".to_string())))]
    #[case::line_itself(3, "unknown option \"--frob\"\nError occurred at line: 3", None)]
    #[case::no_such_jump(5, "Chain 'OTHER' does not exist", None)]
    fn commit(#[case] n: usize, #[case] said: &str, #[case] want: Option<(usize, String)>) {
        assert_eq!(jump_before_commit(TABLE, n, said), want);
    }

    #[rstest]
    #[case::default_route(
        "route add default via 10.37.1.254 dev eth1",
        Some("route replace default via 10.37.1.254 dev eth1")
    )]
    #[case::connected_route(
        "route add 10.37.2.0/24 dev eth2 scope link",
        Some("route replace 10.37.2.0/24 dev eth2 scope link")
    )]
    #[case::address(
        "addr add 10.37.1.253/24 dev eth1",
        Some("already gives this interface")
    )]
    #[case::replace_does_not_fail("route replace default via 10.37.1.254", None)]
    fn exists(#[case] line: &str, #[case] want: Option<&str>) {
        let got = already_there(line, "RTNETLINK answers: File exists");
        match want {
            Some(w) => assert!(got.as_deref().is_some_and(|g| g.contains(w)), "{got:?}"),
            None => assert_eq!(got, None),
        }
        assert_eq!(
            already_there(line, "RTNETLINK answers: Network is unreachable"),
            None
        );
    }

    /// The whole message for a rule set that adds the router's default route again.
    #[test]
    fn a_route_the_lab_has_says_so_and_names_route_replace() {
        let l = crate::install::Loadable {
            kind: RuleKind::Ip,
            shown: "gen (ip section)".into(),
            first_line: 10,
            text: "route add table 101 default via 10.37.1.254 dev eth1\nroute add default via 10.37.1.254 dev eth1\n".into(),
            ipv6: false,
        };
        let e = rejection(
            "jupiter",
            &l,
            "ip -batch",
            "RTNETLINK answers: File exists\nCommand failed -:2",
        );
        let text = e.to_string();
        assert!(text.contains(":11"), "{text}");
        assert!(text.contains("the lab already has this route"), "{text}");
        assert!(text.contains("DHCP or PPP"), "{text}");
        assert!(
            text.contains("`route replace default via 10.37.1.254 dev eth1`"),
            "{text}"
        );
    }

    /// An IPv6 rule without `-6`: the line, and how to write it.
    #[test]
    fn an_ipv6_rule_without_dash_6_says_to_add_it() {
        let said = "Error: Invalid source address.";
        let hint = rule_without_dash_6("rule add from 2001:db8:2::253 table 102", said);
        assert!(hint.is_some_and(|h| h.contains("start the line with `-6`")));
        let dst = rule_without_dash_6(
            "rule add to 2001:db8:2::/48 table 102",
            "Error: Invalid dst address.",
        );
        assert!(dst.is_some());
        assert_eq!(
            rule_without_dash_6("route add default via 2001:db8:2::254", said),
            None
        );
        assert_eq!(
            rule_without_dash_6("rule add from 10.0.0.0/8 table 102", said),
            None
        );
    }

    #[rstest]
    #[case::unknown_command("Command \"frob\" is unknown, try \"ip rule help\".", Some((3, "frob")))]
    #[case::garbage("Error: either \"to\" is duplicate, or \"dve\" is a garbage.", Some((2, "dve")))]
    #[case::table("Error: argument \"rt_x\" is wrong: invalid table ID", Some((4, "rt_x")))]
    #[case::nothing_quoted("RTNETLINK answers: File exists", None)]
    fn quoted(#[case] said: &str, #[case] want: Option<(usize, &str)>) {
        let lines = [
            "# frob is not here",
            "route add default via 10.0.0.1 dve eth1",
            "rule frob",
            "rule add fwmark 2 table rt_x",
        ];
        assert_eq!(line_quoted(&lines, said), want);
    }

    #[rstest]
    #[case::iptables("iptables-restore v1.8.9 (nf_tables): unknown option \"--frob\"\nError occurred at line: 18\nTry `iptables-restore -h'", Some(18))]
    #[case::iptables_short("iptables-restore: line 7 failed", Some(7))]
    #[case::ip6tables_nft("ip6tables-restore v1.8.9 (nf_tables): unknown option \"--frob\"\nError occurred at line: 3\nTry `ip6tables-restore -h' or 'ip6tables-restore --help' for more information.", Some(3))]
    #[case::ip6tables_legacy("ip6tables-restore v1.8.9 (legacy): Couldn't load target `FROB':No such file or directory\n\nError occurred at line: 4\nTry `ip6tables-restore -h'", Some(4))]
    #[case::ip6tables_short("ip6tables-restore: line 9 failed", Some(9))]
    #[case::ip_batch(
        "Error: argument \"x\" is wrong: invalid table ID\nCommand failed /s/jupiter.ip:3",
        Some(3)
    )]
    #[case::nft("/s/jupiter.ip:12:5-9: Error: syntax error", Some(12))]
    #[case::ipset(
        "ipset v7.17: Error in line 4: The set with the given name does not exist",
        Some(4)
    )]
    #[case::none("Permission denied", None)]
    fn lines(#[case] said: &str, #[case] want: Option<usize>) {
        assert_eq!(find_line(said, "/s/jupiter.ip"), want);
    }

    const V6: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\n-A INPUT -j FROB\nCOMMIT\n";

    fn v6(first_line: usize) -> crate::install::Loadable {
        crate::install::Loadable {
            kind: RuleKind::Ip6tables,
            shown: "b.rules (ip6tables section)".into(),
            first_line,
            text: V6.into(),
            ipv6: false,
        }
    }

    /// What ip6tables-restore printed on this machine (v1.8.9) for a jump to a chain that is
    /// not there: nf_tables blames the COMMIT, legacy the line.
    #[rstest]
    #[case::nft("ip6tables-nft-restore", "ip6tables-nft-restore v1.8.9 (nf_tables): Chain 'FROB' does not exist\nError occurred at line: 5\nTry `ip6tables-nft-restore -h' or 'ip6tables-nft-restore --help' for more information.", "line 24 is the table's COMMIT")]
    #[case::legacy("ip6tables-legacy-restore", "ip6tables-restore v1.8.9 (legacy): Couldn't load target `FROB':No such file or directory\n\nError occurred at line: 4\nTry `ip6tables-restore -h' or 'ip6tables-restore --help' for more information.", "Couldn't load target")]
    fn ip6tables_rejections_quote_the_line(
        #[case] tool: &'static str,
        #[case] said: &str,
        #[case] says: &str,
    ) {
        let e = rejection("jupiter", &v6(20), tool, said);
        let text = e.to_string();
        assert!(text.contains("b.rules (ip6tables section):23"), "{text}");
        assert!(text.contains("-A INPUT -j FROB"), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(!text.contains("Try `"), "{text}");
    }

    #[test]
    fn an_address_of_the_other_family_says_which_file() {
        let said = "ip6tables-restore v1.8.9 (nf_tables): host/network `10.0.0.1' not found\nError occurred at line: 3";
        let note = other_family(RuleKind::Ip6tables, said).expect("IPv4 in ip6tables");
        assert!(note.contains("`10.0.0.1` is an IPv4 address"), "{note}");
        assert!(note.contains("`### iptables`"), "{note}");
        let said = "iptables-restore v1.8.9 (nf_tables): host/network `2001:db8::/32' not found";
        let note = other_family(RuleKind::Iptables, said).expect("IPv6 in iptables");
        assert!(note.contains("`### ip6tables`"), "{note}");
        let said = "ip6tables-restore v1.8.9 (nf_tables): Bad IP address \"10.37.1.253\"";
        let note = other_family(RuleKind::Ip6tables, said).expect("a v4 --to-source");
        assert!(note.contains("`10.37.1.253` is an IPv4 address"), "{note}");
        assert_eq!(
            other_family(
                RuleKind::Ip6tables,
                "host/network `nosuch.example' not found"
            ),
            None
        );
        assert_eq!(
            other_family(RuleKind::Iptables, "host/network `10.0.0.1' not found"),
            None
        );
    }
}

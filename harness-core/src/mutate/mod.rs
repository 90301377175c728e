//! Mutants of a rule set: what a slip in a rule generator or a hand edit would do. Pure.
//!
//! Operators: delete each rule in turn; swap the first two marks set; drop one state from a
//! state list; swap two nth packet numbers; flip the priority (or the order) of two policy
//! rules. A mutant no scenario notices is a missing scenario or expectation, unless it is
//! equivalent (it changes nothing a packet could show).

pub mod campaign;

use crate::model::RuleKind;

/// One mutant of one rule text.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutant {
    /// `deleted `-A POSTROUTING -o eth1 -j SNAT1``
    pub change: String,
    /// The line (1-based, in the text) it changes first.
    pub line: usize,
    pub text: String,
}

fn with_lines(lines: &[&str], f: impl Fn(usize, &str) -> Option<String>) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(new) = f(i, l) {
            out.push_str(&new);
            out.push('\n');
        }
    }
    out
}

/// Whether a line is a rule a mutant may delete.
fn is_rule(kind: RuleKind, line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return false;
    }
    match kind {
        RuleKind::Iptables | RuleKind::Ip6tables => t.starts_with("-A ") || t.starts_with("-I "),
        RuleKind::Nft => {
            let first = t.split_whitespace().next().unwrap_or("");
            !t.ends_with('{')
                && !t.starts_with('}')
                && ![
                    "type", "policy", "flush", "define", "table", "chain", "set", "elements",
                    "include",
                ]
                .contains(&first)
        }
        RuleKind::Ip | RuleKind::Sysctl => true,
        RuleKind::Ipset => t.starts_with("add "),
    }
}

/// Every mutant of `text`, a rule file of `kind`.
pub fn mutants(kind: RuleKind, text: &str) -> Vec<Mutant> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    // Delete each rule in turn.
    for (i, l) in lines.iter().enumerate() {
        if is_rule(kind, l) {
            out.push(Mutant {
                change: format!("deleted `{}`", l.trim()),
                line: i + 1,
                text: with_lines(&lines, |k, x| (k != i).then(|| x.to_string())),
            });
        }
    }
    out.extend(swap_marks(kind, &lines));
    out.extend(drop_states(kind, &lines));
    out.extend(swap_nth(&lines));
    out.extend(flip_priority(kind, &lines));
    out
}

/// The index of the word after the first run of words matching `keys` (`--state X` → X).
fn word_after(w: &[&str], keys: &[&[&str]]) -> Option<usize> {
    w.windows(keys.len())
        .position(|p| p.iter().zip(keys).all(|(word, ok)| ok.contains(word)))
        .map(|i| i + keys.len())
}

/// The value a line sets a mark to, and the word it follows.
fn mark_set(kind: RuleKind, line: &str) -> Option<(usize, String)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let at = match kind {
        RuleKind::Iptables | RuleKind::Ip6tables => {
            word_after(&w, &[&["--set-mark", "--set-xmark"]])
        }
        RuleKind::Nft => word_after(&w, &[&["meta", "ct"], &["mark"], &["set"]]),
        _ => None,
    }?;
    let v = w.get(at)?;
    (v.chars().next()?.is_ascii_digit()).then(|| (at, v.to_string()))
}

fn replace_word(line: &str, at: usize, new: &str) -> String {
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    let mut w: Vec<&str> = line.split_whitespace().collect();
    w[at] = new;
    format!("{indent}{}", w.join(" "))
}

/// `lines` with word `at_i` of line `i` set to `to_i` and word `at_j` of line `j` to `to_j`.
fn set_two_words(
    lines: &[&str],
    (i, at_i, to_i): (usize, usize, &str),
    (j, at_j, to_j): (usize, usize, &str),
) -> String {
    with_lines(lines, |k, x| {
        Some(if k == i {
            replace_word(x, at_i, to_i)
        } else if k == j {
            replace_word(x, at_j, to_j)
        } else {
            x.to_string()
        })
    })
}

/// Swaps the first two distinct marks set (mark 1 ↔ mark 2 wherever set).
fn swap_marks(kind: RuleKind, lines: &[&str]) -> Option<Mutant> {
    let mut values: Vec<String> = Vec::new();
    for l in lines {
        if let Some((_, v)) = mark_set(kind, l) {
            if !values.contains(&v) {
                values.push(v);
            }
        }
    }
    let (a, b) = (values.first()?.clone(), values.get(1)?.clone());
    let first = lines.iter().position(|l| mark_set(kind, l).is_some())?;
    let text = with_lines(lines, |_, l| {
        Some(match mark_set(kind, l) {
            Some((at, v)) if v == a => replace_word(l, at, &b),
            Some((at, v)) if v == b => replace_word(l, at, &a),
            _ => l.to_string(),
        })
    });
    Some(Mutant {
        change: format!("swapped marks {a} and {b}"),
        line: first + 1,
        text,
    })
}

/// Drops each state in turn from `--state A,B` / `--ctstate A,B` / `ct state a,b`.
fn drop_states(kind: RuleKind, lines: &[&str]) -> Vec<Mutant> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let at = match kind {
            RuleKind::Iptables | RuleKind::Ip6tables => {
                word_after(&w, &[&["--state", "--ctstate"]])
            }
            RuleKind::Nft => word_after(&w, &[&["ct"], &["state"]]),
            _ => None,
        };
        let Some(at) = at else { continue };
        let Some(list) = w.get(at) else { continue };
        let states: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
        if states.len() < 2 {
            continue;
        }
        for drop in &states {
            let kept: Vec<&str> = states.iter().filter(|s| *s != drop).copied().collect();
            let new = replace_word(l, at, &kept.join(","));
            out.push(Mutant {
                change: format!("dropped state {drop} from `{}`", l.trim()),
                line: i + 1,
                text: with_lines(lines, |k, x| {
                    Some(if k == i { new.clone() } else { x.to_string() })
                }),
            });
        }
    }
    out
}

/// Swaps the `--packet` numbers of the first two nth rules that differ.
fn swap_nth(lines: &[&str]) -> Option<Mutant> {
    let packet = |l: &str| -> Option<(usize, String)> {
        let w: Vec<&str> = l.split_whitespace().collect();
        let at = w.windows(2).position(|p| p[0] == "--packet")? + 1;
        Some((at, w[at].to_string()))
    };
    let rules: Vec<(usize, usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| packet(l).map(|(at, v)| (i, at, v)))
        .collect();
    let (i, ai, a) = rules.first()?.clone();
    let (j, aj, b) = rules.iter().find(|r| r.2 != a)?.clone();
    let text = set_two_words(lines, (i, ai, &b), (j, aj, &a));
    Some(Mutant {
        change: format!("swapped nth packet numbers {a} and {b}"),
        line: i + 1,
        text,
    })
}

/// Flips two policy rules: their `pref`s when both have one, else their order.
fn flip_priority(kind: RuleKind, lines: &[&str]) -> Option<Mutant> {
    if kind != RuleKind::Ip {
        return None;
    }
    let rules: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("rule add"))
        .map(|(i, _)| i)
        .collect();
    let (i, j) = (*rules.first()?, *rules.get(1)?);
    let pref = |l: &str| -> Option<(usize, String)> {
        let w: Vec<&str> = l.split_whitespace().collect();
        let at = w
            .windows(2)
            .position(|p| ["pref", "priority", "preference"].contains(&p[0]))?
            + 1;
        Some((at, w[at].to_string()))
    };
    let text = match (pref(lines[i]), pref(lines[j])) {
        (Some((ai, a)), Some((aj, b))) if a != b => set_two_words(lines, (i, ai, &b), (j, aj, &a)),
        _ => with_lines(lines, |k, x| {
            Some(if k == i {
                lines[j].to_string()
            } else if k == j {
                lines[i].to_string()
            } else {
                x.to_string()
            })
        }),
    };
    Some(Mutant {
        change: format!(
            "flipped the priority of `{}` and `{}`",
            lines[i].trim(),
            lines[j].trim()
        ),
        line: i + 1,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "*mangle\n:CONNMARK1 - [0:0]\n-A CONNMARK1 -j MARK --set-mark 1\n-A CONNMARK2 -j MARK --set-mark 2\n-A PREROUTING -i eth0 -m state --state ESTABLISHED,RELATED -j RESTOREMARK\n-A PREROUTING -m statistic --mode nth --every 2 --packet 0 -j CONNMARK1\n-A PREROUTING -m statistic --mode nth --every 2 --packet 1 -j CONNMARK2\nCOMMIT\n";

    #[test]
    fn iptables_operators() {
        let m = mutants(RuleKind::Iptables, SEED);
        let changes: Vec<&str> = m.iter().map(|m| m.change.as_str()).collect();
        assert_eq!(
            changes.iter().filter(|c| c.starts_with("deleted")).count(),
            5,
            "{changes:#?}"
        );
        let swap = m
            .iter()
            .find(|m| m.change == "swapped marks 1 and 2")
            .expect("swap");
        assert!(
            swap.text
                .contains("-A CONNMARK1 -j MARK --set-mark 2\n-A CONNMARK2 -j MARK --set-mark 1"),
            "{}",
            swap.text
        );
        assert!(m
            .iter()
            .any(|m| m.change.starts_with("dropped state RELATED")
                && m.text.contains("--state ESTABLISHED -j")));
        let nth = m
            .iter()
            .find(|m| m.change == "swapped nth packet numbers 0 and 1")
            .expect("nth");
        assert!(
            nth.text.contains("--packet 1 -j CONNMARK1")
                && nth.text.contains("--packet 0 -j CONNMARK2")
        );
    }

    /// ip6tables text is iptables-restore's: the same mutants, each kept as ip6tables.
    #[test]
    fn ip6tables_gets_the_iptables_operators() {
        let v6 = SEED.replace("-i eth0", "-i eth0 -s 2001:db8:1::/48");
        let four = mutants(RuleKind::Iptables, &v6);
        let six = mutants(RuleKind::Ip6tables, &v6);
        assert_eq!(four, six);
        assert!(six.iter().any(|m| m.change == "swapped marks 1 and 2"));
        assert!(six
            .iter()
            .any(|m| m.change == "swapped nth packet numbers 0 and 1"));
        assert!(six
            .iter()
            .any(|m| m.change.starts_with("dropped state ESTABLISHED")));
    }

    #[test]
    fn ip_rules_flip_order_or_priority() {
        let m = mutants(
            RuleKind::Ip,
            "rule add fwmark 1 table 101\nrule add fwmark 2 table 102\n",
        );
        let flip = m
            .iter()
            .find(|m| m.change.starts_with("flipped"))
            .expect("flip");
        assert_eq!(
            flip.text,
            "rule add fwmark 2 table 102\nrule add fwmark 1 table 101\n"
        );
        let m = mutants(
            RuleKind::Ip,
            "rule add pref 100 iif cust lookup main\nrule add pref 101 iif cust blackhole\n",
        );
        assert!(m.iter().any(|m| m.text
            == "rule add pref 101 iif cust lookup main\nrule add pref 100 iif cust blackhole\n"));
    }

    #[test]
    fn nft_statements_marks_and_states() {
        let nft = "table inet mangle {\n  chain pre {\n    type filter hook prerouting priority mangle;\n    ct state established,related meta mark set ct mark\n    iifname \"eth1\" ct state new meta mark set 2\n    iifname \"eth2\" ct state new meta mark set 3\n  }\n}\n";
        let m = mutants(RuleKind::Nft, nft);
        assert_eq!(
            m.iter().filter(|m| m.change.starts_with("deleted")).count(),
            3
        );
        assert!(m.iter().any(|m| m.change == "swapped marks 2 and 3"));
        assert!(m
            .iter()
            .any(|m| m.change.starts_with("dropped state related")));
    }
}

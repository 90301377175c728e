//! Verdict → what people and dashboards read: the per-flow table, the failures, the one-line
//! summary, the deterministic snapshot ([`words`] holds every sentence); JSON and JUnit
//! ([`results`]), HTML ([`html`]), pcap ([`pcap`]). Pure: the harness crate's `report::files` writes them.

pub mod html;
pub mod pcap;
pub mod results;
pub mod words;

use std::fmt::Write as _;

use crate::verdict::{FlowPath, Outcome, Verdict};
use smol_str::SmolStr;
pub use words::ranges;
use words::{ids, join};

fn or_dash(v: &[SmolStr]) -> String {
    join(v, ",", "—")
}

/// The flow's verdict column: `ok`, `FAIL a, b`, or `broken as declared: a, b` (when each
/// expectation it broke broke as declared: [`crate::verdict::declared`]).
fn flow_verdict(v: &Verdict, f: &FlowPath) -> String {
    let broke: Vec<&str> = v.broken_by(f.id).map(|r| r.name.as_str()).collect();
    if broke.is_empty() {
        "ok".to_string()
    } else if v.broken_as_declared(f.id) {
        format!("broken as declared: {}", broke.join(", "))
    } else {
        format!("FAIL {}", broke.join(", "))
    }
}

/// The per-flow table: flow, proto, client, out-link, back-link, source seen, mark, verdict.
pub fn table(v: &Verdict) -> String {
    table_of(v, |_| true)
}

fn table_of(v: &Verdict, keep: impl Fn(&FlowPath) -> bool) -> String {
    let head = [
        "flow",
        "proto",
        "client",
        "out",
        "back",
        "source seen",
        "mark",
        "verdict",
    ]
    .map(String::from);
    let rows: Vec<[String; 8]> = v
        .flows
        .iter()
        .filter(|f| keep(f))
        .map(|f| {
            [
                f.id.to_string(),
                f.proto.to_string(),
                f.client.to_string(),
                or_dash(&f.out),
                or_dash(&f.back),
                f.source_seen.map_or("—".into(), |a| a.to_string()),
                f.mark.map_or("—".into(), |m| m.to_string()),
                flow_verdict(v, f),
            ]
        })
        .collect();
    let mut w = [0usize; 8];
    for r in std::iter::once(&head).chain(rows.iter()) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in std::iter::once(&head).chain(rows.iter()) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 || i == 6 {
                let _ = write!(line, "{}{c}  ", " ".repeat(pad));
            } else if i == 7 {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c}{}  ", " ".repeat(pad));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Every broken expectation with, per flow, what was observed instead.
pub fn failures(v: &Verdict) -> String {
    let mut s = String::new();
    for r in v.results.iter().filter(|r| r.broke_overall) {
        let _ = writeln!(
            s,
            "expectation `{}` ({}, flows {}) broke: {}",
            r.name,
            r.check,
            r.selector,
            words::observed(v, &r.name)
        );
    }
    for r in v.results.iter().filter(|r| !r.failures.is_empty()) {
        let _ = writeln!(
            s,
            "expectation `{}` ({}, flows {}) broke for {} of {} flows:",
            r.name,
            r.check,
            r.selector,
            r.failures.len(),
            r.flows.len()
        );
        for f in &r.failures {
            let _ = writeln!(s, "  flow {}: {}", f.flow, words::finding(v, f));
        }
    }
    s
}

/// The first failures of a verdict, for one line (gate, mutate): which flow, which
/// expectation, what instead.
pub fn first_failures(v: &Verdict, most: usize) -> String {
    let mut all: Vec<String> = Vec::new();
    for r in &v.results {
        if r.broke_overall {
            all.push(format!("`{}` {}", r.name, words::observed(v, &r.name)));
        }
        for f in &r.failures {
            all.push(format!(
                "`{}` flow {}: {}",
                r.name,
                f.flow,
                words::finding(v, f)
            ));
        }
    }
    let more = all.len().saturating_sub(most);
    all.truncate(most);
    let mut s = all.join("; ");
    if more > 0 {
        s.push_str(&format!("; and {more} more (harness run for all)"));
    }
    s
}

/// The one-line summary.
pub fn summary(v: &Verdict) -> String {
    let n = v.flows.len();
    let e = v.results.len();
    let broken: Vec<&str> = v
        .results
        .iter()
        .filter(|r| r.broke())
        .map(|r| r.name.as_str())
        .collect();
    match &v.outcome {
        Outcome::Pass => format!("PASS {}: {n} flows, all {e} expectations held", v.scenario),
        Outcome::Fail => {
            let flows: std::collections::BTreeSet<u32> =
                v.results.iter().flat_map(|r| r.failed_flows()).collect();
            let which = if flows.is_empty() {
                "taken together".to_string()
            } else {
                format!(
                    "for flows {}",
                    ranges(&flows.into_iter().collect::<Vec<_>>())
                )
            };
            format!(
                "FAIL {}: {} of {e} expectations broke ({}), {which}",
                v.scenario,
                broken.len(),
                broken.join(", ")
            )
        }
        Outcome::BrokenAsDeclared => format!(
            "PASS {}: broken as declared ({}) — {}",
            v.scenario,
            broken.join(", "),
            v.declared.as_ref().map_or("", |d| d.reason.as_str())
        ),
        Outcome::NotAsDeclared(p) => format!(
            "FAIL {}: declared broken, but not as declared: {}",
            v.scenario,
            words::problems(v, p)
        ),
    }
}

/// Everything a person reads after `harness run`.
pub fn full(v: &Verdict) -> String {
    let mut s = table(v);
    let stats: Vec<String> = v
        .results
        .iter()
        .filter(|r| r.statistical() && !r.broke_overall)
        .map(|r| {
            format!(
                "`{}` ({}) held: {}\n",
                r.name,
                r.check,
                words::observed(v, &r.name)
            )
        })
        .collect();
    if !stats.is_empty() {
        s.push('\n');
        s.push_str(&stats.concat());
    }
    if !v.events.is_empty() {
        s.push('\n');
        for e in &v.events {
            s.push_str(&words::event(e));
            s.push('\n');
        }
    }
    let f = failures(v);
    if !f.is_empty() {
        s.push('\n');
        if v.outcome == Outcome::BrokenAsDeclared {
            s.push_str(
                "(this rule set is declared broken; these failures are the ones it must show)\n",
            );
        }
        s.push_str(&f);
    }
    s.push('\n');
    s.push_str(&summary(v));
    s.push('\n');
    s
}

/// The deterministic part of a run, for snapshots: the table (ports are fixed per flow),
/// each expectation and the flows it failed for, and the outcome. No timings, no packet counts.
/// Flows judged together by statistics are left out of the table: which uplink each took
/// varies from run to run, only whether their split held does not.
pub fn snapshot(v: &Verdict) -> String {
    let together = v.statistical_flows();
    let timed = v.timed_flows();
    let together: std::collections::BTreeSet<u32> = together.difference(&timed).copied().collect();
    let kept = |id: &u32| !together.contains(id) && !timed.contains(id);
    let mut s = if v.flows.iter().all(|f| !kept(&f.id)) {
        String::new()
    } else {
        table_of(v, |f| kept(&f.id))
    };
    if !together.is_empty() {
        let _ = writeln!(
            s,
            "flows {}: judged together (split); their rows vary from run to run",
            ranges(&together.into_iter().collect::<Vec<_>>())
        );
    }
    if !timed.is_empty() {
        let _ = writeln!(
            s,
            "flows {}: judged by when they ran against events; their rows vary from run to run",
            ranges(&timed.into_iter().collect::<Vec<_>>())
        );
    }
    s.push('\n');
    for r in &v.results {
        // Which flows broke an expectation varies from run to run when events happen during
        // traffic: only whether it broke does not.
        let state = if !r.broke() {
            "held".to_string()
        } else if r.broke_overall || v.timed {
            "BROKE".to_string()
        } else {
            format!("BROKE for flows {}", ids(&r.failed_flows()))
        };
        let _ = writeln!(s, "{}: {} [flows {}]: {state}", r.name, r.check, r.selector);
    }
    let outcome = match &v.outcome {
        Outcome::Pass => "pass".to_string(),
        Outcome::Fail => "FAIL".to_string(),
        Outcome::BrokenAsDeclared => "broken as declared".to_string(),
        Outcome::NotAsDeclared(p) => format!("NOT as declared: {}", words::problems(v, p)),
    };
    let _ = writeln!(s, "outcome: {outcome}");
    s
}

/// What the daemons did, for a person: those that exited by themselves before the run ended,
/// and with `all` (a run that failed) every one, each with its last lines of output. Empty
/// when there is nothing to say.
pub fn daemons(runs: &[crate::observe::daemons::DaemonRun], all: bool) -> String {
    use crate::observe::daemons::DaemonEnd;
    const LINES: usize = 20;
    let mut s = String::new();
    for d in runs.iter().filter(|d| all || d.exited_early()) {
        let how = match &d.end {
            DaemonEnd::Stopped => "ran until the run ended".to_string(),
            DaemonEnd::Killed => format!(
                "ran until the run ended, and was still there {:.1} s after SIGTERM: killed (SIGKILL)",
                crate::observe::daemons::GRACE_MS as f64 / 1000.0
            ),
            DaemonEnd::Exited {
                after_ms,
                code,
                signal,
            } => {
                let status = match (code, signal) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    (None, None) => "status unknown".to_string(),
                };
                format!(
                    "exited by itself {:.1} s after it started, before the run ended ({status})",
                    *after_ms as f64 / 1000.0
                )
            }
        };
        let _ = write!(s, "\ndaemon `{}` on {} {how}", d.command, d.node);
        let lines = d.last_lines(LINES);
        if lines.is_empty() {
            s.push_str("; it printed nothing\n");
            continue;
        }
        let cut = d.output_cut || d.output.lines().count() > lines.len();
        let _ = writeln!(
            s,
            "; {}:",
            if cut {
                "the last lines it printed"
            } else {
                "what it printed"
            }
        );
        for l in lines {
            let _ = writeln!(s, "  | {l}");
        }
    }
    s
}

/// The iptables and ip6tables rules no packet hit, with their file and line; `None` counters
/// are rules whose chain the harness could not match to the file.
pub fn coverage(hits: &[crate::observe::counters::RuleHit]) -> String {
    let idle: Vec<_> = hits.iter().filter(|h| h.packets == Some(0)).collect();
    // `12 of 12 iptables rules hit`, each family that has rules, in that order.
    let counts: Vec<String> = [(false, "iptables"), (true, "ip6tables")]
        .iter()
        .filter(|(v6, _)| hits.iter().any(|h| h.ipv6 == *v6) || (!v6 && hits.is_empty()))
        .map(|(v6, name)| {
            let mine: Vec<_> = hits.iter().filter(|h| h.ipv6 == *v6).collect();
            let hit = mine
                .iter()
                .filter(|h| h.packets.is_some_and(|p| p > 0))
                .count();
            let unknown = mine.iter().filter(|h| h.packets.is_none()).count();
            let mut c = format!("{hit} of {} {name} rules hit", mine.len());
            if unknown > 0 {
                c.push_str(&format!(" ({unknown} not matched to their file)"));
            }
            c
        })
        .collect();
    let mut s = format!("\ncoverage: {}", counts.join(", "));
    s.push('\n');
    if !idle.is_empty() {
        s.push_str("rules no packet hit:\n");
        for h in idle {
            let _ = writeln!(s, "  {}:{}: {}", h.shown, h.line, h.rule);
        }
    }
    s
}

#[cfg(test)]
mod daemon_tests {
    use super::daemons;
    use crate::observe::daemons::{DaemonEnd, DaemonRun};

    fn run(end: DaemonEnd, output: &str) -> DaemonRun {
        DaemonRun {
            node: "jupiter".into(),
            command: "./mon".into(),
            end,
            output: output.into(),
            output_cut: false,
        }
    }

    /// A daemon that exited early is always said, with its last lines; one that ran to the
    /// end only when the run failed.
    #[test]
    fn daemons_are_said_when_one_died_early_or_the_run_failed() {
        let many: String = (1..=25).map(|i| format!("line {i}\n")).collect();
        let early = run(
            DaemonEnd::Exited {
                after_ms: 1500,
                code: Some(3),
                signal: None,
            },
            &many,
        );
        let ran = run(DaemonEnd::Stopped, "");
        let killed = run(DaemonEnd::Killed, "wan1 up\n");
        let all = [early.clone(), ran.clone(), killed.clone()];
        assert_eq!(daemons(&[ran.clone(), killed.clone()], false), "");
        let said = daemons(&all, false);
        assert!(said.starts_with("\ndaemon `./mon` on jupiter exited by itself 1.5 s after it started, before the run ended (exit status 3); the last lines it printed:\n  | line 6\n"), "{said}");
        assert!(said.ends_with("  | line 25\n"), "{said}");
        assert!(!said.contains("line 5\n"), "{said}");
        let said = daemons(&all, true);
        assert!(
            said.contains(
                "\ndaemon `./mon` on jupiter ran until the run ended; it printed nothing\n"
            ),
            "{said}"
        );
        assert!(said.contains("and was still there 0.2 s after SIGTERM: killed (SIGKILL); what it printed:\n  | wan1 up\n"), "{said}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Break, ExpectedFailure, Proto};
    use crate::verdict::{Declared, ExpResult, Finding, FlowFailure};

    fn flow(id: u32) -> FlowPath {
        FlowPath {
            id,
            group: "web".into(),
            proto: Proto::Tcp,
            client: format!("192.168.157.3:{}", 40000 + id).parse().unwrap(),
            out: vec!["wan1".into()],
            back: vec!["wan2".into()],
            first_out_source: None,
            router_out: Vec::new(),
            first_out: Some("wan1".into()),
            source_seen: None,
            mark: None,
            completed: true,
            client_error: None,
            related_seen: None,
            packets: 4,
            drops: Vec::new(),
            story: Vec::new(),
            trace: None,
            reset: false,
            recovered: false,
            started_ms: None,
            ended_ms: None,
        }
    }

    /// `one_uplink` declared to break for flows 2 and 4, on a run where it broke for 2 only.
    fn half_declared() -> Verdict {
        let declared = ExpectedFailure {
            reason: "no restore".into(),
            breaks: vec![Break {
                expectation: "one_uplink".into(),
                flows: Some(vec![2, 4]),
            }],
        };
        let mut results = vec![ExpResult {
            name: "one_uplink".into(),
            check: "every packet on one uplink".into(),
            selector: "all".into(),
            flows: vec![1, 2, 3, 4],
            failures: vec![FlowFailure {
                flow: 2,
                finding: Finding::SplitUplinks {
                    out: vec!["wan1".into()],
                    back: vec!["wan2".into()],
                },
                drops: Vec::new(),
            }],
            split: None,
            broke_overall: false,
            declared: Declared::No,
            vacant: None,
        }];
        let outcome = crate::verdict::declared::decide(&mut results, Some(&declared));
        Verdict {
            scenario: "twin".into(),
            router: "jupiter".into(),
            flows: (1..=4).map(flow).collect(),
            results,
            declared: Some(declared),
            outcome,
            events: Vec::new(),
            timed: false,
        }
    }

    fn hit(line: usize, packets: Option<u64>, ipv6: bool) -> crate::observe::counters::RuleHit {
        crate::observe::counters::RuleHit {
            shown: "jupiter.rules".into(),
            line,
            rule: format!("-A X -j Y{line}"),
            packets,
            ipv6,
        }
    }

    /// Each family's rules are counted apart: ip6tables rules that no IPv6 packet could hit do
    /// not read as iptables rules left idle.
    #[test]
    fn coverage_counts_each_family_apart() {
        let four = coverage(&[hit(1, Some(3), false), hit(2, Some(0), false)]);
        assert!(
            four.starts_with("\ncoverage: 1 of 2 iptables rules hit\n"),
            "{four}"
        );
        let both = coverage(&[
            hit(1, Some(3), false),
            hit(2, Some(1), false),
            hit(3, Some(0), true),
            hit(4, None, true),
        ]);
        assert!(
            both.starts_with("\ncoverage: 2 of 2 iptables rules hit, 0 of 2 ip6tables rules hit (1 not matched to their file)\nrules no packet hit:\n  jupiter.rules:3: -A X -j Y3\n"),
            "{both}"
        );
    }

    /// "As declared" is decided once, per expectation: a flow's row no longer reads "broken as
    /// declared" when its expectation did not break as declared (before, the row only asked
    /// whether the flow was in the declared list, and said so while the outcome said not).
    #[test]
    fn a_row_is_broken_as_declared_only_when_its_expectation_is() {
        let v = half_declared();
        assert!(matches!(v.outcome, Outcome::NotAsDeclared(_)));
        assert_eq!(v.results[0].declared, Declared::NotAsDeclared);
        let t = table(&v);
        assert!(
            t.lines()
                .any(|l| l.trim_start().starts_with("2 ") && l.ends_with("FAIL one_uplink")),
            "{t}"
        );
        assert!(!t.contains("broken as declared"), "{t}");
        assert_eq!(
            summary(&v),
            "FAIL twin: declared broken, but not as declared: `one_uplink` was declared to break for flows 2, 4; it broke for flows 2"
        );
    }
}

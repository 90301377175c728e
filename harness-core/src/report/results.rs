//! Result files for dashboards: JSON (the whole verdict, versioned, with its schema in
//! `schema/results.schema.json`) and JUnit XML (one testcase per expectation). Pure.

use schemars::JsonSchema;
use serde::Serialize;

use super::words::{self, ids};
use crate::observe::counters::RuleHit;
use crate::verdict::{ExpResult, Outcome, Verdict};

/// What one scenario contributes to the result files.
pub struct Judged<'a> {
    pub file: &'a str,
    /// Its verdict, or why its rules could not be loaded.
    pub judgement: Judgement<'a>,
    pub seconds: f64,
    pub packets_seen: usize,
    pub conntrack_entries: usize,
    pub coverage: Option<&'a [RuleHit]>,
    /// The daemons its rules ran (a monitor in the router), and how each ended.
    pub daemons: &'a [crate::observe::daemons::DaemonRun],
}

/// What became of a scenario: its flows judged, or its rules refused before any flow ran.
#[derive(Debug, Clone, Copy)]
pub enum Judgement<'a> {
    /// The rules loaded, and every flow was judged.
    Verdict(&'a Verdict),
    /// The rules could not be loaded (a tool rejected them, their generator failed or printed
    /// nothing usable): no flow ran, so there is no verdict. `harness gate` reports these as
    /// the rule set's failures and goes on.
    RulesNotLoaded {
        /// The scenario's name.
        scenario: &'a str,
        /// The node whose rules did not load.
        router: &'a str,
        /// Why, in the words the terminal uses (every line of it).
        error: &'a str,
    },
    /// Not run: `harness gate` skips a scenario declared broken (it tests the harness, not the
    /// rules) and one whose topology lacks the node `--rules` names. Neither passed nor failed.
    Skipped {
        /// The scenario's name.
        scenario: &'a str,
        /// Why it was not run, as the terminal's `skip` line says it.
        reason: &'a str,
    },
}

impl<'a> Judgement<'a> {
    /// The verdict, when the flows were judged.
    pub fn verdict(&self) -> Option<&'a Verdict> {
        match self {
            Judgement::Verdict(v) => Some(v),
            Judgement::RulesNotLoaded { .. } | Judgement::Skipped { .. } => None,
        }
    }

    /// The scenario's name.
    pub fn scenario(&self) -> &'a str {
        match self {
            Judgement::Verdict(v) => &v.scenario,
            Judgement::RulesNotLoaded { scenario, .. } | Judgement::Skipped { scenario, .. } => {
                scenario
            }
        }
    }

    /// Whether the scenario says what it should; never when its rules did not load, nor when
    /// it was skipped (it said nothing).
    pub fn passed(&self) -> bool {
        self.verdict().is_some_and(|v| v.outcome.ok())
    }

    /// The one-line summary, as the terminal prints it.
    pub fn summary(&self) -> String {
        match self {
            Judgement::Verdict(v) => super::summary(v),
            Judgement::RulesNotLoaded {
                scenario,
                router,
                error,
            } => format!(
                "FAIL {scenario}: the rules of `{router}` did not load, so no flow ran: {}",
                error.lines().next().unwrap_or("")
            ),
            Judgement::Skipped { scenario, reason } => format!("skip {scenario}: {reason}"),
        }
    }
}

/// The version of the JSON results format. It changes when a field is removed or changes
/// meaning; fields may be added within one version.
pub const VERSION: u32 = 1;

/// The JSON results of `harness run --json` and `harness gate --json`: every scenario run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "harness results", deny_unknown_fields)]
pub struct Results<'a> {
    /// The format's version ([`VERSION`]).
    pub version: u32,
    pub scenarios: Vec<ScenarioResult<'a>>,
}

/// One scenario judged.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScenarioResult<'a> {
    /// The scenario file, as given.
    pub file: &'a str,
    /// Whether it says what it should: every expectation held, or it broke as declared. False
    /// for a scenario `harness gate` skipped (`skipped` says why): it was not run, so it is
    /// neither passed nor failed; count it by `skipped`.
    pub passed: bool,
    /// Wall time of its run.
    pub seconds: f64,
    /// The one-line summary, as the terminal prints it.
    pub summary: String,
    /// What was expected and what was seen, as data: each flow's path (with its packets hop
    /// by hop), each expectation's failures, the outcome. Null when the rules could not be
    /// loaded (`error` says why), or the scenario was skipped (`skipped` says why): no flow ran.
    pub verdict: Option<&'a Verdict>,
    /// Why the rules could not be loaded (a tool rejected them, their generator failed),
    /// every line of it, as the terminal words it; absent when they loaded. `harness gate`
    /// writes such scenarios with `passed: false` and goes on to the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// Why `harness gate` did not run it, as its `skip` line says (declared broken: it tests
    /// the harness, not the rules; or its topology lacks the node `--rules` names); absent
    /// when it ran. Such a scenario has `passed: false`, `verdict: null` and no messages, and
    /// is neither passed nor failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'a str>,
    /// Every failure and declaration problem in the words the terminal uses.
    pub messages: Vec<Message>,
    pub observations: Counts,
    /// With `--coverage`: every iptables rule and how many packets hit it.
    pub coverage: Option<&'a [RuleHit]>,
    /// The daemons its rules ran (`daemon:`, e.g. a monitor in the router): the node, the
    /// command, how it ended, and the last of what it printed. Absent when there were none.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub daemons: &'a [crate::observe::daemons::DaemonRun],
}

/// How much the run saw.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Counts {
    pub packets_seen: usize,
    pub conntrack_entries: usize,
}

/// One thing that went wrong, in words.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Message {
    pub kind: MessageKind,
    /// The expectation it is about.
    pub expectation: String,
    /// The flow, for a flow's failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A flow broke the expectation.
    Flow,
    /// The flows together broke it (a split, or `sticky`, judged on the flows as a whole).
    Split,
    /// A declared-broken scenario did not break as declared.
    Declaration,
}

/// Every failure of `v` in words, in expectation order, then the declaration's problems.
fn messages(v: &Verdict) -> Vec<Message> {
    let mut out = Vec::new();
    for r in &v.results {
        if r.broke_overall {
            out.push(Message {
                kind: MessageKind::Split,
                expectation: r.name.clone(),
                flow: None,
                text: words::observed(v, &r.name),
            });
        }
        out.extend(r.failures.iter().map(|f| Message {
            kind: MessageKind::Flow,
            expectation: r.name.clone(),
            flow: Some(f.flow),
            text: words::finding(v, f),
        }));
    }
    if let Outcome::NotAsDeclared(problems) = &v.outcome {
        out.extend(problems.iter().map(|p| Message {
            kind: MessageKind::Declaration,
            expectation: p.expectation().to_string(),
            flow: None,
            text: words::problem(v, p),
        }));
    }
    out
}

/// The results document of `all`.
pub fn results<'a>(all: &'a [Judged]) -> Results<'a> {
    Results {
        version: VERSION,
        scenarios: all
            .iter()
            .map(|j| ScenarioResult {
                file: j.file,
                passed: j.judgement.passed(),
                seconds: j.seconds,
                summary: j.judgement.summary(),
                verdict: j.judgement.verdict(),
                error: match j.judgement {
                    Judgement::RulesNotLoaded { error, .. } => Some(error),
                    Judgement::Verdict(_) | Judgement::Skipped { .. } => None,
                },
                skipped: match j.judgement {
                    Judgement::Skipped { reason, .. } => Some(reason),
                    Judgement::Verdict(_) | Judgement::RulesNotLoaded { .. } => None,
                },
                messages: j.judgement.verdict().map(messages).unwrap_or_default(),
                observations: Counts {
                    packets_seen: j.packets_seen,
                    conntrack_entries: j.conntrack_entries,
                },
                coverage: j.coverage,
                daemons: j.daemons,
            })
            .collect(),
    }
}

/// `{"version": 1, "scenarios": [{file, passed, verdict: {flows, results, outcome, …}, …}]}`
pub fn json(all: &[Judged]) -> String {
    serde_json::to_string_pretty(&results(all)).expect("serializable") + "\n"
}

/// The JSON Schema of the results (`schema/results.schema.json`), from the types above.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Results>();
    schema.insert(
        "description".into(),
        "What `harness run --json` and `harness gate --json` write: each scenario's verdict as data, with its failures in words (or, from `gate`, why its rules could not be loaded, or why it was skipped).".into(),
    );
    schema.to_value()
}

fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Why this expectation fails its testcase, if it does: it broke and the scenario is not
/// declared broken, or the declaration names it and it did not break as declared.
fn testcase_failure(v: &Verdict, r: &ExpResult) -> Option<(String, String)> {
    let detail = || {
        let mut lines: Vec<String> = r.split.iter().map(words::split).collect();
        lines.extend(
            r.failures
                .iter()
                .map(|f| format!("flow {}: {}", f.flow, words::finding(v, f))),
        );
        lines.join("\n")
    };
    match &v.outcome {
        Outcome::Pass | Outcome::BrokenAsDeclared => None,
        Outcome::Fail => r.broke().then(|| {
            let msg = if r.broke_overall {
                "broke".to_string()
            } else {
                format!("broke for flows {}", ids(&r.failed_flows()))
            };
            (msg, detail())
        }),
        Outcome::NotAsDeclared(problems) => {
            let mine: Vec<_> = problems
                .iter()
                .filter(|p| p.expectation() == r.name)
                .cloned()
                .collect();
            (!mine.is_empty()).then(|| (words::problems(v, &mine), detail()))
        }
    }
}

/// Where and when a JUnit file is written: its testsuites' `hostname` and `timestamp`.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The machine the labs ran on (`localhost` when it cannot be read).
    pub hostname: String,
    /// When the last scenario finished, in seconds since the Unix epoch.
    pub finished: u64,
}

impl Stamp {
    /// This machine, now.
    pub fn now() -> Stamp {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let finished = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Stamp { hostname, finished }
    }
}

/// `2024-03-01T12:00:00`: UTC, no zone, as JUnit's `timestamp` wants it.
fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant, `civil_from_days`).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::BrokenAsDeclared => "broken as declared",
        Outcome::NotAsDeclared(_) => "not broken as declared",
    }
}

/// JUnit XML for this machine, now: see [`junit_at`].
pub fn junit(all: &[Judged]) -> String {
    junit_at(all, &Stamp::now())
}

/// JUnit XML: a testsuite per scenario, a testcase per expectation, valid under the Apache
/// Ant JUnit schema (`ci/junit.xsd`). A scenario whose rules could not be loaded has one
/// testcase, `rules load on ROUTER`, with an `<error>` holding the tool's or generator's
/// message. A scenario `harness gate` skipped has one testcase, `not run by harness gate`,
/// holding `<skipped message="WHY"/>`, and its suite says `skipped="1"` (other suites carry
/// no `skipped` attribute). Each suite carries the scenario's file as `package`
/// and in its properties with the router and the outcome. The scenarios ran one after the
/// other and the last finished at `stamp.finished`, so each suite's `timestamp` is counted
/// back from it. The expectations of a scenario are judged together on one run: each
/// testcase's `time` is an equal share of the scenario's, so the shares add up.
pub fn junit_at(all: &[Judged], stamp: &Stamp) -> String {
    let mut suites = String::new();
    let mut started = stamp.finished as f64 - all.iter().map(|j| j.seconds).sum::<f64>();
    for (id, j) in all.iter().enumerate() {
        let v = match j.judgement {
            Judgement::Verdict(v) => v,
            Judgement::RulesNotLoaded {
                scenario,
                router,
                error,
            } => {
                suites.push_str(&not_loaded_suite(
                    id, j, stamp, started, scenario, router, error,
                ));
                started += j.seconds;
                continue;
            }
            Judgement::Skipped { scenario, reason } => {
                suites.push_str(&skipped_suite(id, j, stamp, started, scenario, reason));
                started += j.seconds;
                continue;
            }
        };
        let classname = xml(&v.scenario);
        let case_time = j.seconds / v.results.len().max(1) as f64;
        let mut cases = String::new();
        let mut suite_failures = 0;
        for r in &v.results {
            let name = xml(&format!("{}: {} [flows {}]", r.name, r.check, r.selector));
            match testcase_failure(v, r) {
                None => cases.push_str(&format!(
                    "    <testcase classname=\"{classname}\" name=\"{name}\" time=\"{case_time:.3}\"/>\n"
                )),
                Some((msg, detail)) => {
                    suite_failures += 1;
                    cases.push_str(&format!(
                        "    <testcase classname=\"{classname}\" name=\"{name}\" time=\"{case_time:.3}\">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
                        xml(&msg),
                        xml(&detail)
                    ));
                }
            }
        }
        let properties = [
            ("file", j.file),
            ("router", v.router.as_str()),
            ("outcome", outcome_word(&v.outcome)),
        ]
        .iter()
        .map(|(k, val)| format!("      <property name=\"{k}\" value=\"{}\"/>\n", xml(val)))
        .collect::<String>();
        suites.push_str(&format!(
            "  <testsuite name=\"{classname}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"0\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\" package=\"{}\" id=\"{id}\">\n    <properties>\n{properties}    </properties>\n{cases}    <system-out/>\n    <system-err/>\n  </testsuite>\n",
            v.results.len(),
            j.seconds,
            utc(started.max(0.0) as u64),
            xml(&stamp.hostname),
            xml(j.file),
        ));
        started += j.seconds;
    }
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n{suites}</testsuites>\n")
}

/// The testsuite of a scenario whose rules could not be loaded: one testcase that errored,
/// its message the error's first line, its text the whole error.
fn not_loaded_suite(
    id: usize,
    j: &Judged,
    stamp: &Stamp,
    started: f64,
    scenario: &str,
    router: &str,
    error: &str,
) -> String {
    let classname = xml(scenario);
    let properties = [
        ("file", j.file),
        ("router", router),
        ("outcome", "rules not loaded"),
    ]
    .iter()
    .map(|(k, val)| format!("      <property name=\"{k}\" value=\"{}\"/>\n", xml(val)))
    .collect::<String>();
    format!(
        "  <testsuite name=\"{classname}\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"{secs:.3}\" timestamp=\"{}\" hostname=\"{}\" package=\"{}\" id=\"{id}\">\n    <properties>\n{properties}    </properties>\n    <testcase classname=\"{classname}\" name=\"{}\" time=\"{secs:.3}\">\n      <error message=\"{}\" type=\"rules\">{}</error>\n    </testcase>\n    <system-out/>\n    <system-err/>\n  </testsuite>\n",
        utc(started.max(0.0) as u64),
        xml(&stamp.hostname),
        xml(j.file),
        xml(&format!("rules load on {router}")),
        xml(error.lines().next().unwrap_or("")),
        xml(error),
        secs = j.seconds,
    )
}

/// The testsuite of a scenario `harness gate` skipped: one testcase, `<skipped>` with why.
fn skipped_suite(
    id: usize,
    j: &Judged,
    stamp: &Stamp,
    started: f64,
    scenario: &str,
    reason: &str,
) -> String {
    let classname = xml(scenario);
    let properties = [("file", j.file), ("outcome", "skipped")]
        .iter()
        .map(|(k, val)| format!("      <property name=\"{k}\" value=\"{}\"/>\n", xml(val)))
        .collect::<String>();
    format!(
        "  <testsuite name=\"{classname}\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\" time=\"{secs:.3}\" timestamp=\"{}\" hostname=\"{}\" package=\"{}\" id=\"{id}\">\n    <properties>\n{properties}    </properties>\n    <testcase classname=\"{classname}\" name=\"{SKIPPED_CASE}\" time=\"{secs:.3}\">\n      <skipped message=\"{}\"/>\n    </testcase>\n    <system-out/>\n    <system-err/>\n  </testsuite>\n",
        utc(started.max(0.0) as u64),
        xml(&stamp.hostname),
        xml(j.file),
        xml(reason),
        secs = j.seconds,
    )
}

/// The name of a skipped scenario's one testcase.
const SKIPPED_CASE: &str = "not run by harness gate";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Declared, Finding, FlowFailure};

    fn verdict(outcome: Outcome, failed: &[u32]) -> Verdict {
        Verdict {
            scenario: "dual-isp".into(),
            router: "jupiter".into(),
            flows: Vec::new(),
            results: vec![ExpResult {
                name: "alternates".into(),
                check: "sequence wan1, wan2, …".into(),
                selector: "web".into(),
                flows: vec![1, 2],
                failures: failed
                    .iter()
                    .map(|f| FlowFailure {
                        flow: *f,
                        finding: Finding::LeftVia {
                            expected: "<not> wan2".into(),
                            out: vec!["wan1 &".into()],
                        },
                        drops: Vec::new(),
                    })
                    .collect(),
                split: None,
                broke_overall: false,
                declared: Declared::No,
                vacant: None,
            }],
            declared: None,
            outcome,
            events: Vec::new(),
            timed: false,
        }
    }

    #[test]
    fn junit_has_a_testcase_per_expectation_and_escapes() {
        let v = verdict(Outcome::Fail, &[2]);
        let stamp = Stamp {
            hostname: "ci-1".into(),
            finished: 1_709_294_400, // 2024-03-01T12:00:00
        };
        let x = junit_at(
            &[Judged {
                file: "scenarios/dual-isp.yaml",
                judgement: Judgement::Verdict(&v),
                seconds: 0.5,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            }],
            &stamp,
        );
        assert!(
            x.contains("<testsuite name=\"dual-isp\" tests=\"1\" failures=\"1\" errors=\"0\" time=\"0.500\" timestamp=\"2024-03-01T11:59:59\" hostname=\"ci-1\" package=\"scenarios/dual-isp.yaml\" id=\"0\">"),
            "{x}"
        );
        assert!(
            x.contains("<property name=\"file\" value=\"scenarios/dual-isp.yaml\"/>"),
            "{x}"
        );
        assert!(
            x.contains("<testcase classname=\"dual-isp\" name=\"alternates: sequence wan1, wan2, … [flows web]\" time=\"0.500\">"),
            "{x}"
        );
        assert!(x.contains("<failure message=\"broke for flows 2\" type=\"expectation\">flow 2: left via wan1 &amp;, expected only &lt;not&gt; wan2</failure>"), "{x}");
        let ok = verdict(Outcome::BrokenAsDeclared, &[2]);
        let x = junit(&[Judged {
            file: "f",
            judgement: Judgement::Verdict(&ok),
            seconds: 0.1,
            packets_seen: 0,
            conntrack_entries: 0,
            coverage: None,
            daemons: &[],
        }]);
        assert!(
            x.contains("failures=\"0\"") && !x.contains("<failure"),
            "a breakage as declared passes: {x}"
        );
    }

    #[rstest::rstest]
    #[case::epoch(0, "1970-01-01T00:00:00")]
    #[case::leap_day(951_825_599, "2000-02-29T11:59:59")]
    #[case::new_year(1_704_067_199, "2023-12-31T23:59:59")]
    #[case::far(4_102_444_800, "2100-01-01T00:00:00")]
    fn utc_timestamps(#[case] unix: u64, #[case] want: &str) {
        assert_eq!(utc(unix), want);
    }

    #[test]
    fn junit_suites_count_their_start_back_from_the_end() {
        let (a, b) = (verdict(Outcome::Pass, &[]), verdict(Outcome::Pass, &[]));
        let judged = |v| Judged {
            file: "f",
            judgement: Judgement::Verdict(v),
            seconds: 30.0,
            packets_seen: 0,
            conntrack_entries: 0,
            coverage: None,
            daemons: &[],
        };
        let x = junit_at(
            &[judged(&a), judged(&b)],
            &Stamp {
                hostname: "h".into(),
                finished: 1_709_294_400,
            },
        );
        assert!(
            x.contains("timestamp=\"2024-03-01T11:59:00\" hostname=\"h\" package=\"f\" id=\"0\"")
                && x.contains(
                    "timestamp=\"2024-03-01T11:59:30\" hostname=\"h\" package=\"f\" id=\"1\""
                ),
            "{x}"
        );
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"));
    }

    #[test]
    fn json_carries_the_verdict() {
        let v = verdict(Outcome::Pass, &[]);
        let text = json(&[Judged {
            file: "f",
            judgement: Judgement::Verdict(&v),
            seconds: 0.1,
            packets_seen: 42,
            conntrack_entries: 3,
            coverage: None,
            daemons: &[],
        }]);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            parsed["scenarios"][0]["verdict"]["outcome"]["state"],
            "pass"
        );
        assert_eq!(parsed["scenarios"][0]["observations"]["packets_seen"], 42);
        assert_eq!(parsed["version"], VERSION);
    }

    /// Rules that did not load: a suite with one errored testcase carrying the tool's words,
    /// and a JSON scenario with no verdict, `passed: false` and the error.
    #[test]
    fn rules_not_loaded_are_an_error_without_a_verdict() {
        let error = "gen.rules:3: iptables-restore rejected this line on node `jupiter`:\n    -A FORWARD -j <NOPE>\n  iptables-restore said: Bad argument";
        let (ok, rejected) = (
            verdict(Outcome::Pass, &[]),
            Judgement::RulesNotLoaded {
                scenario: "dual-isp",
                router: "jupiter",
                error,
            },
        );
        let all = [
            Judged {
                file: "a.yaml",
                judgement: rejected,
                seconds: 0.2,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
            Judged {
                file: "b.yaml",
                judgement: Judgement::Verdict(&ok),
                seconds: 0.3,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
        ];
        let x = junit_at(
            &all,
            &Stamp {
                hostname: "h".into(),
                finished: 1_709_294_400,
            },
        );
        assert!(
            x.contains("<testsuite name=\"dual-isp\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"0.200\" timestamp=\"2024-03-01T11:59:59\" hostname=\"h\" package=\"a.yaml\" id=\"0\">"),
            "{x}"
        );
        assert!(
            x.contains("<testcase classname=\"dual-isp\" name=\"rules load on jupiter\" time=\"0.200\">\n      <error message=\"gen.rules:3: iptables-restore rejected this line on node `jupiter`:\" type=\"rules\">gen.rules:3: iptables-restore rejected this line on node `jupiter`:\n    -A FORWARD -j &lt;NOPE&gt;\n  iptables-restore said: Bad argument</error>"),
            "{x}"
        );
        assert!(
            x.contains("<property name=\"outcome\" value=\"rules not loaded\"/>"),
            "{x}"
        );
        assert!(x.contains("package=\"b.yaml\" id=\"1\""), "{x}");
        let parsed: serde_json::Value = serde_json::from_str(&json(&all)).expect("valid JSON");
        let s = &parsed["scenarios"][0];
        assert_eq!(s["passed"], false);
        assert!(s["verdict"].is_null(), "{s}");
        assert_eq!(s["error"], error);
        assert_eq!(
            s["summary"],
            "FAIL dual-isp: the rules of `jupiter` did not load, so no flow ran: gen.rules:3: \
             iptables-restore rejected this line on node `jupiter`:"
        );
        let s = &parsed["scenarios"][1];
        assert_eq!(s["passed"], true);
        assert!(
            s.get("error").is_none(),
            "absent when the rules loaded: {s}"
        );
    }

    /// A scenario the gate skipped: a suite of one testcase holding `<skipped>` with why, not
    /// a failure nor an error; a JSON scenario with no verdict, `passed: false` and `skipped`.
    #[test]
    fn a_skipped_scenario_is_a_suite_with_a_skipped_testcase() {
        let reason = "declared broken (it tests the harness, not the rules)";
        let ok = verdict(Outcome::Pass, &[]);
        let all = [
            Judged {
                file: "b.yaml",
                judgement: Judgement::Verdict(&ok),
                seconds: 0.3,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
            Judged {
                file: "scenarios/dual-isp-no-restore.yaml",
                judgement: Judgement::Skipped {
                    scenario: "dual-isp-no-restore",
                    reason,
                },
                seconds: 0.0,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
        ];
        let x = junit_at(
            &all,
            &Stamp {
                hostname: "h".into(),
                finished: 1_709_294_400,
            },
        );
        assert!(
            x.contains("<testsuite name=\"dual-isp-no-restore\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\" time=\"0.000\" timestamp=\"2024-03-01T12:00:00\" hostname=\"h\" package=\"scenarios/dual-isp-no-restore.yaml\" id=\"1\">"),
            "{x}"
        );
        assert!(
            x.contains("    <testcase classname=\"dual-isp-no-restore\" name=\"not run by harness gate\" time=\"0.000\">\n      <skipped message=\"declared broken (it tests the harness, not the rules)\"/>\n    </testcase>\n"),
            "{x}"
        );
        assert!(
            x.contains("<property name=\"outcome\" value=\"skipped\"/>"),
            "{x}"
        );
        assert_eq!(x.matches("skipped=").count(), 1, "only its suite: {x}");
        assert!(!x.contains("<failure") && !x.contains("<error"), "{x}");
        let parsed: serde_json::Value = serde_json::from_str(&json(&all)).expect("valid JSON");
        let s = &parsed["scenarios"][1];
        assert_eq!(s["passed"], false);
        assert_eq!(s["skipped"], reason);
        assert!(s["verdict"].is_null() && s.get("error").is_none(), "{s}");
        assert_eq!(s["messages"], serde_json::json!([]));
        assert_eq!(
            s["summary"],
            "skip dual-isp-no-restore: declared broken (it tests the harness, not the rules)"
        );
        let s = &parsed["scenarios"][0];
        assert!(s.get("skipped").is_none(), "absent when it ran: {s}");
    }

    /// `HARNESS_UPDATE_SCHEMA=1 cargo test -p harness-core --lib schema` rewrites it.
    #[test]
    fn committed_results_schema_is_generated_from_the_types() {
        let path = crate::model::repo_path("schema/results.schema.json");
        let want = crate::model::schema::text(&schema());
        if std::env::var_os("HARNESS_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &want).expect("writing the schema");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} differs from the schema of the types in harness-core/src/report/results.rs; \
             regenerate it with `HARNESS_UPDATE_SCHEMA=1 cargo test -p harness-core --lib schema` and commit it",
            path.display()
        );
    }
}

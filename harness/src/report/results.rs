//! Result files for dashboards: JSON (the whole verdict) and JUnit XML (one testcase per
//! expectation). Pure.

use serde_json::json;

use crate::observe::counters::RuleHit;
use crate::verdict::{ids, ExpResult, Outcome, Verdict};

/// What one judged scenario contributes to the result files.
pub struct Judged<'a> {
    pub file: &'a str,
    pub verdict: &'a Verdict,
    pub seconds: f64,
    pub packets_seen: usize,
    pub conntrack_entries: usize,
    pub coverage: Option<&'a [RuleHit]>,
}

/// `{"scenarios": [{file, verdict: {flows, results, outcome, …}, packets_seen, …}]}`
pub fn json(all: &[Judged]) -> String {
    let scenarios: Vec<serde_json::Value> = all
        .iter()
        .map(|j| {
            json!({
                "file": j.file,
                "passed": j.verdict.outcome.ok(),
                "seconds": j.seconds,
                "verdict": j.verdict,
                "observations": { "packets_seen": j.packets_seen, "conntrack_entries": j.conntrack_entries },
                "coverage": j.coverage,
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "scenarios": scenarios })).expect("serializable") + "\n"
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
        let mut lines: Vec<String> = r.observed.iter().cloned().collect();
        lines.extend(
            r.failures
                .iter()
                .map(|f| format!("flow {}: {}", f.flow, f.msg)),
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
            let mine: Vec<&String> = problems
                .iter()
                .filter(|p| p.starts_with(&format!("`{}`", r.name)))
                .collect();
            (!mine.is_empty()).then(|| {
                (
                    mine.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    detail(),
                )
            })
        }
    }
}

/// JUnit XML: a testsuite per scenario, a testcase per expectation.
pub fn junit(all: &[Judged]) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures) = (0, 0);
    for j in all {
        let v = j.verdict;
        let mut cases = String::new();
        let mut suite_failures = 0;
        for r in &v.results {
            let name = xml(&format!("{}: {} [flows {}]", r.name, r.check, r.selector));
            match testcase_failure(v, r) {
                None => cases.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{name}\"/>\n",
                    xml(&v.scenario)
                )),
                Some((msg, detail)) => {
                    suite_failures += 1;
                    cases.push_str(&format!(
                        "    <testcase classname=\"{}\" name=\"{name}\">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
                        xml(&v.scenario),
                        xml(&msg),
                        xml(&detail)
                    ));
                }
            }
        }
        tests += v.results.len();
        failures += suite_failures;
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"0\" time=\"{:.3}\" file=\"{}\">\n{cases}  </testsuite>\n",
            xml(&v.scenario),
            v.results.len(),
            j.seconds,
            xml(j.file)
        ));
    }
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"harness\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n{suites}</testsuites>\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::FlowFailure;

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
                        msg: "left via wan1 & <not> wan2".into(),
                    })
                    .collect(),
                observed: None,
                broke_overall: false,
            }],
            declared: None,
            outcome,
        }
    }

    #[test]
    fn junit_has_a_testcase_per_expectation_and_escapes() {
        let v = verdict(Outcome::Fail, &[2]);
        let x = junit(&[Judged {
            file: "scenarios/dual-isp.yaml",
            verdict: &v,
            seconds: 0.5,
            packets_seen: 0,
            conntrack_entries: 0,
            coverage: None,
        }]);
        assert!(
            x.contains("<testsuites name=\"harness\" tests=\"1\" failures=\"1\""),
            "{x}"
        );
        assert!(x.contains("<failure message=\"broke for flows 2\" type=\"expectation\">flow 2: left via wan1 &amp; &lt;not&gt; wan2</failure>"), "{x}");
        let ok = verdict(Outcome::BrokenAsDeclared, &[2]);
        let x = junit(&[Judged {
            file: "f",
            verdict: &ok,
            seconds: 0.1,
            packets_seen: 0,
            conntrack_entries: 0,
            coverage: None,
        }]);
        assert!(
            x.contains("failures=\"0\"") && !x.contains("<failure"),
            "a breakage as declared passes: {x}"
        );
    }

    #[test]
    fn json_carries_the_verdict() {
        let v = verdict(Outcome::Pass, &[]);
        let text = json(&[Judged {
            file: "f",
            verdict: &v,
            seconds: 0.1,
            packets_seen: 42,
            conntrack_entries: 3,
            coverage: None,
        }]);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            parsed["scenarios"][0]["verdict"]["outcome"]["state"],
            "pass"
        );
        assert_eq!(parsed["scenarios"][0]["observations"]["packets_seen"], 42);
    }
}

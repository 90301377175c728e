//! `harness run --junit FILE --json FILE` writes JUnit XML that passes a JUnit XML schema
//! check, `xmllint --noout --schema ci/junit.xsd FILE` (the Apache Ant JUnit schema, see its
//! header), and JSON that passes the results schema, `schema/results.schema.json`, for a
//! scenario that passes (with `--coverage`), one declared broken that breaks as declared, one
//! that breaks for real (seed 002 without its `--restore-mark` line) and a twin declared broken
//! whose expectations hold. `harness gate` writes the same files: over three scenarios where a
//! tool rejects one's rules, one is declared broken (skipped) and the third's rules pass, an
//! `<error>` testcase, a suite of one `<skipped>` testcase, a passing suite, and JSON with no
//! verdict for the first two (`error`, `skipped`); the gate goes on and exits 1. Where namespaces cannot
//! be created, or xmllint is missing, the trials are ignored, not passed (under `CI=true`
//! they fail: tests/common/mod.rs).

mod common;

use std::path::Path;
use std::process::{Command, ExitCode};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed};

/// Runs the harness binary in the repository root: its exit code and its output.
fn harness(args: &[&str]) -> Result<(i32, String), Failed> {
    Ok(common::harness_said(args))
}

/// `xmllint --noout --schema ci/junit.xsd FILE`; the error names the file and quotes it.
fn validate(file: &Path) -> Result<String, Failed> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading `{}`: {e}", file.display()))?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo_path("ci/junit.xsd"))
        .arg(file)
        .output()
        .map_err(|e| {
            format!("running xmllint: {e}; install it (`apt-get install libxml2-utils`)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "`{}` does not pass the JUnit schema ci/junit.xsd:\n{}\n{text}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(text)
}

/// The JSON file, checked against `schema/results.schema.json`; the error names each violation.
fn validate_json(file: &Path) -> Result<serde_json::Value, Failed> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("reading `{}`: {e}", p.display()))
    };
    let schema: serde_json::Value =
        serde_json::from_str(&read(&repo_path("schema/results.schema.json"))?)
            .map_err(|e| format!("schema/results.schema.json: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("schema/results.schema.json is not a schema: {e}"))?;
    let text = read(file)?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}\n{text}", file.display()))?;
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "`{}` does not pass schema/results.schema.json:\n{}",
            file.display(),
            errors.join("\n")
        )
        .into());
    }
    Ok(json)
}

/// A bundle for `--rules jupiter=FILE`: seed 002's iptables file (without the lines `drop`
/// says to leave out) and its `ip -batch` file.
fn seed_002_bundle(dir: &Path, drop: &str) -> Result<String, Failed> {
    let read =
        |p: &str| std::fs::read_to_string(repo_path(p)).map_err(|e| format!("reading `{p}`: {e}"));
    let iptables: String = read("scenarios/dual-isp/jupiter.iptables")?
        .lines()
        .filter(|l| drop.is_empty() || !l.contains(drop))
        .map(|l| format!("{l}\n"))
        .collect();
    let bundle = format!(
        "### iptables\n{iptables}### ip\n{}",
        read("scenarios/dual-isp/jupiter.ip")?
    );
    let path = dir.join(if drop.is_empty() {
        "seed002.rules"
    } else {
        "seed002-cut.rules"
    });
    std::fs::write(&path, bundle).map_err(|e| format!("writing `{}`: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// One run of the harness with `--junit`, and what its file must hold.
struct Case {
    name: &'static str,
    /// `--rules jupiter=` seed 002's rules less the lines holding this text (`""`: all of
    /// them); `None`: the scenarios' own rules.
    seed_002_without: Option<&'static str>,
    scenarios: &'static [&'static str],
    exit: i32,
    suites: usize,
    failures: usize,
    /// Extra options (`--coverage`).
    with: &'static [&'static str],
    /// What the JSON must say: each scenario's outcome state and how many messages of each
    /// kind (flow, split, declaration) it carries.
    outcomes: &'static [(&'static str, [usize; 3])],
}

/// Runs the case, checks the exit code, validates the file and counts its testsuites and
/// failed testcases.
fn check(c: &Case) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let xml = dir.path().join("result.junit.xml");
    let json = dir.path().join("result.json");
    let mut args = vec![
        "run".to_string(),
        "--junit".to_string(),
        xml.display().to_string(),
        "--json".to_string(),
        json.display().to_string(),
    ];
    args.extend(c.with.iter().map(|s| s.to_string()));
    if let Some(drop) = c.seed_002_without {
        args.push("--rules".into());
        args.push(format!("jupiter={}", seed_002_bundle(dir.path(), drop)?));
    }
    args.extend(c.scenarios.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = harness(&args)?;
    if code != c.exit {
        return Err(format!(
            "`harness {}` exited {code}, not {}:\n{out}",
            args.join(" "),
            c.exit
        )
        .into());
    }
    let text = validate(&xml)?;
    let found = (
        text.matches("<testsuite ").count(),
        text.matches("<failure ").count(),
    );
    if found != (c.suites, c.failures) {
        return Err(format!(
            "expected {} testsuites and {} failures, found {} and {}:\n{text}",
            c.suites, c.failures, found.0, found.1
        )
        .into());
    }
    let doc = validate_json(&json)?;
    let scenarios = doc["scenarios"].as_array().cloned().unwrap_or_default();
    let found: Vec<(String, [usize; 3])> = scenarios
        .iter()
        .map(|s| {
            let count = |kind: &str| {
                s["messages"]
                    .as_array()
                    .map_or(0, |m| m.iter().filter(|m| m["kind"] == kind).count())
            };
            (
                s["verdict"]["outcome"]["state"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                [count("flow"), count("split"), count("declaration")],
            )
        })
        .collect();
    let want: Vec<(String, [usize; 3])> = c
        .outcomes
        .iter()
        .map(|(o, n)| (o.to_string(), *n))
        .collect();
    if doc["version"] != 1 || found != want {
        return Err(format!(
            "the JSON says {found:?} (version {}), not {want:?}",
            doc["version"]
        )
        .into());
    }
    // Every flow carries its packets hop by hop, as the HTML draws them.
    for s in &scenarios {
        for f in s["verdict"]["flows"].as_array().into_iter().flatten() {
            let hops = f["trace"].as_array().map_or(0, |t| {
                t.iter()
                    .filter(|p| p["hops"].as_array().is_some_and(|h| !h.is_empty()))
                    .count()
            });
            if hops == 0 {
                return Err(
                    format!("flow {} has no packets hop by hop in the JSON", f["id"]).into(),
                );
            }
        }
    }
    if c.with.contains(&"--coverage")
        && !scenarios
            .iter()
            .all(|s| s["coverage"].as_array().is_some_and(|h| !h.is_empty()))
    {
        return Err("--coverage: the JSON lists no rule hits".into());
    }
    Ok(())
}

const CASES: [Case; 3] = [
    Case {
        name: "a pass and a breakage as declared",
        seed_002_without: None,
        scenarios: &[
            "scenarios/dual-isp.yaml",
            "scenarios/dual-isp-no-restore.yaml",
        ],
        exit: 0,
        suites: 2,
        failures: 0,
        with: &["--coverage"],
        // The twin's breakage as declared: one_uplink, snat, completes for flows 2, 4, 6, 8.
        outcomes: &[("pass", [0, 0, 0]), ("broken_as_declared", [12, 0, 0])],
    },
    // Wan2 connections' later packets leave via wan1 and die at ISP1: `one_uplink`, `snat`
    // and `completes` break for flows 2, 4, 6, 8.
    Case {
        name: "seed 002 without --restore-mark fails",
        seed_002_without: Some("--restore-mark"),
        scenarios: &["scenarios/dual-isp.yaml"],
        exit: 1,
        suites: 1,
        failures: 3,
        with: &[],
        outcomes: &[("fail", [12, 0, 0])],
    },
    // The twin declares those three broken; on the correct rules each holds, and fails.
    Case {
        name: "a twin that does not break as declared fails",
        seed_002_without: Some(""),
        scenarios: &["scenarios/dual-isp-no-restore.yaml"],
        exit: 1,
        suites: 1,
        failures: 3,
        with: &[],
        outcomes: &[("not_as_declared", [0, 0, 3])],
    },
];

/// `--json -`: the JSON on stdout with nothing else there, passing the schema; what the run
/// says for people (the table, the summary) on stderr.
fn json_to_stdout() -> Result<(), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--json", "-", "scenarios/dual-isp.yaml"])
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if out.status.code() != Some(0) || !stderr.contains("PASS dual-isp") {
        return Err(format!("exit {:?}; stderr:\n{stderr}", out.status.code()).into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("stdout.json");
    std::fs::write(&file, stdout.as_bytes()).map_err(|e| e.to_string())?;
    let doc = validate_json(&file)?;
    if doc["scenarios"][0]["passed"] != true {
        return Err(format!("stdout is not the run's JSON:\n{stdout}").into());
    }
    Ok(())
}

/// A generator for `--rules jupiter=`: seed 002's (`ci/examples/gen-seed002`), but for a
/// topology with a third uplink it adds a line iptables-restore rejects (a jump to a chain
/// that does not exist).
fn rejected_for_three_uplinks(dir: &Path) -> Result<String, Failed> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("gen-bad3");
    let script = format!(
        "#!/bin/sh\n\
         facts=$(cat)\n\
         out=$(printf '%s\\n' \"$facts\" | {}) || exit 1\n\
         case \"$facts\" in\n\
         *wan3*) printf '%s\\n' \"$out\" | sed '0,/^COMMIT$/s//-A FORWARD -j NOSUCHTARGET\\nCOMMIT/' ;;\n\
         *) printf '%s\\n' \"$out\" ;;\n\
         esac\n",
        repo_path("ci/examples/gen-seed002").display()
    );
    std::fs::write(&path, script).map_err(|e| format!("writing `{}`: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(path.display().to_string())
}

/// `harness gate` over three scenarios, the first with rules iptables-restore rejects, the
/// second declared broken (skipped: it tests the harness), the third with rules that pass: it
/// goes on past the first, says `FAIL` with the tool's words and `skip` with why, exits 1, ends
/// with the tally, and writes all three to every result file, the skipped one as skipped.
fn gate_rejected_then_passing() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (xml, json, html) = (
        dir.path().join("gate.junit.xml"),
        dir.path().join("gate.json"),
        dir.path().join("gate.html"),
    );
    let gen = rejected_for_three_uplinks(dir.path())?;
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("gate")
        .arg("--rules")
        .arg(format!("jupiter={gen}"))
        .arg("--junit")
        .arg(&xml)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .args([
            "scenarios/nth/three-uplinks.yaml",
            "scenarios/dual-isp-no-restore.yaml",
            "scenarios/dual-isp.yaml",
        ])
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let said = || {
        format!(
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code()
        )
    };
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1: {}", said()).into());
    }
    if stdout.lines().last() != Some("gate: 1 passed, 1 failed, 1 skipped") {
        return Err(format!("the tally is not the last line on stdout: {}", said()).into());
    }
    if !stdout.contains(
        "FAIL scenarios/nth/three-uplinks.yaml: the rules did not load: output of generator",
    ) || !stdout.contains("-A FORWARD -j NOSUCHTARGET")
        || !stdout.contains("PASS scenarios/dual-isp.yaml")
        || !stdout.contains(&format!(
            "skip scenarios/dual-isp-no-restore.yaml: {DECLARED}"
        ))
    {
        return Err(format!("the gate's lines: {}", said()).into());
    }
    let text = validate(&xml)?;
    let found = (
        text.matches("<testsuite ").count(),
        text.matches("<error message=").count(),
        text.matches("<failure ").count(),
        text.matches("<skipped ").count(),
    );
    if found != (3, 1, 0, 1)
        || !text.contains("<testcase classname=\"three-uplinks\" name=\"rules load on jupiter\"")
        || !text.contains("type=\"rules\">output of generator")
        || !text.contains("<testsuite name=\"dual-isp-no-restore\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\"")
        || !text.contains(&format!("<skipped message=\"{DECLARED}\"/>"))
        || !text.contains("<testsuite name=\"dual-isp\" tests=\"6\" failures=\"0\" errors=\"0\"")
    {
        return Err(format!(
            "expected 3 testsuites, 1 error (three-uplinks), 0 failures, 1 skipped \
             (dual-isp-no-restore), found {found:?}:\n{text}"
        )
        .into());
    }
    let doc = validate_json(&json)?;
    let s = &doc["scenarios"];
    let error = s[0]["error"].as_str().unwrap_or("");
    if !(s[0]["passed"] == false
        && s[0]["verdict"].is_null()
        && error.contains("iptables-restore rejected this line on node `jupiter`")
        && s[1]["passed"] == false
        && s[1]["verdict"].is_null()
        && s[1]["skipped"] == DECLARED
        && s[1]["file"] == "scenarios/dual-isp-no-restore.yaml"
        && s[2]["passed"] == true
        && s[2].get("skipped").is_none()
        && s[2]["verdict"]["outcome"]["state"] == "pass")
    {
        return Err(format!("the JSON: {:#}", doc["scenarios"]).into());
    }
    let page = std::fs::read_to_string(&html).map_err(|e| e.to_string())?;
    if !page.contains("FAIL: rules not loaded</span> three-uplinks</h2>")
        || !page.contains("<h1>harness: 3 scenarios, 1 FAILED, 1 skipped</h1>")
        || !page.contains("<span class=\"badge skipped\">skipped</span> dual-isp-no-restore</h2>")
    {
        return Err(
            "the HTML page does not show the rules that did not load, or the skipped scenario"
                .into(),
        );
    }
    Ok(())
}

/// Why the gate skips a scenario declared broken, as its `skip` line and the files say it.
const DECLARED: &str = "declared broken (it tests the harness, not the rules)";

/// `gate --json -`: the JSON alone on stdout, passing the schema; the gate's lines and the
/// tally, last, on stderr.
fn gate_json_to_stdout() -> Result<(), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "gate",
            "--json",
            "-",
            "--rules",
            "jupiter=ci/examples/gen-seed002",
            "scenarios/dual-isp.yaml",
        ])
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if out.status.code() != Some(0)
        || stderr.lines().last() != Some("gate: 1 passed, 0 failed, 0 skipped")
    {
        return Err(format!("exit {:?}; stderr:\n{stderr}", out.status.code()).into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("stdout.json");
    std::fs::write(&file, stdout.as_bytes()).map_err(|e| e.to_string())?;
    let doc = validate_json(&file)?;
    if doc["scenarios"][0]["passed"] != true {
        return Err(format!("stdout is not the gate's JSON:\n{stdout}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    // Not root: run as root of a user namespace of our own, as the scenario tests do.
    let needs = common::Needs::lab().and(&common::Needs::tool("xmllint", "libxml2-utils"));
    let trials = CASES
        .iter()
        .map(|c| needs.trial(format!("junit and json: {}", c.name), move || check(c)))
        .chain([
            common::Needs::lab().trial("json to stdout: nothing else there", json_to_stdout),
            needs.trial(
                "gate: rules a tool rejects fail their scenario, the gate goes on; a skipped one is in the files",
                gate_rejected_then_passing,
            ),
            common::Needs::lab().trial(
                "gate: json to stdout, the tally on stderr",
                gate_json_to_stdout,
            ),
        ])
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

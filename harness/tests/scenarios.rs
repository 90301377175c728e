//! One test per scenario file: `cargo test --test scenarios -- dual-isp` runs one.
//!
//! Each scenario runs on the real kernel in its own lab; its outcome must be a pass (or, for
//! a scenario declared broken, the declared breakage), and its deterministic result table
//! must match the snapshot in reports/snapshots/ (`cargo insta review` to accept a change).
//! Run as an ordinary user, the tests run inside a user namespace of their own, as the
//! `harness` binary does. Where namespaces cannot be created at all they are ignored, not
//! passed; under `CI=true` (or `HARNESS_REQUIRE_LAB=1`) they fail (tests/common/mod.rs).

mod common;

use std::path::{Path, PathBuf};

use harness::error::chain;
use harness::install::Backend;
use harness::model::repo_path;
use harness::model::{RuleKind, RuleSource};
use harness::run::Options;
use harness::verdict::Outcome;
use harness::{report, run};
use libtest_mimic::{Arguments, Failed};

fn scenario_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            scenario_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// `dual-isp` for scenarios/dual-isp.yaml, `nat/hairpin` for scenarios/nat/hairpin.yaml.
fn rel_name(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .with_extension("")
        .to_string_lossy()
        .into_owned()
}

/// Where a failing scenario's result files go: `$HARNESS_RESULTS/NAME/` when set (a CI job
/// can upload the folder), else `target/tmp/harness-results/NAME/`.
fn results_dir(name: &str) -> PathBuf {
    std::env::var_os("HARNESS_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("harness-results"))
        .join(name.replace(['/', ' ', ':'], "_"))
}

/// Runs a scenario; when it does not pass, writes its result files (JSON, JUnit, the HTML
/// page, one pcap per link) and fails naming the folder they are in.
fn run_judged(name: &str, path: &Path, backend: Backend) -> Result<run::RunResult, Failed> {
    let plan = harness::model::load(path).map_err(|e| e.to_string())?;
    let dir = results_dir(&match backend {
        Backend::Legacy => format!("legacy: {name}"),
        _ => name.to_string(),
    });
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("clearing {}: {e}", dir.display()).into())
        }
        _ => {}
    }
    let r = run::run_with(
        &plan,
        Options {
            backend,
            keep_frames: true,
            traces: true,
            ..Default::default()
        },
    )
    .map_err(|e| chain(&e))?;
    if !r.verdict.outcome.ok() {
        let written = report::files::write(&report::files::Outputs::all_in(&dir), &[(&plan, &r)])
            .map_or_else(
                |e| format!("could not write the result files: {e}"),
                |()| {
                    format!(
                        "result files (result.html, result.json, result.junit.xml, a pcap per link): {}",
                        dir.display()
                    )
                },
            );
        return Err(format!("{}\n{written}", report::full(&r.verdict)).into());
    }
    Ok(r)
}

fn run_one(name: &str, path: &Path, backend: Backend) -> Result<(), Failed> {
    let r = run_judged(name, path, backend)?;
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(repo_path("reports/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_input_file(path);
    s.set_omit_expression(true);
    let snap = name.replace('/', "__");
    s.bind(|| insta::assert_snapshot!(snap, report::snapshot(&r.verdict)));
    Ok(())
}

/// Seed 002's rules with one line cut: every line that restores the mark, or jumps to the
/// chain that does. Each must make the wan2 flows stray, and the harness must say so.
fn restore_cuts() -> Vec<(usize, String)> {
    let rules = std::fs::read_to_string(repo_path("scenarios/dual-isp/jupiter.iptables"))
        .expect("seed 002 rules");
    rules
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.starts_with("-A") && (l.contains("--restore-mark") || l.contains("-j RESTOREMARK"))
        })
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// Runs `scenario` (relative to scenarios/) with its iptables file replaced by `rules`.
fn run_with_rules(
    scenario: &str,
    iptables_rel: &str,
    rules: &str,
) -> Result<run::RunResult, Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rules_file = dir.path().join("jupiter.iptables");
    std::fs::write(&rules_file, rules).map_err(|e| e.to_string())?;
    let abs = |rel: &str| repo_path(rel).display().to_string();
    let text = std::fs::read_to_string(repo_path(&format!("scenarios/{scenario}")))
        .map_err(|e| e.to_string())?
        .replace(
            "../topologies/jupiter.yaml",
            &abs("topologies/jupiter.yaml"),
        )
        .replace(iptables_rel, &rules_file.display().to_string())
        .replace("dual-isp/jupiter.ip", &abs("scenarios/dual-isp/jupiter.ip"));
    let file = dir.path().join(scenario);
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    run::run_file(&file).map_err(|e| chain(&e).into())
}

fn seed_002_rules() -> Result<String, Failed> {
    std::fs::read_to_string(repo_path("scenarios/dual-isp/jupiter.iptables"))
        .map_err(|e| e.to_string().into())
}

fn run_cut(line: usize) -> Result<(), Failed> {
    let rules = seed_002_rules()?;
    let cut: Vec<&str> = rules
        .lines()
        .enumerate()
        .filter(|(i, _)| i + 1 != line)
        .map(|(_, l)| l)
        .collect();
    let r = run_with_rules(
        "dual-isp.yaml",
        "dual-isp/jupiter.iptables",
        &(cut.join("\n") + "\n"),
    )?;
    let one = r
        .verdict
        .results
        .iter()
        .find(|e| e.name == "one_uplink")
        .expect("dual-isp has one_uplink");
    if r.verdict.outcome.ok() || one.failed_flows() != [2, 4, 6, 8] {
        return Err(format!(
            "cutting line {line} should break `one_uplink` for flows 2, 4, 6, 8:\n{}",
            report::full(&r.verdict)
        )
        .into());
    }
    Ok(())
}

/// The broken twin's expectations, run on the correct rules: declared broken but holding,
/// it must be reported (exit code 1), not passed.
fn twin_on_correct_rules() -> Result<(), Failed> {
    let r = run_with_rules(
        "dual-isp-no-restore.yaml",
        "dual-isp-no-restore/jupiter.iptables",
        &seed_002_rules()?,
    )?;
    match &r.verdict.outcome {
        Outcome::NotAsDeclared(problems)
            if r.verdict.outcome.exit_code() == 1
                && problems
                    .iter()
                    .all(|p| matches!(p, harness::verdict::Problem::Held { .. })) =>
        {
            Ok(())
        }
        other => Err(format!(
            "expected \"declared to break, but it held\", got {other:?}:\n{}",
            report::full(&r.verdict)
        )
        .into()),
    }
}

/// How long a scenario's run is likely to take, to order the trials: one with events during
/// traffic (its run lasts as long as its timeline) before any other, then by its flows.
fn weight(path: &Path) -> (bool, usize) {
    harness::model::load(path).map_or((false, 0), |plan| {
        let timed = plan
            .events
            .iter()
            .any(|e| !matches!(e.when, harness::model::When::Before(_)));
        (timed, plan.flows.len())
    })
}

/// Scenarios whose rules include iptables or ip6tables files and no nft ones: they must give
/// the same verdict whichever iptables implementation loads them.
fn iptables_only(path: &Path) -> bool {
    let Ok(plan) = harness::model::load(path) else {
        return false;
    };
    let kinds: Vec<RuleKind> = plan
        .rules
        .iter()
        .flat_map(|r| r.sources.iter())
        .filter_map(|s| match s {
            RuleSource::File { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    (kinds.contains(&RuleKind::Iptables) || kinds.contains(&RuleKind::Ip6tables))
        && !kinds.contains(&RuleKind::Nft)
}

/// Runs the harness binary; its exit code and stdout.
fn harness_cmd(args: &[&str]) -> Result<(i32, String), Failed> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| e.to_string())?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

/// The example generator passes the gate; the same generator with its bug fails it, naming
/// the flow and the link.
fn gate_examples() -> Result<(), Failed> {
    let scenarios = [
        "scenarios/dual-isp.yaml",
        "scenarios/nth/three-uplinks.yaml",
    ];
    let (code, out) = harness_cmd(
        &[
            &["gate", "--rules", "jupiter=ci/examples/gen-seed002"][..],
            &scenarios[..],
        ]
        .concat(),
    )?;
    if code != 0 || !out.contains("gate: 2 passed, 0 failed") {
        return Err(format!("the good generator should pass (exit {code}):\n{out}").into());
    }
    let (code, out) = harness_cmd(
        &[
            &["gate", "--rules", "jupiter=ci/examples/gen-seed002-buggy"][..],
            &scenarios[..],
        ]
        .concat(),
    )?;
    if code != 1
        || !out.contains(
            "FAIL scenarios/dual-isp.yaml: `alternates` flow 1: left via wan2, expected wan1",
        )
    {
        return Err(format!(
            "the buggy generator should fail naming flow 1 and wan2 (exit {code}):\n{out}"
        )
        .into());
    }
    Ok(())
}

/// Seed 002's rules against the same without SNAT on wan2: exactly the wan2 flows change.
fn diff_snat() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let read = |p: &str| std::fs::read_to_string(repo_path(p)).map_err(|e| e.to_string());
    let bundle = format!(
        "### iptables\n{}### ip\n{}",
        read("scenarios/dual-isp/jupiter.iptables")?,
        read("scenarios/dual-isp/jupiter.ip")?
    );
    let cut: String = bundle
        .lines()
        .filter(|l| !l.contains("SNAT2"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (a, b) = (
        dir.path().join("seed002.rules"),
        dir.path().join("no-snat-wan2.rules"),
    );
    std::fs::write(&a, bundle).map_err(|e| e.to_string())?;
    std::fs::write(&b, cut).map_err(|e| e.to_string())?;
    let (code, out) = harness_cmd(&[
        "diff",
        "--rules",
        &format!("jupiter={}", a.display()),
        "--rules",
        &format!("jupiter={}", b.display()),
        "scenarios/dual-isp.yaml",
    ])?;
    let changed: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("flow "))
        .collect();
    let ids: Vec<&str> = changed
        .iter()
        .filter_map(|l| l.trim_start().split(':').next())
        .collect();
    if code != 1
        || ids != ["flow 2", "flow 4", "flow 6", "flow 8"]
        || !changed
            .iter()
            .all(|l| l.contains("source 10.37.2.253 → 192.168.157.3"))
    {
        return Err(
            format!("the diff should name exactly the wan2 flows (exit {code}):\n{out}").into(),
        );
    }
    Ok(())
}

/// Coverage maps counters back to lines: seed 001's rule set never sees local traffic in
/// pbr/ipset-port, so its INPUT and OUTPUT jumps are the rules nothing hit.
fn coverage_idle_rules() -> Result<(), Failed> {
    let plan = harness::model::load(&repo_path("scenarios/pbr/ipset-port.yaml"))
        .map_err(|e| e.to_string())?;
    let r = run::run_with(
        &plan,
        Options {
            coverage: true,
            ..Default::default()
        },
    )
    .map_err(|e| chain(&e))?;
    let hits = r.coverage.ok_or("no coverage")?;
    let idle: Vec<String> = hits
        .iter()
        .filter(|h| h.packets == Some(0))
        .map(|h| h.rule.clone())
        .collect();
    let hit = hits
        .iter()
        .filter(|h| h.packets.is_some_and(|p| p > 0))
        .count();
    if idle
        != [
            "-A INPUT -j w-INPUT",
            "-A OUTPUT -j w-OUTPUT",
            "-A w-OUTPUT -j w-set-mark",
        ]
        || hit != 16
    {
        return Err(format!(
            "expected the INPUT/OUTPUT jumps idle and 16 rules hit, got idle {idle:?}, {hit} hit"
        )
        .into());
    }
    Ok(())
}

/// A generator that fails, or prints what a tool rejects, is bad input: exit 2 with its own
/// message, or the rejected line quoted with where it came from.
fn failing_generators() -> Result<(), Failed> {
    let (code, out) = harness_cmd(&[
        "run",
        "--rules",
        "jupiter=echo 'no uplinks in the facts' >&2; exit 3",
        "scenarios/dual-isp.yaml",
    ])?;
    if code != 2
        || !out.contains(
            "generator `echo 'no uplinks in the facts' >&2; exit 3` for node `jupiter` failed",
        )
        || !out.contains("no uplinks in the facts")
    {
        return Err(format!(
            "a failing generator must give exit 2 with its message (exit {code}):\n{out}"
        )
        .into());
    }
    let (code, out) = harness_cmd(&[
        "run",
        "--rules",
        "jupiter=printf '### iptables\\n*mangle\\n-A PREROUTING -j NOSUCH\\nCOMMIT\\n'",
        "scenarios/dual-isp.yaml",
    ])?;
    if code != 2
        || !out.contains("output of generator")
        || !out.contains(":3: iptables-restore rejected this line")
        || !out.contains("-A PREROUTING -j NOSUCH")
    {
        return Err(format!("a rejected generated line must give exit 2, quoted with its line (exit {code}):\n{out}").into());
    }
    Ok(())
}

/// `--pcap DIR` writes one file per link that tcpdump reads, and `--json`/`--junit` files
/// that parse; flow 2 is found in the LAN capture by its client port.
fn result_files() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path().display().to_string();
    let (code, out) = harness_cmd(&[
        "run",
        "--pcap",
        &d,
        "--json",
        &format!("{d}/r.json"),
        "--junit",
        &format!("{d}/r.xml"),
        "scenarios/dual-isp.yaml",
    ])?;
    if code != 0 {
        return Err(format!("the run failed (exit {code}):\n{out}").into());
    }
    // tcpdump refuses to run as root of a user namespace (it drops to its own user, which
    // is not mapped there): a rootless run reads the files with the pcap-file crate instead;
    // the root run (CI) proves tcpdump reads them.
    let read = if harness::rootless::in_user_namespace() {
        read_pcap_in_process
    } else {
        read_pcap_with_tcpdump
    };
    for link in ["lan", "wan1", "wan2", "peer1", "peer2", "dc"] {
        read(&format!("{d}/dual-isp-{link}.pcap"), None)?;
    }
    if read(&format!("{d}/dual-isp-lan.pcap"), Some(40002))? < 5 {
        return Err("flow 2 (client port 40002) is not in the LAN capture".into());
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{d}/r.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    if json["scenarios"][0]["verdict"]["flows"]
        .as_array()
        .map(Vec::len)
        != Some(10)
    {
        return Err("the JSON holds no 10 flows".into());
    }
    let xml = std::fs::read_to_string(format!("{d}/r.xml")).map_err(|e| e.to_string())?;
    if !xml.contains("<testsuite name=\"dual-isp\" tests=\"6\" failures=\"0\"") {
        return Err(format!("unexpected JUnit:\n{xml}").into());
    }
    Ok(())
}

/// How many packets of `file` have TCP port `port` (with `None`: all of them), by tcpdump.
fn read_pcap_with_tcpdump(file: &str, port: Option<u16>) -> Result<usize, Failed> {
    let mut cmd = std::process::Command::new("tcpdump");
    cmd.args(["-nr", file]);
    if let Some(p) = port {
        cmd.arg(format!("tcp port {p}"));
    }
    let t = cmd
        .output()
        .map_err(|e| format!("tcpdump (apt-get install tcpdump): {e}"))?;
    if !t.status.success() {
        return Err(format!(
            "tcpdump cannot read {file}: {}",
            String::from_utf8_lossy(&t.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&t.stdout).lines().count())
}

/// The same, read in this process.
fn read_pcap_in_process(file: &str, port: Option<u16>) -> Result<usize, Failed> {
    use pnet_packet::{ethernet::EthernetPacket, ipv4::Ipv4Packet, tcp::TcpPacket, Packet};
    let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let mut r = pcap_file::pcap::PcapReader::new(f).map_err(|e| format!("{file}: {e}"))?;
    let mut n = 0;
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.map_err(|e| format!("{file}: {e}"))?;
        let Some(p) = port else {
            n += 1;
            continue;
        };
        let tcp_port = EthernetPacket::new(&pkt.data)
            .and_then(|e| Ipv4Packet::owned(e.payload().to_vec()))
            .filter(|ip| ip.get_next_level_protocol().0 == 6)
            .and_then(|ip| TcpPacket::owned(ip.payload().to_vec()))
            .map(|t| (t.get_source(), t.get_destination()));
        if tcp_port.is_some_and(|(a, b)| a == p || b == p) {
            n += 1;
        }
    }
    Ok(n)
}

/// The failure hook itself: a scenario that fails says where its result files are, and they
/// are there.
fn failure_leaves_results() -> Result<(), Failed> {
    let name = "fixture: dual-isp-fails";
    let err = match run_judged(
        name,
        &repo_path("harness/tests/fixtures/cleanup/dual-isp-fails.yaml"),
        Backend::System,
    ) {
        Ok(_) => return Err("the failing fixture passed".into()),
        Err(e) => e.message().unwrap_or_default().to_string(),
    };
    let dir = results_dir(name);
    if !err.contains(&dir.display().to_string()) {
        return Err(format!("the failure does not name {}:\n{err}", dir.display()).into());
    }
    for f in [
        "result.html",
        "result.json",
        "result.junit.xml",
        "dual-isp-fails-wan2.pcap",
    ] {
        let len = std::fs::metadata(dir.join(f)).map_or(0, |m| m.len());
        if len == 0 {
            return Err(format!("{f} is missing or empty in {}", dir.display()).into());
        }
    }
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// The scale scenario `harness bench --uplinks` runs: 16 uplinks, generated lab and rules,
/// 64 connections rotating wan1…wan16.
fn sixteen_uplinks_builtin() -> Result<(), Failed> {
    let plan = harness::model::generate::nth_scenario(16, 64).map_err(|e| e.to_string())?;
    let r = run::run(&plan).map_err(|e| chain(&e))?;
    if !r.verdict.outcome.ok() {
        return Err(report::full(&r.verdict).into());
    }
    Ok(())
}

/// `harness bench` prints a row per (uplinks, flows) with every phase, flows/s and peak memory.
fn bench_rows() -> Result<(), Failed> {
    let (code, out) = harness_cmd(&["bench", "--uplinks", "4,2", "--flows", "40", "--runs", "1"])?;
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("uplinks, 40 flows"))
        .collect();
    let numbers = |l: &str| {
        l.split_whitespace()
            .filter(|w| w.parse::<f64>().is_ok())
            .count()
    };
    if code != 0
        || rows.len() != 2
        || !rows[0].contains("2 uplinks")
        || rows.iter().any(|r| numbers(r) != 2 + 11)
    {
        return Err(format!("bench (exit {code}):\n{out}").into());
    }
    Ok(())
}

/// The commit watch ends the wait when the kernel has committed every table of seed 002's
/// rules, and they are all in force then (the tool may still be closing its sockets).
fn commit_watch() -> Result<(), Failed> {
    use harness::install::commits::{batches, CommitWatch, Outcome};
    use std::process::{Command, Stdio};
    let rules = std::fs::read_to_string(repo_path("scenarios/dual-isp/jupiter.iptables"))
        .map_err(|e| e.to_string())?;
    let n = batches(RuleKind::Iptables, &rules);
    if n != 2 {
        return Err(format!("seed 002's rules have 2 tables; counted {n} batches").into());
    }
    let ns = harness::lab::Netns::new("watch").map_err(|e| e.to_string())?;
    let in_ns = ns
        .run(move || -> Result<String, String> {
            let mut watch = CommitWatch::here().map_err(|e| e.to_string())?;
            let (exited, exiting) = std::io::pipe().map_err(|e| e.to_string())?;
            let mut child = Command::new("iptables-nft-restore")
                .stdin(Stdio::piped())
                .spawn()
                .map_err(|e| format!("iptables-nft-restore: {e}"))?;
            let mut stdin = child.stdin.take().expect("piped");
            std::io::Write::write_all(&mut stdin, rules.as_bytes()).map_err(|e| e.to_string())?;
            drop(stdin);
            let waiter = std::thread::spawn(move || {
                let status = child.wait();
                drop(exiting);
                status
            });
            let outcome = watch
                .wait(n, std::os::fd::AsFd::as_fd(&exited))
                .map_err(|e| e.to_string())?;
            let saved = Command::new("iptables-nft-save")
                .output()
                .map_err(|e| format!("iptables-nft-save: {e}"))?;
            let status = waiter.join().expect("waiter").map_err(|e| e.to_string())?;
            if outcome != Outcome::Committed || !status.success() {
                return Err(format!(
                    "wait ended with {outcome:?}; iptables-nft-restore {status}"
                ));
            }
            Ok(String::from_utf8_lossy(&saved.stdout).into_owned())
        })
        .map_err(|e| e.to_string())??;
    for rule in [
        "-A PREROUTING -p tcp -m state --state NEW -m statistic --mode nth --every 2 --packet 1 -j CONNMARK2",
        "-A POSTROUTING -o eth2 -j SNAT2",
    ] {
        if !in_ns.contains(rule) {
            return Err(format!("not in force when the wait ended: {rule}
{in_ns}").into());
        }
    }
    Ok(())
}

fn main() {
    // Not root: run every scenario the same way, as root of a user namespace of our own
    // (first, while this process has one thread). Where the kernel refuses one, the trials
    // that need namespaces are ignored, not passed; under CI they fail.
    let lab = common::Needs::lab();
    // The pcaps are read back with tcpdump where it runs (not as root of a user namespace).
    let pcaps = if harness::rootless::in_user_namespace() {
        lab.clone()
    } else {
        lab.and(&common::Needs::tool("tcpdump", "tcpdump"))
    };
    let mut args = Arguments::from_args();
    // A scenario's run mostly waits: on the kernel, on its flows' timeouts (a broken twin's
    // dying flows), on its timeline (events during traffic). Three at a time per CPU keep
    // the CPUs busy (measured on 2 CPUs with 249 trials, unoptimized: 33 s at two per CPU,
    // 28 s at three, 29 s at four),
    // and try the harness as CI uses it, many runs sharing a machine. `--test-threads N`
    // still decides.
    if args.test_threads.is_none() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        args.test_threads = Some(3 * cpus);
    }
    let root = repo_path("scenarios");
    let mut files = Vec::new();
    scenario_files(&root, &mut files);
    files.sort();
    // The longest first, so that no long one is left running alone at the end: those with
    // events during traffic (their timeline, mostly waiting), then by number of flows.
    files.sort_by_cached_key(|p| std::cmp::Reverse(weight(p)));
    let trials = files
        .into_iter()
        .flat_map(|p| {
            let name = rel_name(&root, &p);
            // The backend differential: the same snapshot under iptables-legacy. Not for a
            // scenario with events during traffic: its run is mostly its timeline's waiting,
            // and its rules are judged under legacy by the rows that share them.
            let legacy = (iptables_only(&p) && !weight(&p).0).then(|| {
                let (name, p) = (name.clone(), p.clone());
                lab.trial(format!("legacy: {name}"), move || {
                    run_one(&name, &p, Backend::Legacy)
                })
            });
            std::iter::once(lab.trial(name.clone(), move || run_one(&name, &p, Backend::System)))
                .chain(legacy)
        })
        .chain(restore_cuts().into_iter().map(|(line, text)| {
            lab.trial(
                format!("dual-isp, restore cut: line {line} `{text}`"),
                move || run_cut(line),
            )
        }))
        .chain(std::iter::once(lab.trial(
            "dual-isp-no-restore, on the correct rules: must not pass",
            twin_on_correct_rules,
        )))
        .chain([
            lab.and(&common::Needs::tool("python3", "python3")).trial(
                "gate: the example generator passes, its buggy twin fails",
                gate_examples,
            ),
            lab.trial(
                "diff: seed 002 against no SNAT on wan2 names the wan2 flows",
                diff_snat,
            ),
            lab.trial(
                "coverage: the rules nothing hit, by file and line",
                coverage_idle_rules,
            ),
            pcaps.trial("result files: pcap per link, JSON, JUnit", result_files),
            lab.trial("bench: a row per uplinks and flows", bench_rows),
            lab.trial(
                "bench: the built-in scale scenario holds on 16 uplinks",
                sixteen_uplinks_builtin,
            ),
            lab.trial(
                "result files: a failing scenario names the folder they are in",
                failure_leaves_results,
            ),
            lab.trial(
                "generators: a failing one is bad input, with its own message",
                failing_generators,
            ),
            lab.trial(
                "install: the kernel's commits end the wait, every table in force",
                commit_watch,
            ),
        ])
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

//! Daemons in a node's rules (`- daemon: COMMAND`, #18): a monitor that runs in the router for
//! the whole run.
//!
//! - It runs inside the router's namespace (its `ip -o link` lists the router's interfaces
//!   alone), with the facts on stdin and in `$HARNESS_TOPOLOGY`, `HARNESS_NODE` and
//!   `HARNESS_UPLINKS`, in the scenario's folder; when `harness run` returns, no process of it
//!   is left (none has the scenario's folder as its working folder), whether the run passed
//!   or a later rule file (another node's) was rejected once it ran (exit 2).
//! - How each ended is in the run's result: stopped, killed (it ignored SIGTERM) or exited by
//!   itself, with the last 64 KiB of what it printed; the terminal says so for one that
//!   exited early.
//! - `ci/examples/monitor/mwan3track-lite` in the dual-ISP lab logs both uplinks up; when
//!   wan1 goes silent mid-traffic (a blackhole at ISP1) it logs wan1 down and moves the
//!   default route to wan2, and the connections started after that complete by wan2; with
//!   `--unpinned` (its bug) every uplink looks down and those connections die. With `--flush`
//!   it then deletes the conntrack entries source-NATed to wan1's address (a UDP stream's,
//!   running by wan1 when ISP1 went silent), logs how many, and the stream comes back by wan2.
//!
//! `tests/cleanup.rs` checks more closely that nothing of a daemon outlives its run (also on
//! Ctrl-C and `kill -9`, and as `nobody`). Needs labs; where they cannot be built the trials
//! are reported ignored, or fail under CI (see `common::Needs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::model::repo_path;
use harness::observe::daemons::DaemonEnd;
use libtest_mimic::{Arguments, Failed};

fn main() {
    let args = Arguments::from_args();
    let lab = common::Needs::lab();
    let ping = lab.and(&common::Needs::tool("ping", "iputils-ping"));
    let conntrack = ping.and(&common::Needs::tool("conntrack", "conntrack"));
    let trials = vec![
        lab.trial(
            "daemon: runs in the router with the facts, and is gone when a passing run returns",
            runs_in_the_router_and_dies_with_the_run,
        ),
        lab.trial(
            "daemon: is gone when a later rule file is rejected (exit 2)",
            dies_when_a_later_rule_file_is_rejected,
        ),
        lab.trial(
            "daemon: stopped, killed or exited by itself, with the tail of its output",
            each_end_is_recorded,
        ),
        ping.trial(
            "mwan3track-lite: both uplinks up in the dual-ISP lab",
            mwan3track_lite_sees_both_uplinks_up,
        ),
        ping.trial(
            "mwan3track-lite: fails over when wan1 goes silent; --unpinned does not",
            mwan3track_lite_fails_over,
        ),
        conntrack.trial(
            "mwan3track-lite --flush: deletes the dead uplink's NAT entries once the route moved",
            mwan3track_lite_flushes,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}

/// Seed 002's rule files.
fn seed002() -> [String; 2] {
    [
        format!(
            "- iptables: {}",
            repo_path("scenarios/dual-isp/jupiter.iptables").display()
        ),
        format!(
            "- ip: {}",
            repo_path("scenarios/dual-isp/jupiter.ip").display()
        ),
    ]
}

/// A scenario in `dir` on the Jupiter lab: `jupiter`'s rule entries, more YAML for the other
/// nodes' rules (`extra_rules`, indented as `rules:`'s nodes), and `rest` (traffic, events,
/// expectations).
fn scenario(dir: &Path, jupiter: &[String], extra_rules: &str, rest: &str) -> PathBuf {
    let files: String = jupiter.iter().map(|e| format!("      {e}\n")).collect();
    let text = format!(
        "topology: {}\nrules:\n  jupiter:\n    tables: {{ rt_link1: 251, rt_link2: 252 }}\n    files:\n{files}{extra_rules}{rest}",
        repo_path("topologies/jupiter.yaml").display()
    );
    let path = dir.join("s.yaml");
    std::fs::write(&path, text).expect("write the scenario");
    path
}

/// Four TCP flows of seed 002 that alternate and complete.
/// Four connections of 0.4 s (3 round trips 200 ms apart): the run lasts long enough for the
/// daemons to have done what they start with (there is no readiness handshake: a daemon is
/// stopped when the traffic is done, whatever it was doing).
const ALTERNATE: &str = "traffic:\n  - { name: web, proto: tcp, from: saturn, to: neptune, port: 80, flows: 4, round_trips: 3, interval: 200ms }\nexpect:\n  - { name: alternates, flows: web, sequence: [wan1, wan2] }\n  - { name: completes, completes: true }\n";

/// The processes whose working folder is `dir`: a daemon's (it runs in the scenario's
/// folder), and whatever it started there.
fn processes_in(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == dir) {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            found.push(format!("{pid}: {}", cmd.trim()));
        }
    }
    found
}

/// `harness run SCENARIO` from the repository's root: exit code and what it said.
fn harness_run(scenario: &Path) -> Result<(i32, String, String), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg(scenario)
        .current_dir(repo_path(""))
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// What the probe daemon writes in its folder: the router's links, its stdin, the topology
/// file, its environment; then it starts a `setsid` child (out of its process group) and
/// says it runs (`started`), and loops.
const PROBE: &str = "ip -o link > links; cat > stdin.json; cat \"$HARNESS_TOPOLOGY\" > topology.json; printf '%s\\n' \"$HARNESS_NODE\" \"$HARNESS_UPLINKS\" \"$PWD\" > env; (setsid sleep 100000 </dev/null >/dev/null 2>&1 &); touch started; while :; do sleep 0.05; done";

/// The probe's files say it ran in the router, with the facts.
fn probe_ran_in_the_router(dir: &Path) -> Result<(), Failed> {
    let links = std::fs::read_to_string(dir.join("links"))?;
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    if names != ["lo", "eth0", "eth1", "eth2"] {
        return Err(format!("`ip -o link` in the daemon shows {names:?}, not jupiter's lo, eth0, eth1, eth2:\n{links}").into());
    }
    let stdin = std::fs::read_to_string(dir.join("stdin.json"))?;
    let file = std::fs::read_to_string(dir.join("topology.json"))?;
    if stdin != file {
        return Err("the facts on stdin and in $HARNESS_TOPOLOGY differ".into());
    }
    let facts: serde_json::Value = serde_json::from_str(&stdin)?;
    if facts["node"] != "jupiter" || facts["router"]["uplinks"][1]["gateway"] != "10.37.2.254" {
        return Err(format!("the facts are not jupiter's: {stdin}").into());
    }
    let env = std::fs::read_to_string(dir.join("env"))?;
    let want = format!(
        "jupiter\nwan1,eth1,10.37.1.253,10.37.1.254,-,- wan2,eth2,10.37.2.253,10.37.2.254,-,-\n{}\n",
        dir.canonicalize()?.display()
    );
    if env != want {
        return Err(format!("its environment said:\n{env}\nexpected:\n{want}").into());
    }
    Ok(())
}

/// Nothing of the daemon is left once the run returned.
fn none_left(dir: &Path) -> Result<(), Failed> {
    let left = processes_in(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "processes of the daemon outlived the run:\n{}",
            left.join("\n")
        )
        .into())
    }
}

fn runs_in_the_router_and_dies_with_the_run() -> Result<(), Failed> {
    let d = tempfile::tempdir()?;
    let mut files = seed002().to_vec();
    files.push(format!("- daemon: {}", serde_json::to_string(PROBE)?));
    files.push("- daemon: \"echo giving up; echo for good >&2; exit 3\"".into());
    let s = scenario(d.path(), &files, "", ALTERNATE);
    let (code, out, err) = harness_run(&s)?;
    none_left(d.path())?;
    if code != 0 {
        return Err(format!("exit {code}, expected 0:\n{out}{err}").into());
    }
    probe_ran_in_the_router(d.path())?;
    // The one that exited early is said, with what it printed; the other, which ran to the
    // end of a passing run, is not.
    let said = "daemon `echo giving up; echo for good >&2; exit 3` on jupiter exited by itself";
    if !out.contains(said)
        || !out.contains("(exit status 3); what it printed:\n  | giving up\n  | for good\n")
        || out.contains("ip -o link")
    {
        return Err(format!("the report does not say what the daemons did:\n{out}").into());
    }
    Ok(())
}

fn dies_when_a_later_rule_file_is_rejected() -> Result<(), Failed> {
    let d = tempfile::tempdir()?;
    let mut files = seed002().to_vec();
    files.push(format!("- daemon: {}", serde_json::to_string(PROBE)?));
    // isp1's rules: a generator (run in the scenario's folder too) that waits until jupiter's
    // daemon runs, then prints a route `ip` rejects.
    let isp1 = "  isp1:\n    files:\n      - { generate: \"until [ -e started ]; do sleep 0.01; done; echo 'route add no-such-route'\", as: ip }\n";
    let s = scenario(d.path(), &files, isp1, ALTERNATE);
    let (code, out, err) = harness_run(&s)?;
    none_left(d.path())?;
    if code != 2 || !err.contains("ip rejected this line on node `isp1`") {
        return Err(
            format!("exit {code}, expected 2 with isp1's rules rejected:\n{out}{err}").into(),
        );
    }
    probe_ran_in_the_router(d.path())
}

fn each_end_is_recorded() -> Result<(), Failed> {
    let d = tempfile::tempdir()?;
    let mut files = seed002().to_vec();
    for line in [
        "echo up; while :; do sleep 0.05; done",
        "trap '' TERM; echo deaf; while :; do sleep 0.05; done",
        "echo giving up; exit 3",
        // 100 000 bytes of x, then a line: only the last 64 KiB are kept.
        "head -c 100000 /dev/zero | tr '\\0' x; echo; echo last; while :; do sleep 0.05; done",
    ] {
        files.push(format!("- daemon: {}", serde_json::to_string(line)?));
    }
    let s = scenario(d.path(), &files, "", ALTERNATE);
    let started = std::time::Instant::now();
    let r = harness::run::run_file(&s).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    none_left(d.path())?;
    let ends: Vec<(&str, &DaemonEnd)> = r
        .daemons
        .iter()
        .map(|d| (d.command.as_str(), &d.end))
        .collect();
    let [up, deaf, early, flood] = &r.daemons[..] else {
        return Err(format!("4 daemons expected: {ends:?}").into());
    };
    let problems: Vec<String> = [
        // (A shell whose foreground command SIGTERM killed says `Terminated`.)
        (
            up.end == DaemonEnd::Stopped && up.output.starts_with("up\n"),
            "the first stopped, `up`",
        ),
        (
            deaf.end == DaemonEnd::Killed && deaf.output == "deaf\n",
            "the second killed, `deaf`",
        ),
        (
            matches!(
                early.end,
                DaemonEnd::Exited {
                    code: Some(3),
                    signal: None,
                    ..
                }
            ) && early.output == "giving up\n",
            "the third exited with 3, `giving up`",
        ),
        (
            flood.output_cut
                && flood.output.len() == 64 << 10
                && flood.output.contains("xx\nlast\n")
                && flood.end == DaemonEnd::Stopped,
            "the fourth stopped, its last 64 KiB kept",
        ),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what.to_string())
    .collect();
    if !problems.is_empty() {
        return Err(format!("expected {}; got {ends:?}", problems.join(", ")).into());
    }
    // The one that ignored SIGTERM had the grace, not more.
    if took.as_secs_f64() > 10.0 {
        return Err(format!("the run took {took:?}").into());
    }
    Ok(())
}

/// `ci/examples/monitor/mwan3track-lite` with `args`.
fn mwan3track_lite(args: &str) -> String {
    format!(
        "- daemon: {} {args}",
        repo_path("ci/examples/monitor/mwan3track-lite").display()
    )
}

fn mwan3track_lite_sees_both_uplinks_up() -> Result<(), Failed> {
    let d = tempfile::tempdir()?;
    let mut files = seed002().to_vec();
    files.push(mwan3track_lite("--target 172.16.1.100"));
    // Two connections of 12 round trips 50 ms apart: the traffic lasts about 0.6 s, twice
    // what three rounds of probes 0.1 s apart take.
    let rest = "traffic:\n  - { name: web, proto: tcp, from: saturn, to: neptune, port: 80, flows: 2, round_trips: 12, interval: 50ms }\nexpect:\n  - { name: alternates, flows: web, sequence: [wan1, wan2] }\n  - { name: completes, completes: true }\n";
    let s = scenario(d.path(), &files, "", rest);
    let r = harness::run::run_file(&s).map_err(|e| e.to_string())?;
    none_left(d.path())?;
    let [m] = &r.daemons[..] else {
        return Err(format!("one daemon expected: {:?}", r.daemons).into());
    };
    let log = &m.output;
    let ok = m.end == DaemonEnd::Stopped
        && log.contains(
            " tracking wan1 wan2: ping 172.16.1.100 every 0.1 s from each uplink's address; down after 3 lost, up after 3 answered\n",
        )
        && log.contains(" wan1 up (3 probes answered in a row)\n")
        && log.contains(" wan2 up (3 probes answered in a row)\n")
        && !log.contains(" down (")
        && log.ends_with(" stopped\n");
    if !ok || r.verdict.outcome != harness::verdict::Outcome::Pass {
        return Err(format!("{:?}; it logged:\n{log}", m.end).into());
    }
    Ok(())
}

/// A router that only routes by its main table (SNAT per uplink, no marks): where its default
/// route points is what the monitor decides. ISP1 goes silent (a blackhole: its carrier stays
/// up) 300 ms into 24 connections started 50 ms apart; those started from 900 ms on must
/// leave by wan2 and complete.
/// A router's NAT alone: whatever leaves by an uplink leaves with its address.
const SNAT: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth1 -j SNAT --to-source 10.37.1.253\n-A POSTROUTING -o eth2 -j SNAT --to-source 10.37.2.253\nCOMMIT\n";

fn mwan3track_lite_fails_over() -> Result<(), Failed> {
    let run = |args: &str| -> Result<(harness::run::RunResult, String), Failed> {
        let d = tempfile::tempdir()?;
        std::fs::write(d.path().join("snat.iptables"), SNAT)?;
        let files = [
            "- iptables: snat.iptables".to_string(),
            mwan3track_lite(args),
        ];
        let rest = "traffic:\n  - { name: web, proto: tcp, from: saturn, to: neptune, port: 80, flows: 24, round_trips: 1, pace: 50ms, timeout: 300ms }\nevents:\n  - { name: wan1_dies, during: web, at: 300ms, blackhole: wan1 }\nexpect:\n  - { name: later_by_wan2, flows: web, started: { after: wan1_dies, later_than: 600ms }, via: wan2 }\n  - { name: later_complete, flows: web, started: { after: wan1_dies, later_than: 600ms }, completes: true }\n";
        let s = scenario(d.path(), &files, "", rest);
        let r = harness::run::run_file(&s).map_err(|e| e.to_string())?;
        none_left(d.path())?;
        let log = r
            .daemons
            .first()
            .map(|m| m.output.clone())
            .unwrap_or_default();
        Ok((r, log))
    };
    let (r, log) = run("--target 172.16.1.100")?;
    let failed_over = log.contains(" wan1 down (3 probes lost in a row)\n")
        && log.contains(" default route now via wan2 (10.37.2.254 dev eth2)\n")
        && !log.contains("wan2 down");
    if !failed_over || r.verdict.outcome != harness::verdict::Outcome::Pass {
        return Err(format!(
            "pinned: {}\nit logged:\n{log}",
            harness::report::full(&r.verdict)
        )
        .into());
    }
    let (r, log) = run("--target 172.16.1.100 --unpinned")?;
    let blind = log.contains(" wan1 down")
        && log.contains(" wan2 down")
        && log.contains("every uplink is down: default route left via wan1");
    let broke: Vec<&str> = r
        .verdict
        .results
        .iter()
        .filter(|e| e.broke())
        .map(|e| e.name.as_str())
        .collect();
    if !blind || broke != ["later_by_wan2", "later_complete"] {
        return Err(format!(
            "unpinned: {}\nit logged:\n{log}",
            harness::report::full(&r.verdict)
        )
        .into());
    }
    Ok(())
}

/// The SNAT router again; a UDP stream (a datagram every 50 ms) leaves by wan1, and 200 ms in
/// ISP1 goes silent. The monitor (probes every 50 ms) sees wan1 down, moves the default route
/// to wan2, and then, with `--flush`, deletes the stream's conntrack entry (source-NATed to
/// 10.37.1.253), not its own probes' (from 10.37.1.253 itself, not translated), and says so;
/// the stream's next datagrams start a new entry by wan2, and its last is answered: it came
/// back.
fn mwan3track_lite_flushes() -> Result<(), Failed> {
    let d = tempfile::tempdir()?;
    std::fs::write(d.path().join("snat.iptables"), SNAT)?;
    let files = [
        "- iptables: snat.iptables".to_string(),
        mwan3track_lite("--target 172.16.1.100 --interval 0.05 --flush"),
    ];
    let rest = "traffic:\n  - { name: stream, proto: udp, from: saturn, to: neptune, port: 53, flows: 1, round_trips: 16, interval: 50ms, timeout: 1s }\nevents:\n  - { name: wan1_dies, during: stream, at: 200ms, blackhole: wan1 }\nexpect:\n  - { name: comes_back, flows: stream, spanning: wan1_dies, fate: survives }\n";
    let s = scenario(d.path(), &files, "", rest);
    let r = harness::run::run_file(&s).map_err(|e| e.to_string())?;
    none_left(d.path())?;
    let log = r
        .daemons
        .first()
        .map(|m| m.output.clone())
        .unwrap_or_default();
    // `HH:MM:SS.mmm flushed N conntrack entries source-NATed to wan1's address 10.37.1.253`
    let said = " conntrack entries source-NATed to wan1's address 10.37.1.253";
    let flushes: Vec<u32> = log
        .lines()
        .filter_map(|l| {
            l.strip_suffix(said)?
                .split_once(" flushed ")?
                .1
                .parse()
                .ok()
        })
        .collect();
    let at = |what: &str| log.find(what).unwrap_or(usize::MAX);
    let ordered = at(" wan1 down (") < at(" default route now via wan2 ")
        && at(" default route now via wan2 ") < at(said);
    if !ordered || !matches!(flushes[..], [n] if n >= 1) {
        return Err(format!(
            "expected wan1 down, the route moved to wan2, then 1 or more entries flushed, once; {}\nit logged:\n{log}",
            harness::report::full(&r.verdict)
        )
        .into());
    }
    if r.verdict.outcome != harness::verdict::Outcome::Pass {
        return Err(format!("{}\nit logged:\n{log}", harness::report::full(&r.verdict)).into());
    }
    Ok(())
}

//! Many runs on one machine at once, as CI runs them: a correct rule set must never be judged
//! broken because other labs were being built and torn down beside it. Exit 1 must rest on
//! what was seen; under load the harness may say it could not judge (exit 2), never wrongly 1.
//!
//! Needs labs; where they cannot be built the trials are reported ignored, or fail under CI
//! (see `common::Needs`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed};

fn main() {
    let args = Arguments::from_args();
    let lab = common::Needs::lab();
    let trials = vec![
        lab.trial(
            "lab: every link end is up once the lab is wired",
            links_up_when_wired,
        ),
        lab.trial("16 runs of dual-isp at once: no false alarm", || {
            at_once("scenarios/dual-isp.yaml", 16, 2)
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code();
}

/// Right after [`harness::lab::Lab::wire`], every veth end is operationally up: the kernel's
/// link watch, which gives a veth end brought up before its peer its carrier and its transmit
/// queue, is held back while other labs are built, and a packet sent before then is dropped
/// without a trace. (Before the wait this failed on a quiet machine too: the link watch runs
/// at most once a second.)
fn links_up_when_wired() -> Result<(), Failed> {
    let plan = harness::model::load(&repo_path("scenarios/dual-isp.yaml"))?;
    for _ in 0..3 {
        let lab = harness::lab::Lab::create(&plan)?;
        lab.wire(&plan)?;
        for l in &plan.topology.links {
            for e in [&l.a, &l.b] {
                // A deadline already passed: one look, no waiting.
                lab.wait_oper(&e.node, &e.iface, true, Instant::now())
                    .map_err(|err| format!("link `{}` right after wiring: {err}", l.name))?;
            }
        }
    }
    Ok(())
}

/// `n` runs of `scenario` at once, `rounds` times: none may exit 1, and at least 90 % must
/// exit 0 (the rest may say the machine was too busy to judge, exit 2).
fn at_once(scenario: &str, n: usize, rounds: usize) -> Result<(), Failed> {
    let mut codes = Vec::new();
    for _ in 0..rounds {
        let runs: Vec<_> = (0..n)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_harness"))
                    .args(["run", scenario])
                    .current_dir(repo_path("."))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        for r in runs {
            let out = r.wait_with_output()?;
            let code = out.status.code().unwrap_or(-1);
            if code == 1 {
                return Err(format!(
                    "a run of the correct {scenario} exited 1 with {n} at once:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            codes.push(code);
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("{n} runs at once took {:?}", started.elapsed()).into());
        }
    }
    let passed = codes.iter().filter(|c| **c == 0).count();
    if passed * 10 < codes.len() * 9 {
        return Err(format!(
            "only {passed} of {} runs of {scenario} exited 0 ({n} at once); exit codes: {codes:?}",
            codes.len()
        )
        .into());
    }
    Ok(())
}

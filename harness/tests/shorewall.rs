//! A real rule generator through the gate: Shorewall 5.2's Multi-ISP (Debian package
//! `shorewall`), ci/examples/shorewall. Its `install` wrapper compiles the example
//! configuration inside the router's namespace and runs the compiled script's `start`;
//! `install-broken` and `install-no-track` load the same with a mistake a Shorewall user could
//! make (the second ISP left out of `snat`; the providers not tracked).
//!
//! - `balance-1-1`: `harness gate --rules jupiter=install:ci/examples/shorewall/install
//!   scenarios/conformance/balance-1-1` passes; the same with `install-broken` fails (exit 1)
//!   in outbound.yaml, naming a flow that left via wan2 with its LAN source, and with
//!   `install-no-track` in inbound.yaml, naming a port-forwarded flow answered on the other
//!   uplink. These need the `install:` rule kind and the conformance suite (issue #16, items 1
//!   and 2).
//! - `by hand`: the wrapper run as a generator that loads the rules itself and prints one
//!   harmless sysctl (what the gate could do before `install:`), against a Jupiter lab with
//!   six LAN and four server addresses: every flow completes, keeps its uplink and leaves with
//!   that uplink's address, and both uplinks carry some; the wrong variant's wan2 flows die at
//!   ISP2. Shorewall's files on the machine (/etc/shorewall, /var/lib/shorewall,
//!   /etc/iproute2/rt_tables) are the same afterwards, and its temporary folder is gone.
//!
//! Where namespaces cannot be created or shorewall is missing, the trials are ignored, not
//! passed (under `CI=true` they fail: tests/common/mod.rs).

mod common;

use std::path::Path;
use std::process::{Command, ExitCode};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed};

/// The conformance folder the example is written for.
const SUITE: &str = "scenarios/conformance/balance-1-1";

/// Runs the harness binary in the repository root with `TMPDIR` set: its exit code and output.
fn harness(args: &[&str], tmp: &Path) -> Result<(i32, String), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(repo_path(""))
        .env("TMPDIR", tmp)
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

/// What Shorewall could change on the machine if it ran there: the files, as read now.
fn machine_state() -> Vec<(String, Option<Vec<u8>>)> {
    let mut files = vec!["/etc/iproute2/rt_tables".to_string()];
    for dir in ["/etc/shorewall", "/var/lib/shorewall"] {
        files.push(dir.to_string());
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.path().display().to_string())
                .collect();
            names.sort();
            files.extend(names);
        }
    }
    files
        .into_iter()
        .map(|f| {
            // A folder reads as None, like a missing file: its listing stands for it.
            let content = std::fs::read(&f).ok();
            (f, content)
        })
        .collect()
}

/// The gate through the conformance suite: the example passes, the wrong variant fails naming
/// a wan2 flow that kept its LAN source.
fn balance_suite() -> Result<(), Failed> {
    if !repo_path(SUITE).is_dir() {
        return Err(format!(
            "{SUITE} does not exist: the Shorewall example is gated through the conformance \
             suite (issue #16 item 1), and loaded with the `install:` rule kind (item 2)"
        )
        .into());
    }
    let tmp = tempfile::tempdir()?;
    let before = machine_state();
    let good = "jupiter=install:ci/examples/shorewall/install";
    let (code, out) = harness(&["gate", "--rules", good, SUITE], tmp.path())?;
    if code != 0 || !out.contains(" 0 failed") {
        return Err(
            format!("the Shorewall example should pass {SUITE} (exit {code}):\n{out}").into(),
        );
    }
    let bad = "jupiter=install:ci/examples/shorewall/install-broken";
    let (code, out) = harness(&["gate", "--rules", bad, SUITE], tmp.path())?;
    if code != 1
        || !out.contains(&format!("FAIL {SUITE}/outbound.yaml"))
        || !out.contains("left via wan2 with source 192.168.157.")
    {
        return Err(format!(
            "the wrong variant (no masquerade on wan2) should fail {SUITE}/outbound.yaml, naming \
             a flow that left via wan2 with its LAN source (exit {code}):\n{out}"
        )
        .into());
    }
    let bad = "jupiter=install:ci/examples/shorewall/install-no-track";
    let (code, out) = harness(&["gate", "--rules", bad, SUITE], tmp.path())?;
    if code != 1
        || !out.contains(&format!("FAIL {SUITE}/inbound.yaml"))
        || !out.contains("`forward_answered_on_wan")
        || !out.contains("but its replies came back via wan")
    {
        return Err(format!(
            "the wrong variant (providers not tracked) should fail {SUITE}/inbound.yaml, naming \
             a port-forwarded flow answered on the other uplink (exit {code}):\n{out}"
        )
        .into());
    }
    untouched(&before, tmp.path())
}

/// The machine's Shorewall files are as before, and the wrapper left nothing in `tmp`.
fn untouched(before: &[(String, Option<Vec<u8>>)], tmp: &Path) -> Result<(), Failed> {
    let after = machine_state();
    if after != before {
        let changed: Vec<&str> = before
            .iter()
            .chain(after.iter())
            .filter(|e| !before.contains(e) || !after.contains(e))
            .map(|(f, _)| f.as_str())
            .collect();
        return Err(format!("Shorewall changed the machine's files: {changed:?}").into());
    }
    let left: Vec<String> = std::fs::read_dir(tmp)?
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("shorewall-lab."))
        .collect();
    if !left.is_empty() {
        return Err(format!("the install wrapper left its temporary folder: {left:?}").into());
    }
    Ok(())
}

/// A Jupiter lab with six LAN and four server addresses, so that Shorewall's balanced route
/// (a multipath route, hashed on the addresses) has pairs to spread; the example loaded by a
/// generator that runs the wrapper and prints one harmless sysctl. 48 flows, TCP and UDP.
fn scenario(dir: &Path, overlay: &str) -> Result<std::path::PathBuf, Failed> {
    let topo = std::fs::read_to_string(repo_path("topologies/jupiter.yaml"))?
        .replace(
            "saturn:eth0 192.168.157.3/24",
            "saturn:eth0 192.168.157.3/24 192.168.157.4/24 192.168.157.5/24 192.168.157.6/24 \
             192.168.157.7/24 192.168.157.8/24",
        )
        .replace(
            "neptune:eth0 172.16.1.100/24",
            "neptune:eth0 172.16.1.100/24 172.16.1.101/24 172.16.1.102/24 172.16.1.103/24",
        );
    std::fs::write(dir.join("topology.yaml"), topo)?;
    let generator = dir.join("by-hand");
    std::fs::write(
        &generator,
        format!(
            "#!/bin/sh\n{} {overlay} >&2 || exit 1\necho '### sysctl'\necho 'net.ipv4.ip_forward = 1'\n",
            repo_path("ci/examples/shorewall/install").display()
        ),
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&generator, std::fs::Permissions::from_mode(0o755))?;
    let mut yaml = format!(
        "topology: topology.yaml\nrules:\n  jupiter:\n    files:\n      - generate: {}\ntraffic:\n",
        generator.display()
    );
    let mut n = 0;
    for client in 3..=8 {
        for server in 100..=103 {
            for (proto, port) in [("tcp", 80), ("udp", 53)] {
                n += 1;
                yaml += &format!(
                    "  - {{ name: f{n}, proto: {proto}, from: saturn, from_address: \
                     192.168.157.{client}, to: neptune, address: 172.16.1.{server}, port: {port}, \
                     round_trips: 2 }}\n"
                );
            }
        }
    }
    yaml += "expect:\n  - { name: one_uplink, flows: all, one_uplink: true }\n  \
             - { name: snat, flows: all, source: { wan1: 10.37.1.253, wan2: 10.37.2.253 } }\n  \
             - { name: completes, flows: all, completes: true }\n";
    let path = dir.join(format!("shorewall{overlay}.yaml"));
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// The example by hand, before `install:`: passes, uses both uplinks; the wrong variant's wan2
/// flows die at ISP2; the machine untouched.
fn by_hand() -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let before = machine_state();
    let good = scenario(tmp.path(), "")?;
    let (code, out) = harness(&["run", &good.display().to_string()], tmp.path())?;
    if code != 0 {
        return Err(format!("the Shorewall example should pass (exit {code}):\n{out}").into());
    }
    for uplink in ["wan1", "wan2"] {
        if !out.contains(&format!("  {uplink}  {uplink}  ")) {
            return Err(format!("no flow went out and back via {uplink}:\n{out}").into());
        }
    }
    let bad = scenario(tmp.path(), "no-snat-wan2")?;
    let (code, out) = harness(&["run", &bad.display().to_string()], tmp.path())?;
    if code != 1
        || !out.contains("left via wan2 with source 192.168.157.")
        || !out.contains("died at isp2")
        || out.contains("left via wan1 with source 192.168.157.")
    {
        return Err(format!(
            "the wrong variant should fail exactly its wan2 flows, unmasqueraded, dropped by \
             ISP2 (exit {code}):\n{out}"
        )
        .into());
    }
    untouched(&before, tmp.path())
}

fn main() -> ExitCode {
    // Not root: run as root of a user namespace of our own, as the scenario tests do.
    let needs = common::Needs::lab().and(&common::Needs::tool("shorewall", "shorewall"));
    let trials = vec![
        needs.trial("shorewall: by hand, a lab with many address pairs", by_hand),
        needs.trial(
            "shorewall: gate through conformance/balance-1-1",
            balance_suite,
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

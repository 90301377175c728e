//! Rule sets as generators make them, gated through `scenarios/dual-isp.yaml` with
//! `--rules jupiter=…`: a bundle whose `### rt_tables` names its own routing tables, and an
//! installer (`install:COMMAND`) that loads seed 002's rules itself.
//!
//! Each runs the harness binary as the user would. Without namespaces (not root, and no user
//! namespaces) the tests say so and pass, unless `CI` or `HARNESS_REQUIRE_LAB` asks for a lab.

use std::process::Command;

mod common;

use harness::model::repo_path;
use libtest_mimic::{Arguments, Trial};

use common::harness_said as harness;

const FIXTURES: &str = "harness/tests/fixtures/rule-sets";

/// `### rt_tables` names the bundle's own tables (`wan1`, `wan2`, besides the scenario's
/// `rt_link1`, `rt_link2`): `route add … table wan1` loads, and the gate passes; the twin whose
/// marks look up each other's table fails, naming the flow and the link.
fn a_bundle_names_its_own_routing_tables() {
    let good = format!("jupiter={FIXTURES}/named-tables.rules");
    let (code, out) = harness(&["gate", "--rules", &good, "scenarios/dual-isp.yaml"]);
    assert!(
        code == 0 && out.contains("PASS scenarios/dual-isp.yaml"),
        "exit {code}:\n{out}"
    );
    let bad = format!("jupiter={FIXTURES}/named-tables-swapped.rules");
    let (code, out) = harness(&["gate", "--rules", &bad, "scenarios/dual-isp.yaml"]);
    assert!(
        code == 1
            && out.contains(
                "FAIL scenarios/dual-isp.yaml: `alternates` flow 1: left via wan2, expected wan1"
            ),
        "exit {code}:\n{out}"
    );
}

/// A generator's `### rt_tables` counts as a bundle file's does: a name the scenario gives
/// another number is refused, naming the generator's line.
fn a_generators_rt_tables_clash_is_refused_with_its_line() {
    let gen = "jupiter=printf '### rt_tables\\n251 wan1\\n### ip\\nroute flush cache\\n'";
    let (code, out) = harness(&["run", "--rules", gen, "scenarios/dual-isp.yaml"]);
    assert!(code != 0, "exit {code}:\n{out}");
    assert!(
        out.contains(
            ":2: table `wan1` = 251: the scenario's `tables:` names table 251 `rt_link1` already"
        ),
        "{out}"
    );
}

/// An installer loads seed 002's rules itself (iptables-restore, ip -batch): the gate passes,
/// and `--coverage` reads the counters of the rules it loaded, read back from the node. Its
/// broken twin (no `rule add fwmark 2`) fails, naming the flow and the link.
fn an_installer_loads_the_rules_itself_and_coverage_sees_them() {
    let good = format!("jupiter=install:{FIXTURES}/install-seed002");
    let (code, out) = harness(&["gate", "--rules", &good, "scenarios/dual-isp.yaml"]);
    assert!(
        code == 0 && out.contains("PASS scenarios/dual-isp.yaml"),
        "exit {code}:\n{out}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--coverage", "--json", "-", "--rules", &good])
        .arg("scenarios/dual-isp.yaml")
        .current_dir(repo_path(""))
        .output()
        .expect("the harness runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let hits = json["scenarios"][0]["coverage"]
        .as_array()
        .expect("coverage")
        .clone();
    let packets = |rule: &str| {
        hits.iter()
            .find(|h| h["rule"].as_str().is_some_and(|r| r.contains(rule)))
            .and_then(|h| h["packets"].as_u64())
    };
    for rule in [
        "--packet 0 -j CONNMARK1",
        "--packet 1 -j CONNMARK2",
        "-j RESTOREMARK",
        "-o eth1 -j SNAT1",
        "-o eth2 -j SNAT2",
    ] {
        assert!(
            packets(rule).is_some_and(|p| p > 0),
            "`{rule}` not hit: {hits:#?}"
        );
    }
    let shown = hits[0]["shown"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with("installer `") && shown.ends_with("install-seed002` (iptables-save)"),
        "{shown}"
    );
    let bad = format!("jupiter=install:{FIXTURES}/install-seed002-no-wan2");
    let (code, out) = harness(&["gate", "--rules", &bad, "scenarios/dual-isp.yaml"]);
    assert!(
        code == 1
            && out.contains(
                "FAIL scenarios/dual-isp.yaml: `alternates` flow 2: left via wan1, expected wan2"
            ),
        "exit {code}:\n{out}"
    );
}

/// An installer that fails is the rule set's error, its stderr quoted.
fn a_failing_installer_is_quoted() {
    let arg = "jupiter=install:sh -c 'echo cannot load: no wan3 >&2; exit 3'";
    let (code, out) = harness(&["run", "--rules", arg, "scenarios/dual-isp.yaml"]);
    assert!(code != 0, "exit {code}:\n{out}");
    assert!(
        out.contains("for node `jupiter` failed: exit status: 3:\n  cannot load: no wan3"),
        "{out}"
    );
}

/// `- install: ./install-seed002` in a scenario: it runs from the scenario's folder, and the
/// scenario passes.
fn an_installer_named_in_yaml_runs_from_the_scenarios_folder() {
    let scenario = format!("{FIXTURES}/dual-isp-install.yaml");
    let (code, out) = harness(&["run", &scenario]);
    assert!(
        code == 0 && out.contains("PASS dual-isp-install: 10 flows, all 6 expectations held"),
        "exit {code}:\n{out}"
    );
}

/// `harness mutate` on an installer: mutants of its snapshot (iptables-save, nft, ip rule and
/// routes, ipset), loaded as inline rules in its place, fare exactly as the mutants of the rule
/// files the installer loads: the snapshot holds the same rules.
fn mutants_of_an_installers_snapshot_fare_as_those_of_its_files() {
    let tally = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("mutate: "))
            .unwrap_or_default()
            .to_string()
    };
    let (_, files) = harness(&["mutate", "scenarios/dual-isp.yaml"]);
    let (_, installed) = harness(&["mutate", &format!("{FIXTURES}/dual-isp-install.yaml")]);
    assert_eq!(
        tally(&installed),
        "mutate: 21 mutant runs, 21 distinct mutants: 17 killed, 4 survived, 0 invalid; kill score 81%",
        "{installed}"
    );
    assert_eq!(tally(&installed), tally(&files), "{files}\n{installed}");
    assert!(
        installed
            .contains("installer `./install-seed002` (iptables-save):10: dropped state RELATED"),
        "{installed}"
    );
    // Sets (ipset save, loaded before the iptables rules that match them), nft tables,
    for (files, installed) in [
        ("scenarios/pbr/ipset-port.yaml", "ipset-port-install.yaml"),
        (
            "scenarios/inbound/router-source-in-source-out-nft.yaml",
            "nft-install.yaml",
        ),
        // A sysctl the installer changed, and a multipath default route in the main table.
        ("scenarios/ecmp/l3-hash.yaml", "sysctl-install.yaml"),
    ] {
        let (_, files) = harness(&["mutate", files]);
        let (_, installed) = harness(&["mutate", &format!("{FIXTURES}/{installed}")]);
        assert!(tally(&files).contains(" 0 invalid"), "{files}");
        assert_eq!(tally(&installed), tally(&files), "{files}\n{installed}");
    }
}

/// `harness diff` runs both installers: the flows that changed uplink are named.
fn diff_of_two_installers_names_the_flows_that_changed() {
    let a = format!("jupiter=install:{FIXTURES}/install-seed002");
    let b = format!("jupiter=install:{FIXTURES}/install-seed002-no-wan2");
    let (code, out) = harness(&[
        "diff",
        "--rules",
        &a,
        "--rules",
        &b,
        "scenarios/dual-isp.yaml",
    ]);
    let changed: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("flow "))
        .map(|l| l.trim().split(':').next().unwrap_or(""))
        .collect();
    assert!(
        code == 1 && changed == ["flow 2", "flow 4", "flow 6", "flow 8"],
        "exit {code}:\n{out}"
    );
}

/// Under `--backend legacy` the installer finds `legacy` in `$HARNESS_BACKEND` and loads
/// with iptables-legacy-restore: the snapshot is read with iptables-legacy-save, and coverage
/// counts its rules. An installer that loads with iptables-nft instead is told so.
fn an_installer_is_read_back_with_the_runs_backend() {
    let good = format!("jupiter=install:{FIXTURES}/install-seed002");
    let (code, out) = harness(&[
        "run",
        "--backend",
        "legacy",
        "--coverage",
        "--rules",
        &good,
        "scenarios/dual-isp.yaml",
    ]);
    assert!(
        code == 0 && out.contains("coverage: 12 of 12 iptables rules hit"),
        "exit {code}:\n{out}"
    );
    if harness::model::find_in_path("iptables-nft").is_none() {
        return;
    }
    let wrong = "jupiter=install:iptables-nft -t mangle -A PREROUTING -j ACCEPT";
    let (code, out) = harness(&[
        "run",
        "--backend",
        "legacy",
        "--rules",
        wrong,
        "scenarios/dual-isp.yaml",
    ]);
    assert!(
        code != 0
            && out.contains("it loaded iptables rules with iptables-nft, but this run reads `iptables-legacy-save`"),
        "exit {code}:\n{out}"
    );
}

/// An installer writes into private copies of /etc, /var, /run and /tmp (Shorewall keeps its
/// state in /var/lib/shorewall): nothing it writes reaches the host, and what is there shows
/// through.
fn what_an_installer_writes_stays_in_its_namespace() {
    let name = format!("harness-installer-probe-{}", std::process::id());
    let dirs = ["/etc", "/var/lib", "/var/lock", "/run", "/tmp"];
    let writes: Vec<String> = dirs
        .iter()
        .map(|d| format!("echo x > {d}/{name} && test -s {d}/{name}"))
        .collect();
    let arg = format!(
        "jupiter=install:sh -c 'set -e; test -s /etc/os-release; {}; {FIXTURES}/install-seed002'",
        writes.join("; ")
    );
    let (code, out) = harness(&["run", "--rules", &arg, "scenarios/dual-isp.yaml"]);
    assert!(code == 0, "exit {code}:\n{out}");
    for d in dirs {
        let p = std::path::Path::new(d).join(&name);
        let there = p.exists();
        let _ = std::fs::remove_file(&p);
        assert!(!there, "the installer wrote {} on the host", p.display());
    }
}

/// An installer kept under /tmp (a repository cloned there, a CI job's checkout) runs from its
/// folder as anywhere else: /tmp is overlaid, not replaced, and the installer's working folder
/// is entered through the overlay, so what it writes there stays in its namespace too.
fn an_installer_under_tmp_runs_from_its_folder_and_writes_nothing_there() {
    let dir = tempfile::Builder::new()
        .prefix("harness-installer-in-tmp")
        .tempdir_in("/tmp")
        .expect("a folder under /tmp");
    let fixtures = repo_path(FIXTURES);
    let script = dir.path().join("install");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -eu\ncd \"$(dirname \"$0\")\"\ntest -x ./install\necho x > written-here\nexec {}/install-seed002\n",
            fixtures.display()
        ),
    )
    .expect("writing the installer");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let arg = format!("jupiter=install:{}", script.display());
    let (code, out) = harness(&["run", "--rules", &arg, "scenarios/dual-isp.yaml"]);
    assert!(code == 0, "exit {code}:\n{out}");
    assert!(
        !dir.path().join("written-here").exists(),
        "the installer's write in its own folder reached the host"
    );
}

fn main() {
    let lab = common::Needs::lab();
    let legacy = lab.and(&common::Needs::tool("iptables-legacy-restore", "iptables"));
    let cases: Vec<(&common::Needs, &str, fn())> = vec![
        (
            &lab,
            "a_bundle_names_its_own_routing_tables",
            a_bundle_names_its_own_routing_tables,
        ),
        (
            &lab,
            "a_generators_rt_tables_clash_is_refused_with_its_line",
            a_generators_rt_tables_clash_is_refused_with_its_line,
        ),
        (
            &lab,
            "an_installer_loads_the_rules_itself_and_coverage_sees_them",
            an_installer_loads_the_rules_itself_and_coverage_sees_them,
        ),
        (
            &lab,
            "a_failing_installer_is_quoted",
            a_failing_installer_is_quoted,
        ),
        (
            &lab,
            "an_installer_named_in_yaml_runs_from_the_scenarios_folder",
            an_installer_named_in_yaml_runs_from_the_scenarios_folder,
        ),
        (
            &lab,
            "mutants_of_an_installers_snapshot_fare_as_those_of_its_files",
            mutants_of_an_installers_snapshot_fare_as_those_of_its_files,
        ),
        (
            &lab,
            "diff_of_two_installers_names_the_flows_that_changed",
            diff_of_two_installers_names_the_flows_that_changed,
        ),
        (
            &lab,
            "what_an_installer_writes_stays_in_its_namespace",
            what_an_installer_writes_stays_in_its_namespace,
        ),
        (
            &lab,
            "an_installer_under_tmp_runs_from_its_folder_and_writes_nothing_there",
            an_installer_under_tmp_runs_from_its_folder_and_writes_nothing_there,
        ),
        (
            &legacy,
            "an_installer_is_read_back_with_the_runs_backend",
            an_installer_is_read_back_with_the_runs_backend,
        ),
    ];
    let trials: Vec<Trial> = cases
        .into_iter()
        .map(|(needs, name, f)| {
            needs.trial(name, move || {
                f();
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

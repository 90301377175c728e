//! `ip6tables:` rules (#17), on the dual-stack Jupiter lab with IPv4 and IPv6 flows
//! (fixtures/ip6tables/dual-isp-ip6tables.yaml: seed 002 for both families): a bundle with
//! `### iptables`, `### ip6tables` and `### ip` sections (`--rules jupiter=BUNDLE`), under each
//! `--backend`; its twins, whose ip6tables section ip6tables-restore rejects; an installer
//! that loads both families itself; `harness mutate` on the scenario's `ip6tables:` file.
//!
//! Each runs the harness binary as the user would. Without namespaces (not root, and no user
//! namespaces) the tests say so and pass, unless `CI` or `HARNESS_REQUIRE_LAB` asks for a lab.

use std::process::Command;

mod common;

use harness::model::{find_in_path, repo_path};
use libtest_mimic::{Arguments, Trial};

const FIXTURES: &str = "harness/tests/fixtures/ip6tables";
const SCENARIO: &str = "harness/tests/fixtures/ip6tables/dual-isp-ip6tables.yaml";

use common::harness;

/// The backends this machine has: `system` always, `nft` and `legacy` when their
/// ip6tables-restore is installed.
fn backends() -> Vec<(&'static str, &'static str)> {
    [
        ("system", "ip6tables-restore"),
        ("nft", "ip6tables-nft-restore"),
        ("legacy", "ip6tables-legacy-restore"),
    ]
    .into_iter()
    .filter(|(_, tool)| find_in_path(tool).is_some())
    .collect()
}

/// `run --coverage --json -` with `rules` in jupiter, under `backend`: the coverage rows.
fn coverage(backend: &str, rules: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = harness(&[
        "run",
        "--backend",
        backend,
        "--coverage",
        "--json",
        "-",
        "--rules",
        rules,
        SCENARIO,
    ]);
    assert_eq!(code, 0, "--backend {backend}: exit {code}:\n{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["scenarios"][0]["passed"], true, "{json:#}");
    json["scenarios"][0]["coverage"]
        .as_array()
        .expect("coverage")
        .clone()
}

/// The bundle's ip6tables lines: those of its `### ip6tables` section that are rules.
fn ip6tables_rules(bundle: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(repo_path(bundle)).expect("the bundle");
    let mut section = "";
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(name) = l.strip_prefix("### ") {
            section = if name == "ip6tables" { "6" } else { "" };
        } else if section == "6" && l.starts_with("-A ") {
            out.push((i + 1, l.to_string()));
        }
    }
    out
}

/// Seed 002 for both families in one bundle: the IPv4 and the IPv6 flows hold under every
/// backend, and `--coverage` lists each ip6tables rule at its bundle line with the packets
/// the IPv6 flows sent through it: the nth rules 4 connections each, the masquerade rules as
/// many as left by their uplink (6 by wan1: 4 TCP and 2 UDP; 4 by wan2), as for IPv4.
fn a_dual_stack_bundle_passes_and_coverage_counts_its_ip6tables_rules() {
    let bundle = format!("{FIXTURES}/dual-stack.rules");
    let want = ip6tables_rules(&bundle);
    assert_eq!(want.len(), 12, "{want:?}");
    let rules = format!("jupiter={bundle}");
    let (code, out, err) = harness(&["gate", "--rules", &rules, SCENARIO]);
    assert!(
        code == 0 && out.contains(&format!("PASS {SCENARIO}")),
        "exit {code}:\n{out}{err}"
    );
    for (backend, _) in backends() {
        let hits = coverage(backend, &rules);
        for (line, rule) in &want {
            let hit = hits
                .iter()
                .find(|h| h["line"] == *line && h["shown"].as_str() == Some(bundle.as_str()))
                .unwrap_or_else(|| {
                    panic!("--backend {backend}: line {line} not listed: {hits:#?}")
                });
            assert_eq!(hit["rule"], rule.as_str(), "--backend {backend}");
            let nth = rule.contains("--mode nth");
            let masq = |o: &str| rule.contains(&format!("-o {o} -j MASQUERADE"));
            let packets = hit["packets"].as_u64();
            if nth {
                assert_eq!(packets, Some(4), "--backend {backend}: {hit}");
            } else if masq("eth1") {
                assert_eq!(packets, Some(6), "--backend {backend}: {hit}");
            } else if masq("eth2") {
                assert_eq!(packets, Some(4), "--backend {backend}: {hit}");
            } else {
                assert!(packets > Some(0), "--backend {backend}: {hit}");
            }
        }
        let hit = hits
            .iter()
            .filter(|h| h["packets"].as_u64().is_some_and(|p| p > 0))
            .count();
        assert_eq!(
            hit, 24,
            "--backend {backend}: every rule of both families: {hits:#?}"
        );
        assert_eq!(hits.len(), 24, "--backend {backend}: {hits:#?}");
    }
}

/// The twins: a bad line in the `### ip6tables` section, and seed 002's IPv4 rules under
/// `### ip6tables`. Each is rejected by the backend's ip6tables-restore, exit 2, the bundle's
/// own line quoted with `FILE:LINE`.
fn a_bad_ip6tables_section_is_rejected_with_its_bundle_line() {
    for (backend, tool) in backends() {
        let bad = format!("jupiter={FIXTURES}/dual-stack-bad-line.rules");
        let (code, _, err) = harness(&["run", "--backend", backend, "--rules", &bad, SCENARIO]);
        let first = format!(
            "error: {FIXTURES}/dual-stack-bad-line.rules:45: {tool} rejected this line on node `jupiter`:"
        );
        assert!(
            code == 2 && err.lines().next() == Some(first.as_str()),
            "--backend {backend}: exit {code}:\n{err}"
        );
        assert!(
            err.lines().nth(1).map(str::trim)
                == Some("-A FORWARD -i eth0 -s 2001:db8:157::/64 --frobnicate -j ACCEPT")
                && err.contains("unknown option \"--frobnicate\""),
            "{err}"
        );
        let v4 = format!("jupiter={FIXTURES}/ipv4-under-ip6tables.rules");
        let (code, _, err) = harness(&["run", "--backend", backend, "--rules", &v4, SCENARIO]);
        assert!(
            code == 2
                && err.contains(&format!(
                    "ipv4-under-ip6tables.rules:29: {tool} rejected this line"
                ))
                && err.contains("-A SNAT1 -j SNAT --to-source 10.37.1.253")
                && err
                    .contains("`10.37.1.253` is an IPv4 address: ip6tables holds IPv6 rules only"),
            "--backend {backend}: exit {code}:\n{err}"
        );
    }
}

/// An installer that loads both families itself (its IPv6 routes and rules by single `ip -6`
/// commands): the snapshot reads ip6tables-save back (the run's backend's), the flows of both
/// families hold (so its IPv6 policy routing was in place), and coverage counts every
/// ip6tables rule hit.
fn an_installer_s_ip6tables_rules_are_read_back() {
    let rules = format!("jupiter=install:{FIXTURES}/install-dual-stack");
    for (backend, _) in backends() {
        let hits = coverage(backend, &rules);
        let v6: Vec<&serde_json::Value> = hits
            .iter()
            .filter(|h| {
                h["shown"]
                    .as_str()
                    .is_some_and(|s| s.contains(" (ip6tables-"))
            })
            .collect();
        assert_eq!(v6.len(), 12, "--backend {backend}: {hits:#?}");
        assert!(
            v6.iter().all(|h| h["packets"].as_u64() > Some(0)),
            "--backend {backend}: {v6:#?}"
        );
        assert!(
            v6.iter().any(|h| h["rule"]
                .as_str()
                .is_some_and(|r| r.contains("-s 2001:db8:1:157::/64"))),
            "{v6:#?}"
        );
    }
}

/// `harness mutate` on a scenario with an `ip6tables:` file: its mutants are made as an
/// iptables file's (deleted rules, swapped marks, dropped states, swapped nth packets), each
/// loaded by ip6tables-restore (none invalid), and the IPv6 flows kill them as the IPv4 flows
/// kill seed 002's: only the equivalent ones survive (what no flow of this scenario can show:
/// the ICMPv6 accept in INPUT, RELATED where no flow has an ICMP error). The `-6` lines of the
/// `ip` file are mutated too.
fn mutate_kills_ip6tables_mutants_with_ipv6_flows() {
    let (code, out, err) = harness(&["mutate", SCENARIO]);
    assert_eq!(code, 1, "{out}{err}");
    let file = format!("{FIXTURES}/jupiter.ip6tables:");
    let survivors: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&file))
        .collect();
    assert_eq!(survivors.len(), 3, "{out}");
    for change in [
        "deleted `-A INPUT -p ipv6-icmp -j ACCEPT`",
        "dropped state RELATED from `-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`",
    ] {
        assert!(survivors.iter().any(|s| s.ends_with(change)), "{change}:\n{out}");
    }
    assert!(
        out.contains(&format!(
            "{FIXTURES}/jupiter6.ip:5: deleted `-6 rule add fwmark 1 table rt_link1`"
        )),
        "mark 1 and the main table both lead to wan1: {out}"
    );
    assert!(
        out.contains("43 mutant runs, 43 distinct mutants: 34 killed, 9 survived, 0 invalid"),
        "{out}"
    );
}

/// With ip6tables-restore missing from PATH (iptables-restore and ip there), a scenario with an
/// `ip6tables:` file is refused before anything is built: exit 2, naming the tool, the file
/// that needs it, and its Debian package.
fn a_missing_ip6tables_restore_names_its_package() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for tool in ["iptables-restore", "ip"] {
        let path = find_in_path(tool).expect("the trial needs it");
        std::os::unix::fs::symlink(path, dir.path().join(tool)).expect("a symlink");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "dual-isp-ip6tables.yaml"])
        .current_dir(repo_path(FIXTURES))
        .env("PATH", dir.path())
        .output()
        .expect("the harness runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "error: `ip6tables-restore` is not in PATH (needed for jupiter.ip6tables); install it: \
         apt-get install iptables",
    );
}

fn main() {
    let lab = common::Needs::lab();
    let tools = common::Needs::tool("iptables-restore", "iptables")
        .and(&common::Needs::tool("ip", "iproute2"));
    let cases: Vec<(&common::Needs, &str, fn())> = vec![
        (
            &lab,
            "a_dual_stack_bundle_passes_and_coverage_counts_its_ip6tables_rules",
            a_dual_stack_bundle_passes_and_coverage_counts_its_ip6tables_rules,
        ),
        (
            &lab,
            "a_bad_ip6tables_section_is_rejected_with_its_bundle_line",
            a_bad_ip6tables_section_is_rejected_with_its_bundle_line,
        ),
        (
            &lab,
            "an_installer_s_ip6tables_rules_are_read_back",
            an_installer_s_ip6tables_rules_are_read_back,
        ),
        (
            &lab,
            "mutate_kills_ip6tables_mutants_with_ipv6_flows",
            mutate_kills_ip6tables_mutants_with_ipv6_flows,
        ),
        (
            &tools,
            "a_missing_ip6tables_restore_names_its_package",
            a_missing_ip6tables_restore_names_its_package,
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

//! The conformance suite (scenarios/conformance/, README "The conformance suite") as a
//! generator author uses it: `harness gate --rules jupiter=GEN scenarios/conformance/POLICY`.
//! Each example generator passes the folder written for its policy (exit 0); each broken
//! one fails it (exit 1), and the gate's line names the expectation, the flow and the link
//! that lead to the missing rule.

mod common;

use libtest_mimic::{Arguments, Failed};

/// Runs the harness binary in the repository; its exit code and what it printed.
fn harness_cmd(args: &[&str]) -> Result<(i32, String), Failed> {
    Ok(common::harness_said(args))
}

fn gate(rules: &str, folder: &str) -> Result<(i32, String), Failed> {
    harness_cmd(&[
        "gate",
        "--rules",
        &format!("jupiter={rules}"),
        &format!("scenarios/conformance/{folder}"),
    ])
}

/// `rules` passes every scenario of `folder`.
fn passes(rules: &'static str, folder: &'static str) -> impl FnOnce() -> Result<(), Failed> {
    move || {
        let (code, out) = gate(rules, folder)?;
        if code != 0 || !out.contains("gate: 2 passed, 0 failed, 0 skipped") {
            return Err(format!("`{rules}` should pass {folder} (exit {code}):\n{out}").into());
        }
        Ok(())
    }
}

/// `rules` fails `folder` (exit 1) with a line that says each of `says`.
fn fails(
    rules: &'static str,
    folder: &'static str,
    says: &'static [&'static str],
) -> impl FnOnce() -> Result<(), Failed> {
    move || {
        let (code, out) = gate(rules, folder)?;
        let missing: Vec<&&str> = says.iter().filter(|s| !out.contains(**s)).collect();
        if code != 1 || !missing.is_empty() {
            return Err(format!(
                "`{rules}` should fail {folder} (exit 1) saying {missing:?}; exit {code}:\n{out}"
            )
            .into());
        }
        Ok(())
    }
}

/// A rule set that adds the default route the lab already gave the router is refused with a
/// message that says so and names `route replace`: the rule set's failure (exit 1), not the
/// harness's (exit 2).
fn route_exists() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bundle = dir.path().join("default-again.rules");
    std::fs::write(
        &bundle,
        "### ip\nroute add table 101 default via 10.37.1.254 dev eth1\n\
         route add default via 10.37.1.254 dev eth1\n",
    )
    .map_err(|e| e.to_string())?;
    let (code, out) = gate(&bundle.display().to_string(), "balance-1-1/inbound.yaml")?;
    let said = [
        "default-again.rules:3",
        "File exists",
        "the lab already has this route",
        "DHCP or PPP",
        "`route replace default via 10.37.1.254 dev eth1`",
    ];
    if code != 1 || said.iter().any(|s| !out.contains(s)) {
        return Err(format!("adding the lab's default route again should fail the rule set (exit 1) saying {said:?} (exit {code}):\n{out}").into());
    }
    Ok(())
}

fn main() {
    let lab = common::Needs::lab().and(&common::Needs::tool("python3", "python3"));
    let args = Arguments::from_args();
    let trials = vec![
        lab.trial(
            "balance-1-1: gen-seed002 passes",
            passes("ci/examples/gen-seed002", "balance-1-1"),
        ),
        lab.trial(
            "balance-1-2: gen-seed002 passes (weights from the facts)",
            passes("ci/examples/gen-seed002", "balance-1-2"),
        ),
        lab.trial(
            "failover: gen-failover passes",
            passes("ci/examples/gen-failover", "failover"),
        ),
        // A balancer that hashes addresses: fair only because the flows come from many
        // clients to many servers.
        lab.trial(
            "balance-1-1: gen-ecmp (multipath route, L3 hash) passes",
            passes("ci/examples/gen-ecmp", "balance-1-1"),
        ),
        lab.trial(
            "balance-1-2: gen-ecmp (weighted next hops) passes",
            passes("ci/examples/gen-ecmp", "balance-1-2"),
        ),
        lab.trial(
            "balance-1-1: gen-ecmp with the L4 hash fails, naming the ICMP errors hashed apart",
            fails(
                "ci/examples/gen-ecmp --hash-policy 1",
                "balance-1-1",
                &[
                    "FAIL scenarios/conformance/balance-1-1/outbound.yaml: `udp_and_its_icmp_errors_keep_their_uplink` flow ",
                    "→ ICMP port unreachable left via ",
                ],
            ),
        ),
        // The nth order is seed 002's, not a guarantee: the suite does not judge it.
        lab.trial(
            "balance-1-1: gen-seed002-buggy (nth order off by one) passes",
            passes("ci/examples/gen-seed002-buggy", "balance-1-1"),
        ),
        lab.trial(
            "balance-1-1: no restore for RELATED fails, naming the ICMP error's uplink",
            fails(
                "ci/examples/gen-seed002-no-related",
                "balance-1-1",
                &[
                    "FAIL scenarios/conformance/balance-1-1/outbound.yaml: `udp_and_its_icmp_errors_keep_their_uplink` flow ",
                    "packets left via wan2 and wan1",
                    "ICMP port unreachable left via wan1 with source 10.37.2.253, died at isp1",
                ],
            ),
        ),
        lab.trial(
            "balance-1-1: no mark for inbound connections fails, naming the port forward",
            fails(
                "ci/examples/gen-seed002 --bug-no-inbound-mark",
                "balance-1-1",
                &["FAIL scenarios/conformance/balance-1-1/inbound.yaml: `forward_answered_on_wan2` flow 11: left via wan2, but its replies came back via wan1"],
            ),
        ),
        lab.trial(
            "balance-1-1: SNAT to the wrong address fails, naming the source that left",
            fails(
                "ci/examples/gen-seed002 --bug-snat-wrong-address",
                "balance-1-1",
                &[
                    "FAIL scenarios/conformance/balance-1-1/outbound.yaml: `snat_per_uplink` flow ",
                    "left via wan2 with source 10.37.1.253; the server saw nothing of it (expected source 10.37.2.253)",
                ],
            ),
        ),
        lab.trial(
            "balance-1-2: weights ignored fails the split, with the counts",
            fails(
                "ci/examples/gen-seed002-equal-weights",
                "balance-1-2",
                &["FAIL scenarios/conformance/balance-1-2/outbound.yaml: `split_tcp_by_weights` 600 flows: wan1 300 (expected 200, "],
            ),
        ),
        lab.trial(
            "failover: routes through the dead uplink kept fails, naming the flows",
            fails(
                "ci/examples/gen-failover-routes-kept",
                "failover",
                &["FAIL scenarios/conformance/failover/outbound.yaml: `tcp_on_backup_wan2_once_wan1_is_down` flow 81: left via no uplink, expected only wan2"],
            ),
        ),
        lab.trial(
            "failover: a balancer fails it, naming the flows it sent to wan2",
            fails(
                "ci/examples/gen-seed002",
                "failover",
                &["FAIL scenarios/conformance/failover/outbound.yaml: `tcp_on_primary_wan1_while_up` flow 2: left via wan2, expected only wan1"],
            ),
        ),
        lab.trial(
            "dual-stack-1-1: gen-seed002 passes (IPv6 balanced, NAT66 per uplink)",
            passes("ci/examples/gen-seed002", "dual-stack-1-1"),
        ),
        lab.trial(
            "dual-stack-1-1: a generator that ignores IPv6 fails, naming the split and the replies",
            fails(
                "ci/examples/gen-seed002 --bug-ipv4-only",
                "dual-stack-1-1",
                &[
                    "FAIL scenarios/conformance/dual-stack-1-1/outbound.yaml: `split_tcp6_by_weights` 400 flows: wan1 400 (expected 200, ",
                    "FAIL scenarios/conformance/dual-stack-1-1/inbound.yaml: `router_answers_wan2_on_wan2` flow 19: left via wan2, but its replies came back via wan1",
                ],
            ),
        ),
        lab.trial(
            "dual-stack-1-1: NAT66 on the first uplink only fails, naming the source that died at ISP2",
            fails(
                "ci/examples/gen-seed002 --bug-nat66-first-uplink-only",
                "dual-stack-1-1",
                &[
                    "FAIL scenarios/conformance/dual-stack-1-1/outbound.yaml: `ipv6_source_in_uplink_prefix` flow ",
                    "left via wan2 with source 2001:db8:1:157::",
                    "the server saw nothing of it (expected a source in 2001:db8:2::/48); 1 packet outgoing died at isp2",
                ],
            ),
        ),
        lab.trial(
            "dual-stack-1-1: no IPv6 source rule fails, naming the router's own flows (mwan3's probes)",
            fails(
                "ci/examples/gen-seed002 --bug-no-ipv6-source-rule",
                "dual-stack-1-1",
                &["FAIL scenarios/conformance/dual-stack-1-1/inbound.yaml: `own_from_wan2_address_leaves_by_wan2` flow 27: left via wan1, expected only wan2"],
            ),
        ),
        lab.trial(
            "a route the lab already has: refused, saying so",
            route_exists,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}

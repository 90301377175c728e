//! Topologies generated from one line: `topology: { uplinks: N }` is seed 002's lab with N
//! ISPs — a LAN PC (saturn), the router (jupiter) with uplinks wan1…wanN, ISP routers
//! isp1…ispN with the same ingress filter as topologies/jupiter.yaml, an `internet` backbone
//! and a server (neptune). Pure: the text is parsed and validated like any topology file.

use std::fmt::Write as _;

/// The most uplinks a generated lab has: wan K uses 10.37.K.0/24 and 10.0.K.0/30.
pub const MAX_UPLINKS: u32 = 250;

/// The YAML text of the lab with `n` uplinks (1 ≤ n ≤ [`MAX_UPLINKS`]).
pub fn multi_wan(n: u32) -> String {
    let mut t = format!(
        "# generated: `topology: {{ uplinks: {n} }}`\nname: multi-wan-{n}\n\nnodes:\n  \
         saturn:\n    routes:\n      - default via 192.168.157.253\n  jupiter:\n    \
         sysctls:\n      net.ipv4.ip_forward: 1\n    routes:\n      - default via 10.37.1.254\n"
    );
    for k in 1..=n {
        let _ = write!(
            t,
            "  isp{k}:\n    sysctls:\n      net.ipv4.ip_forward: 1\n    routes:\n      \
             - default via 10.0.{k}.1\n    rules:\n      \
             - pref 100 iif cust from 10.37.{k}.0/24 lookup main\n      \
             - pref 101 iif cust blackhole\n"
        );
    }
    t += "  internet:\n    sysctls:\n      net.ipv4.ip_forward: 1\n    routes:\n";
    for k in 1..=n {
        let _ = writeln!(t, "      - 10.37.{k}.0/24 via 10.0.{k}.2");
    }
    t += "  neptune:\n    routes:\n      - default via 172.16.1.1\n\nlinks:\n";
    t += "  lan: { a: saturn:eth0 192.168.157.3/24, b: jupiter:eth0 192.168.157.253/24 }\n";
    for k in 1..=n {
        let _ = writeln!(
            t,
            "  wan{k}: {{ a: jupiter:eth{k} 10.37.{k}.253/24, b: isp{k}:cust 10.37.{k}.254/24 }}"
        );
    }
    for k in 1..=n {
        let _ = writeln!(
            t,
            "  peer{k}: {{ a: isp{k}:up 10.0.{k}.2/30, b: internet:isp{k} 10.0.{k}.1/30 }}"
        );
    }
    t += "  dc: { a: internet:dc 172.16.1.1/24, b: neptune:eth0 172.16.1.100/24 }\n\n";
    t += "router:\n  node: jupiter\n  uplinks: [";
    t += &(1..=n)
        .map(|k| format!("wan{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    t += "]\n";
    t
}

/// Seed 002's rules for `n` uplinks, as ci/examples/gen-seed002 writes them: nth over the
/// uplinks for new TCP connections from the LAN, the mark saved and restored, SNAT per
/// uplink (iptables-restore input); one routing table per uplink (ip -batch input).
pub fn seed002_rules(n: u32) -> (String, String) {
    let mut ipt = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n");
    for k in 1..=n {
        let _ = writeln!(ipt, ":CONNMARK{k} - [0:0]");
    }
    for k in 1..=n {
        let _ = writeln!(ipt, "-A CONNMARK{k} -j MARK --set-mark {k}");
        let _ = writeln!(ipt, "-A CONNMARK{k} -j CONNMARK --save-mark");
    }
    ipt += "-A PREROUTING -i eth0 -p tcp -m state --state ESTABLISHED,RELATED -j CONNMARK --restore-mark\n";
    for k in 1..=n {
        let _ = writeln!(
            ipt,
            "-A PREROUTING -i eth0 -p tcp -m state --state NEW -m statistic --mode nth --every {n} --packet {} -j CONNMARK{k}",
            k - 1
        );
    }
    ipt += "COMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n";
    for k in 1..=n {
        let _ = writeln!(
            ipt,
            "-A POSTROUTING -o eth{k} -j SNAT --to-source 10.37.{k}.253"
        );
    }
    ipt += "COMMIT\n";
    let mut ip = String::new();
    for k in 1..=n {
        let _ = writeln!(
            ip,
            "route add table {} default via 10.37.{k}.254 dev eth{k}",
            100 + k
        );
        let _ = writeln!(ip, "rule add fwmark {k} table {}", 100 + k);
    }
    (ipt, ip)
}

/// The scale scenario of `harness bench --uplinks`: the lab with `n` uplinks, seed 002's rules
/// for it, `flows` TCP connections from saturn to neptune (one round trip each), and what must
/// hold: they rotate wan1…wanN in order, carry marks 1…N, leave with their uplink's address,
/// never stray, complete.
pub fn nth_scenario(n: u32, flows: usize) -> Result<crate::model::Plan, crate::model::SpecError> {
    let ups: Vec<String> = (1..=n).map(|k| format!("wan{k}")).collect();
    let marks: Vec<String> = (1..=n).map(|k| format!("wan{k}: {k}")).collect();
    let sources: Vec<String> = (1..=n).map(|k| format!("wan{k}: 10.37.{k}.253")).collect();
    // A scenario file holds at most 25000 flows; more are made by scaling it.
    let written = flows.min(crate::model::plan::PORTS_PER_ROUND as usize);
    let text = format!(
        "topology: {{ uplinks: {n} }}\n\
         traffic:\n  - {{ name: web, proto: tcp, from: saturn, to: neptune, port: 80, flows: {written}, round_trips: 1 }}\n\
         expect:\n\
         \x20 - {{ name: rotates, flows: web, sequence: [{}] }}\n\
         \x20 - {{ name: marks, flows: web, mark: {{ {} }} }}\n\
         \x20 - {{ name: snat, flows: web, source: {{ {} }} }}\n\
         \x20 - {{ name: one_uplink, flows: web, one_uplink: true }}\n\
         \x20 - {{ name: completes, flows: web, completes: true }}\n",
        ups.join(", "),
        marks.join(", "),
        sources.join(", ")
    );
    let mut plan =
        crate::model::load_text(std::path::Path::new(&format!("nth-{n}-uplinks")), &text)?;
    if flows > written {
        plan = plan.with_flow_count(flows);
    }
    let (ipt, ip) = seed002_rules(n);
    plan.rules = vec![crate::model::NodeRules {
        node: "jupiter".into(),
        tables: Vec::new(),
        sources: vec![
            crate::model::RuleSource::Inline {
                kind: crate::model::RuleKind::Iptables,
                shown: format!("seed 002 for {n} uplinks (iptables)"),
                text: ipt,
            },
            crate::model::RuleSource::Inline {
                kind: crate::model::RuleKind::Ip,
                shown: format!("seed 002 for {n} uplinks (ip)"),
                text: ip,
            },
        ],
    }];
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    /// The generated text is a valid topology with the right shape, for every size.
    #[rstest]
    #[case(1)]
    #[case(2)]
    #[case(16)]
    #[case(250)]
    fn valid(#[case] n: u32) {
        let t = super::super::topology(Path::new("generated.yaml"), &super::multi_wan(n))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = n as usize;
        assert_eq!(t.nodes.len(), n + 4);
        assert_eq!(t.links.len(), 2 * n + 2);
        assert_eq!(t.router.uplinks.len(), n);
    }

    /// The bench's scale scenario is valid for every size, with N uplinks in its expectations.
    #[rstest]
    #[case(2)]
    #[case(16)]
    fn scale_scenario(#[case] n: u32) {
        let p = super::nth_scenario(n, 100).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.flows.len(), 100);
        assert_eq!(p.topology.router.uplinks.len(), n as usize);
        assert_eq!(p.rules[0].sources.len(), 2);
        let (ipt, ip) = super::seed002_rules(n);
        assert_eq!(ipt.matches("--mode nth").count(), n as usize);
        assert_eq!(ip.lines().count(), 2 * n as usize);
    }

    /// Two uplinks give the lab of topologies/jupiter.yaml: same nodes, links and addresses.
    #[test]
    fn two_uplinks_are_jupiter() {
        let gen = super::super::topology(Path::new("g.yaml"), &super::multi_wan(2)).unwrap();
        let path = crate::model::repo_path("topologies/jupiter.yaml");
        let file = std::fs::read_to_string(&path).unwrap();
        let jupiter = super::super::topology(&path, &file).unwrap();
        let shape = |t: &crate::model::Topology| {
            let mut links: Vec<String> = t
                .links
                .iter()
                .map(|l| {
                    format!(
                        "{} {}:{} {}:{}",
                        l.name, l.a.node, l.a.iface, l.b.node, l.b.iface
                    )
                })
                .collect();
            links.sort();
            links
        };
        assert_eq!(shape(&gen), shape(&jupiter));
    }
}

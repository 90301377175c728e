//! `traffic:`: the flows to drive, one per connection or exchange.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::doc::{unknown_name, valid_name, Doc};
use super::{
    client_port, raw, FlowSpec, IpFamily, Proto, SpecError, Topology, DEFAULT_TIMEOUT, MAX_FLOWS,
    MAX_ROUND_TRIPS,
};

/// What a destination address is when no flow can reach a server at it: loopback (the
/// client's own), multicast, unspecified, the limited broadcast, or (IPv6) link-local, which
/// needs an interface to mean anything.
fn not_unicast(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address (the client's own `lo`)"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.octets()[0] == 0 => Some("in 0.0.0.0/8"),
        IpAddr::V4(a) if a == Ipv4Addr::BROADCAST => Some("the limited broadcast address"),
        IpAddr::V6(a) if a.is_loopback() => Some("the loopback address (the client's own `lo`)"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_unicast_link_local() => {
            Some("link-local (fe80::/10), which means nothing without an interface")
        }
        _ => None,
    }
}

/// `ipv4` or `ipv6`, as written in messages.
fn family_name(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    }
}

fn family_of(a: IpAddr) -> IpFamily {
    if a.is_ipv6() {
        IpFamily::V6
    } else {
        IpFamily::V4
    }
}

/// The address a `dial:` names: `ADDR`, `ADDR:PORT` or `[ADDR6]:PORT`.
fn parse_dial(d: &str, port: u16) -> Option<SocketAddr> {
    d.parse::<SocketAddr>()
        .ok()
        .or_else(|| d.parse::<IpAddr>().ok().map(|a| SocketAddr::new(a, port)))
}

/// The family a traffic entry's flows use: `family:`, else that of the addresses it writes,
/// else IPv4.
fn family(doc: &Doc, path: &str, t: &raw::TrafficDef) -> Result<IpFamily, SpecError> {
    let written = [
        (
            "address",
            t.address.as_deref().and_then(|a| a.parse::<IpAddr>().ok()),
        ),
        (
            "from_address",
            t.from_address
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok()),
        ),
        (
            "dial",
            t.dial
                .as_deref()
                .and_then(|d| parse_dial(d, t.port))
                .map(|s| s.ip()),
        ),
    ];
    let stated = t.family.map(|f| match f {
        raw::FamilyDef::Ipv4 => IpFamily::V4,
        raw::FamilyDef::Ipv6 => IpFamily::V6,
    });
    let mut fam = stated;
    for (key, a) in written {
        let Some(a) = a else { continue };
        match fam {
            Some(f) if f != family_of(a) => {
                return Err(doc.err(
                    &format!("{path}.{key}"),
                    format!(
                        "`{key}: {a}` is an {} address, and this traffic's flows are {}{}: write one family",
                        family_name(family_of(a)),
                        family_name(f),
                        if stated.is_some() { " (`family:`)" } else { "" }
                    ),
                ))
            }
            _ => fam = Some(family_of(a)),
        }
    }
    Ok(fam.unwrap_or(IpFamily::V4))
}

/// The most padding a request carries (`size:`): enough to fill a few jumbo frames.
const MAX_SIZE: u32 = 65_536;

/// A duration as a scenario writes it: `2s`, `300ms`.
pub fn human(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `1s`, `500ms`, `2.5s`
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0 && v < 3600.0).then(|| Duration::from_secs_f64(v * scale))
}
pub(super) fn flows(
    doc: &Doc,
    topo: &Topology,
    traffic: &[raw::TrafficDef],
) -> Result<Vec<FlowSpec>, SpecError> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, t) in traffic.iter().enumerate() {
        let path = format!("traffic[{i}]");
        let group = t
            .name
            .clone()
            .unwrap_or_else(|| format!("traffic{}", i + 1));
        if !valid_name(&group) || ["all", "tcp", "udp"].contains(&group.as_str()) {
            return Err(doc.err(&format!("{path}.name"), format!("traffic name `{group}`: use letters, digits, `-`, `_` (not `all`, `tcp`, `udp`)")));
        }
        if !names.insert(group.clone()) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!("traffic name `{group}` is used twice"),
            ));
        }
        let fam = family(doc, &path, t)?;
        let none_of_family = |node: &str| {
            format!(
                "node `{node}` has no {0} address to use: give one of its link ends an {0} address{1}",
                family_name(fam),
                match fam {
                    IpFamily::V4 => ", or make the flows IPv6 (`family: ipv6`)",
                    IpFamily::V6 => ", or make the flows IPv4 (`family: ipv4`)",
                }
            )
        };
        // The node's addresses of the flows' family, in link order, each once.
        let addrs = |node: &str| -> Vec<IpAddr> {
            let mut all: Vec<IpAddr> = Vec::new();
            for a in topo.ends_of(node).flat_map(|e| e.addrs.iter()) {
                if family_of(a.addr()) == fam && !all.contains(&a.addr()) {
                    all.push(a.addr());
                }
            }
            all
        };
        let addr_of = |key: &str, node: &str| -> Result<IpAddr, SpecError> {
            if topo.node(node).is_none() {
                let have: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
                return Err(doc.err(
                    &format!("{path}.{key}"),
                    unknown_name("node", node, &have, "the topology has"),
                ));
            }
            addrs(node)
                .first()
                .copied()
                .ok_or_else(|| doc.err(&format!("{path}.{key}"), none_of_family(node)))
        };
        let mut client = addr_of("from", &t.from)?;
        let mut server = addr_of("to", &t.to)?;
        let unspecified = match fam {
            IpFamily::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpFamily::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        // An address of the node, chosen by `key` (or `any` where allowed).
        let own = |key: &str, node: &str, text: &str, any_ok: bool| -> Result<IpAddr, SpecError> {
            let p = format!("{path}.{key}");
            if any_ok && text == "any" {
                return Ok(unspecified);
            }
            let a: IpAddr = text.parse().map_err(|_| {
                doc.err(
                    &p,
                    format!(
                        "`{text}` is not an address{}",
                        if any_ok { " (or `any`)" } else { "" }
                    ),
                )
            })?;
            let mine: Vec<String> = addrs(node).iter().map(IpAddr::to_string).collect();
            if !mine.contains(&a.to_string()) {
                return Err(doc.err(
                    &p,
                    format!(
                        "{a} is not an {} address of `{node}` (it has {})",
                        family_name(fam),
                        if mine.is_empty() {
                            "none".to_string()
                        } else {
                            mine.join(", ")
                        }
                    ),
                ));
            }
            Ok(a)
        };
        // `each`: the flows take the node's addresses in turn (client first, then server), so
        // that flows from many clients to many servers meet hashing balancers as real ones do.
        let each = |key: &str, node: &str| -> Result<Vec<IpAddr>, SpecError> {
            let all = addrs(node);
            if all.is_empty() {
                return Err(doc.err(&format!("{path}.{key}"), none_of_family(node)));
            }
            Ok(all)
        };
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        match t.address.as_deref() {
            Some("each") => servers = each("address", &t.to)?,
            Some(a) => server = own("address", &t.to, a, false)?,
            None => {}
        }
        match t.from_address.as_deref() {
            Some("each") => clients = each("from_address", &t.from)?,
            Some(a) => client = own("from_address", &t.from, a, true)?,
            None => {}
        }
        if !servers.is_empty() && t.dial.is_some() {
            return Err(doc.err(
                &format!("{path}.dial"),
                "`address: each` spreads the flows over the server's addresses: it needs no `dial`",
            ));
        }
        let dial = match &t.dial {
            None => SocketAddr::new(server, t.port),
            Some(d) => parse_dial(d, t.port).ok_or_else(|| {
                doc.err(
                    &format!("{path}.dial"),
                    format!("`{d}` is not `ADDRESS`, `ADDRESS:PORT` or `[IPV6]:PORT`"),
                )
            })?,
        };
        if let Some(what) = not_unicast(dial.ip()) {
            return Err(doc.err(
                &format!("{path}.dial"),
                format!("`dial: {}`: {} is {what}; dial an address of the lab (a node's, or one the router forwards)", dial, dial.ip()),
            ));
        }
        if dial.port() == 0 {
            return Err(doc.err(
                &format!("{path}.dial"),
                format!("`dial: {dial}`: port 0 cannot be dialled; pick 1 to 65535"),
            ));
        }
        if t.from == t.to {
            return Err(doc.err(
                &format!("{path}.to"),
                "a flow goes from one node to another",
            ));
        }
        if t.port == 0 {
            return Err(doc.err(
                &format!("{path}.port"),
                "port 0 cannot be served; pick 1 to 65535",
            ));
        }
        if t.flows == 0 {
            return Err(doc.err(&format!("{path}.flows"), "`flows` starts at 1"));
        }
        if t.round_trips == 0 || t.round_trips > MAX_ROUND_TRIPS {
            return Err(doc.err(
                &format!("{path}.round_trips"),
                format!(
                    "`round_trips: {}`: a flow makes 1 to {MAX_ROUND_TRIPS} round trips",
                    t.round_trips
                ),
            ));
        }
        let duration = |key: &str, v: &Option<String>| -> Result<Option<Duration>, SpecError> {
            v.as_ref()
                .map(|s| {
                    parse_duration(s).ok_or_else(|| {
                        doc.err(
                            &format!("{path}.{key}"),
                            format!("{key} `{s}`: write e.g. `1s` or `500ms`"),
                        )
                    })
                })
                .transpose()
        };
        let interval = duration("interval", &t.interval)?.unwrap_or_default();
        let pace = duration("pace", &t.pace)?;
        // With pauses between round trips the default timeout covers them: a second more than
        // the pauses take.
        let timeout = duration("timeout", &t.timeout)?
            .unwrap_or(DEFAULT_TIMEOUT + interval * t.round_trips.saturating_sub(1));
        let proto = match t.proto {
            raw::ProtoDef::Tcp => Proto::Tcp,
            raw::ProtoDef::Udp => Proto::Udp,
        };
        let size = t.size.unwrap_or(0);
        if size > 0 && proto != Proto::Tcp {
            return Err(doc.err(&format!("{path}.size"), "`size` pads TCP requests (a segment larger than a link's MTU is cut down by path MTU discovery); a UDP datagram that does not fit is lost, not resent"));
        }
        if size > MAX_SIZE {
            return Err(doc.err(
                &format!("{path}.size"),
                format!("`size: {size}`: at most {MAX_SIZE} bytes"),
            ));
        }
        if t.related_probe && proto != Proto::Udp {
            return Err(doc.err(&format!("{path}.related_probe"), "a RELATED probe (a late datagram answered by ICMP port unreachable) is for UDP traffic"));
        }
        for k in 0..t.flows as usize {
            let id = out.len() as u32 + 1;
            // Client addresses turn fastest: with both `each`, every pair comes once before any
            // comes twice.
            let (client, server, dial) = {
                let c = clients
                    .get(k % clients.len().max(1))
                    .copied()
                    .unwrap_or(client);
                let rest = if clients.is_empty() {
                    k
                } else {
                    k / clients.len()
                };
                match servers.get(rest % servers.len().max(1)) {
                    Some(&s) => (c, s, SocketAddr::new(s, t.port)),
                    None => (c, server, dial),
                }
            };
            if id > MAX_FLOWS {
                return Err(doc.err(
                    &format!("{path}.flows"),
                    format!("at most {MAX_FLOWS} flows per scenario"),
                ));
            }
            out.push(FlowSpec {
                id,
                group: group.clone(),
                proto,
                client_node: t.from.clone(),
                client: SocketAddr::new(client, client_port(id)),
                server_node: t.to.clone(),
                server: SocketAddr::new(server, t.port),
                dial,
                round_trips: t.round_trips,
                timeout,
                related_probe: t.related_probe,
                size,
                interval,
                pace,
                craft: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::model::{load, load_text, repo_path};
    use std::collections::BTreeSet;

    /// `from_address: each` and `address: each`: the client's addresses turn fastest, and
    /// every client/server pair comes once before any comes twice.
    #[test]
    fn each_walks_every_client_server_pair_once() {
        let plan = load(&repo_path(
            "scenarios/conformance/balance-1-1/outbound.yaml",
        ))
        .expect("valid");
        let tcp: Vec<_> = plan.flows.iter().filter(|f| f.group == "tcp_out").collect();
        let at = |i: usize| {
            (
                tcp[i].client.ip().to_string(),
                tcp[i].server.ip().to_string(),
            )
        };
        assert_eq!(at(0), ("192.168.157.3".into(), "172.16.1.100".into()));
        assert_eq!(at(1), ("192.168.157.100".into(), "172.16.1.100".into()));
        assert_eq!(at(32), ("192.168.157.3".into(), "172.16.1.101".into()));
        let pairs: BTreeSet<_> = tcp.iter().map(|f| (f.client.ip(), f.server.ip())).collect();
        assert_eq!(pairs.len(), tcp.len(), "600 flows, 600 pairs");
        assert!(tcp.iter().all(|f| f.dial == f.server));
        // Each traffic entry starts again from the first pair.
        let udp = plan
            .flows
            .iter()
            .find(|f| f.group == "udp_out")
            .expect("udp");
        assert_eq!(udp.server.ip(), tcp[0].server.ip());
    }

    #[test]
    fn each_server_address_and_a_dial_are_refused() {
        let path = repo_path("scenarios/conformance/balance-1-1/x.yaml");
        let text = "topology: ../../../topologies/conformance.yaml\n\
                    traffic:\n  - { proto: tcp, from: saturn, to: neptune, address: each, dial: 10.37.1.253, port: 80 }\n\
                    expect:\n  - { completes: true }\n";
        let e = load_text(&path, text).expect_err("dial with each");
        assert!(e.to_string().contains("`address: each`"), "{e}");
    }

    /// A flow's family: `family:`, else the addresses written, else IPv4; the node's first
    /// address of that family is used where none is written.
    #[test]
    fn a_flow_s_family_is_stated_or_read_from_its_addresses() {
        let path = repo_path("scenarios/x.yaml");
        let text = "topology: ../topologies/jupiter-dual.yaml\n\
                    traffic:\n\
                    \x20 - { name: v4, proto: tcp, from: saturn, to: neptune, port: 80 }\n\
                    \x20 - { name: v6, proto: tcp, from: saturn, to: neptune, port: 80, family: ipv6 }\n\
                    \x20 - { name: dial6, proto: udp, from: saturn, to: neptune, port: 53, dial: \"[2001:db8:16::100]:5353\" }\n\
                    \x20 - { name: any6, proto: tcp, from: saturn, to: neptune, port: 80, from_address: any, address: \"2001:db8:16::100\", size: 3000 }\n\
                    expect:\n  - { completes: true }\n";
        let plan = load_text(&path, text).expect("valid");
        let f = |g: &str| plan.flows.iter().find(|f| f.group == g).expect("flow");
        assert_eq!(f("v4").client.to_string(), "192.168.157.3:40001");
        assert_eq!(f("v4").dial.to_string(), "172.16.1.100:80");
        assert_eq!(f("v6").client.to_string(), "[2001:db8:1:157::3]:40002");
        assert_eq!(f("v6").dial.to_string(), "[2001:db8:16::100]:80");
        assert_eq!(f("dial6").server.to_string(), "[2001:db8:16::100]:53");
        assert_eq!(f("dial6").dial.to_string(), "[2001:db8:16::100]:5353");
        assert_eq!(f("any6").client.to_string(), "[::]:40004");
        assert_eq!(f("any6").size, 3000);
    }

    /// `source:` takes an address or a prefix; two for one uplink clash only when no address
    /// can satisfy both.
    #[test]
    fn a_source_is_an_address_or_a_prefix() {
        use crate::model::{Check, Within};
        let w = |s: &str| s.parse::<Within>().expect("parses");
        assert!(w("2001:db8:2::/48").contains("2001:db8:2:0:1::5".parse().unwrap()));
        assert!(!w("2001:db8:2::/48").contains("2001:db8:3::5".parse().unwrap()));
        assert_eq!(w("10.37.2.253").to_string(), "10.37.2.253");
        assert_eq!(w("2001:db8:2::/48").to_string(), "one in 2001:db8:2::/48");
        assert!(
            "2001:db8:2::5/48".parse::<Within>().is_err(),
            "host bits set"
        );
        let path = repo_path("scenarios/x.yaml");
        let base = "topology: ../topologies/jupiter-dual.yaml\n\
                    traffic:\n  - { name: v6, proto: tcp, from: saturn, to: neptune, port: 80, family: ipv6 }\n\
                    expect:\n";
        let ok = format!("{base}  - {{ name: a, source: {{ wan2: \"2001:db8:2::/48\" }} }}\n  - {{ name: b, source: {{ wan2: \"2001:db8:2::253\" }} }}\n");
        let plan = load_text(&path, &ok).expect("a prefix and an address in it agree");
        assert!(
            matches!(&plan.expectations[0].check, Check::Source(m) if m["wan2"] == w("2001:db8:2::/48"))
        );
        let clash = format!("{base}  - {{ name: a, source: {{ wan2: \"2001:db8:2::/48\" }} }}\n  - {{ name: b, source: {{ wan2: \"2001:db8:3::1\" }} }}\n");
        let e = load_text(&path, &clash).expect_err("no address is in both");
        assert!(e.to_string().contains("wan2"), "{e}");
    }

    /// `flows:` lists take traffic names beside flow ids: in the order written, each flow once.
    #[test]
    fn a_flow_list_takes_names_and_ids() {
        let path = repo_path("scenarios/x.yaml");
        let text = "topology: ../topologies/jupiter-dual.yaml\n\
                    traffic:\n\
                    \x20 - { name: web, proto: tcp, from: saturn, to: neptune, port: 80, flows: 2 }\n\
                    \x20 - { name: dns, proto: udp, from: saturn, to: neptune, port: 53, flows: 2 }\n\
                    expect:\n  - { flows: [dns, 1, web], completes: true }\n";
        let plan = load_text(&path, text).expect("valid");
        assert_eq!(plan.expectations[0].flows, [3, 4, 1, 2]);
        assert_eq!(plan.expectations[0].selector, "[dns, 1, web]");
    }
}

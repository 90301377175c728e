//! `traffic:`: the flows to drive, one per connection or exchange.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::doc::{unknown_name, valid_name, Doc};
use super::{
    client_port, raw, FlowSpec, Proto, SpecError, Topology, DEFAULT_TIMEOUT, MAX_FLOWS,
    MAX_ROUND_TRIPS,
};

/// What a destination address is when no flow can reach a server at it: loopback (the
/// client's own), multicast, unspecified or the limited broadcast.
fn not_unicast(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_loopback() {
        Some("a loopback address (the client's own `lo`)")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.octets()[0] == 0 {
        Some("in 0.0.0.0/8")
    } else if a == Ipv4Addr::BROADCAST {
        Some("the limited broadcast address")
    } else {
        None
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
        let addr_of = |key: &str, node: &str| -> Result<Ipv4Addr, SpecError> {
            if topo.node(node).is_none() {
                let have: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
                return Err(doc.err(
                    &format!("{path}.{key}"),
                    unknown_name("node", node, &have, "the topology has"),
                ));
            }
            topo.primary_addr(node).ok_or_else(|| {
                doc.err(
                    &format!("{path}.{key}"),
                    format!("node `{node}` has no IPv4 address to use: flows are IPv4 for now; give one of its link ends an IPv4 address"),
                )
            })
        };
        let mut client = addr_of("from", &t.from)?;
        let mut server = addr_of("to", &t.to)?;
        // An address of the node, chosen by `key` (or `any` where allowed).
        let own =
            |key: &str, node: &str, text: &str, any_ok: bool| -> Result<Ipv4Addr, SpecError> {
                let p = format!("{path}.{key}");
                if any_ok && text == "any" {
                    return Ok(Ipv4Addr::UNSPECIFIED);
                }
                let a: Ipv4Addr = text.parse().map_err(|_| {
                    doc.err(
                        &p,
                        format!(
                            "`{text}` is not an IPv4 address{}",
                            if any_ok { " (or `any`)" } else { "" }
                        ),
                    )
                })?;
                let mine: Vec<String> = topo
                    .ends_of(node)
                    .flat_map(|e| e.v4())
                    .map(|n| n.addr().to_string())
                    .collect();
                if !mine.contains(&a.to_string()) {
                    return Err(doc.err(
                        &p,
                        format!(
                            "{a} is not an address of `{node}` (it has {})",
                            mine.join(", ")
                        ),
                    ));
                }
                Ok(a)
            };
        // `each`: the flows take the node's addresses in turn (client first, then server), so
        // that flows from many clients to many servers meet hashing balancers as real ones do.
        let each = |key: &str, node: &str| -> Result<Vec<Ipv4Addr>, SpecError> {
            let mut all: Vec<Ipv4Addr> = Vec::new();
            for a in topo.ends_of(node).flat_map(|e| e.v4()) {
                if !all.contains(&a.addr()) {
                    all.push(a.addr());
                }
            }
            if all.is_empty() {
                return Err(doc.err(
                    &format!("{path}.{key}"),
                    format!("node `{node}` has no IPv4 address to use: flows are IPv4 for now; give one of its link ends an IPv4 address"),
                ));
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
            None => SocketAddrV4::new(server, t.port),
            Some(d) => d
                .parse::<SocketAddrV4>()
                .or_else(|_| d.parse::<Ipv4Addr>().map(|a| SocketAddrV4::new(a, t.port)))
                .map_err(|_| {
                    doc.err(
                        &format!("{path}.dial"),
                        format!("`{d}` is not `ADDRESS` or `ADDRESS:PORT`"),
                    )
                })?,
        };
        if let Some(what) = not_unicast(*dial.ip()) {
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
        let timeout = match &t.timeout {
            None => DEFAULT_TIMEOUT,
            Some(s) => parse_duration(s).ok_or_else(|| {
                doc.err(
                    &format!("{path}.timeout"),
                    format!("timeout `{s}`: write e.g. `1s` or `500ms`"),
                )
            })?,
        };
        let proto = match t.proto {
            raw::ProtoDef::Tcp => Proto::Tcp,
            raw::ProtoDef::Udp => Proto::Udp,
        };
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
                    Some(&s) => (c, s, SocketAddrV4::new(s, t.port)),
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
                client: SocketAddrV4::new(client, client_port(id)),
                server_node: t.to.clone(),
                server: SocketAddrV4::new(server, t.port),
                dial,
                round_trips: t.round_trips,
                timeout,
                related_probe: t.related_probe,
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
}

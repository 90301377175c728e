//! What a rule generator is told about the lab: the topology's facts as JSON. Pure.

use serde_json::{json, Value};

use super::{End, Topology};

fn end(e: &End) -> Value {
    json!({
        "node": e.node,
        "iface": e.iface,
        "addresses": e.v4().map(|a| a.to_string()).collect::<Vec<_>>(),
        "addresses6": e.v6().map(|a| a.to_string()).collect::<Vec<_>>(),
        "mac": e.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
    })
}

/// The facts for a generator making `node`'s rules: every node's interfaces, every link, and
/// the router's LAN ports and uplinks with their address, gateway and weight. Each port's
/// first IPv4 address is `address`/`prefix`/`network`/`gateway` (null without one) and its
/// first IPv6 one `address6`/`prefix6`/`network6`/`gateway6`; an interface lists its IPv4
/// addresses under `addresses` and its IPv6 ones under `addresses6`.
///
/// ```json
/// { "node": "jupiter", "topology": "jupiter",
///   "router": { "node": "jupiter",
///     "lan": [ { "link": "lan", "iface": "eth0", "address": "192.168.157.253", "prefix": 24, "network": "192.168.157.0/24" } ],
///     "uplinks": [ { "link": "wan1", "iface": "eth1", "address": "10.37.1.253", "prefix": 24,
///                    "network": "10.37.1.0/24", "gateway": "10.37.1.254",
///                    "address6": "2001:db8:1::253", "prefix6": 64, "network6": "2001:db8:1::/64",
///                    "gateway6": "2001:db8:1::254", "weight": 1 }, … ] },
///   "nodes": [ … ], "links": [ … ] }
/// ```
pub fn facts(topo: &Topology, node: &str) -> Value {
    let r = &topo.router;
    let port = |link: &super::Link| {
        let (mine, peer) = if link.a.node == r.node {
            (&link.a, &link.b)
        } else {
            (&link.b, &link.a)
        };
        let a = mine.v4().next();
        let a6 = mine.v6().next();
        json!({
            "link": link.name,
            "iface": mine.iface,
            "address": a.map(|a| a.addr().to_string()),
            "prefix": a.map(|a| a.prefix_len()),
            "network": a.map(|a| a.trunc().to_string()),
            "gateway": peer.v4().next().map(|p| p.addr().to_string()),
            "address6": a6.map(|a| a.addr().to_string()),
            "prefix6": a6.map(|a| a.prefix_len()),
            "network6": a6.map(|a| a.trunc().to_string()),
            "gateway6": peer.v6().next().map(|p| p.addr().to_string()),
            "weight": r.weights.iter().find(|(l, _)| *l == link.name).map_or(1, |(_, w)| *w),
        })
    };
    let ours = |l: &&super::Link| l.a.node == r.node || l.b.node == r.node;
    json!({
        "node": node,
        "topology": topo.name,
        "router": {
            "node": r.node,
            "uplinks": r.uplinks.iter().filter_map(|u| topo.link(u)).map(port).collect::<Vec<_>>(),
            "lan": topo.links.iter().filter(ours).filter(|l| !r.uplinks.contains(&l.name)).map(port).collect::<Vec<_>>(),
        },
        "nodes": topo.nodes.iter().map(|n| json!({
            "name": n.name,
            "interfaces": topo.ends_of(&n.name).map(end).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "links": topo.links.iter().map(|l| json!({ "name": l.name, "a": end(&l.a), "b": end(&l.b) })).collect::<Vec<_>>(),
    })
}

/// The router's uplinks for a shell program, `HARNESS_UPLINKS`: one word per uplink in the
/// router's order, `LINK,IFACE,ADDRESS,GATEWAY,ADDRESS6,GATEWAY6` (the router's end's first
/// address of each family and the other end's; `-` where there is none), e.g.
/// `wan1,eth1,10.37.1.253,10.37.1.254,-,- wan2,eth2,10.37.2.253,10.37.2.254,-,-`.
pub fn uplinks_env(topo: &Topology) -> String {
    let r = &topo.router;
    let dash = |a: Option<String>| a.unwrap_or_else(|| "-".into());
    r.uplinks
        .iter()
        .filter_map(|u| topo.link(u))
        .map(|link| {
            let (mine, peer) = if link.a.node == r.node {
                (&link.a, &link.b)
            } else {
                (&link.b, &link.a)
            };
            [
                link.name.clone(),
                mine.iface.clone(),
                dash(mine.v4().next().map(|a| a.addr().to_string())),
                dash(peer.v4().next().map(|a| a.addr().to_string())),
                dash(mine.v6().next().map(|a| a.addr().to_string())),
                dash(peer.v6().next().map(|a| a.addr().to_string())),
            ]
            .join(",")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use crate::model::{load, repo_path};

    #[test]
    fn the_router_s_uplinks_come_with_address_gateway_and_weight() {
        let plan = load(&repo_path("scenarios/dual-isp.yaml")).expect("valid");
        let f = super::facts(&plan.topology, "jupiter");
        let up = &f["router"]["uplinks"];
        assert_eq!(up[1]["iface"], "eth2");
        assert_eq!(up[1]["address"], "10.37.2.253");
        assert_eq!(up[1]["gateway"], "10.37.2.254");
        assert_eq!(up[1]["network"], "10.37.2.0/24");
        assert_eq!(up[1]["weight"], 1);
        assert_eq!(f["router"]["lan"][0]["iface"], "eth0");
        assert_eq!(f["nodes"].as_array().map(Vec::len), Some(6));
        assert_eq!(
            super::uplinks_env(&plan.topology),
            "wan1,eth1,10.37.1.253,10.37.1.254,-,- wan2,eth2,10.37.2.253,10.37.2.254,-,-"
        );
    }

    #[test]
    fn ipv6_facts_sit_beside_the_ipv4_ones() {
        let file = repo_path("topologies/jupiter-dual.yaml");
        let text = std::fs::read_to_string(&file).expect("readable");
        let topo = crate::model::topology(&file, &text).expect("valid");
        let f = super::facts(&topo, "jupiter");
        let up = &f["router"]["uplinks"][0];
        assert_eq!(up["address"], "10.37.1.253");
        assert_eq!(up["address6"], "2001:db8:1::253");
        assert_eq!(up["prefix6"], 64);
        assert_eq!(up["network6"], "2001:db8:1::/64");
        assert_eq!(up["gateway6"], "2001:db8:1::254");
        let saturn = &f["nodes"].as_array().expect("nodes")[0]["interfaces"][0];
        assert_eq!(saturn["addresses"][0], "192.168.157.3/24");
        assert_eq!(saturn["addresses6"][0], "2001:db8:1:157::3/64");
        assert!(super::uplinks_env(&topo).starts_with(
            "wan1,eth1,10.37.1.253,10.37.1.254,2001:db8:1::253,2001:db8:1::254 wan2,"
        ));
    }
}

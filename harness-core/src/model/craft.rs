//! `craft:`: packets the harness builds and injects on a link, as flows of their own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::doc::{unknown_name, valid_name, Doc};
use super::{
    raw, Craft, CraftKind, FlowSpec, Proto, SpecError, Topology, DEFAULT_TIMEOUT, MAX_FLOWS,
};

/// Crafted packets become flows after the traffic's, one per `count`.
pub(super) fn crafted(
    doc: &Doc,
    topo: &Topology,
    raw: &[raw::CraftDef],
    flows: &mut Vec<FlowSpec>,
) -> Result<(), SpecError> {
    for (i, c) in raw.iter().enumerate() {
        let path = format!("craft[{i}]");
        let group = c.name.clone().unwrap_or_else(|| format!("craft{}", i + 1));
        if !valid_name(&group) || flows.iter().any(|f| f.group == group) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!(
                    "name `{group}`: letters, digits, `-`, `_`, not used by another traffic entry"
                ),
            ));
        }
        let kind = match c.packet.as_str() {
            "echo-reply" => CraftKind::EchoReply,
            other => {
                return Err(doc.err(
                    &format!("{path}.packet"),
                    format!("unknown packet `{other}`; the harness crafts: echo-reply"),
                ))
            }
        };
        let Some(link) = topo.link(&c.link) else {
            let have: Vec<&str> = topo.links.iter().map(|l| l.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.link"),
                unknown_name("link", &c.link, &have, "links:"),
            ));
        };
        if link.a.node != c.from && link.b.node != c.from {
            return Err(doc.err(
                &format!("{path}.from"),
                format!(
                    "`{}` is not an end of link `{}` ({} and {})",
                    c.from, c.link, link.a.node, link.b.node
                ),
            ));
        }
        let addr = |key: &str, text: &str| -> Result<IpAddr, SpecError> {
            text.parse().map_err(|_| {
                doc.err(
                    &format!("{path}.{key}"),
                    format!("`{text}` is not an IP address"),
                )
            })
        };
        let (src, dst) = (addr("src", &c.src)?, addr("dst", &c.dst)?);
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(doc.err(
                &format!("{path}.dst"),
                format!("`src: {src}` and `dst: {dst}` are of two families: a packet has one"),
            ));
        }
        // The node that owns the destination, if any, is where the packet is delivered.
        let to_node = topo
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .find(|e| e.addrs.iter().any(|a| a.addr() == dst))
            .map_or_else(|| "none".to_string(), |e| e.node.clone());
        if c.count == 0 {
            return Err(doc.err(&format!("{path}.count"), "`count` starts at 1"));
        }
        if u64::from(c.count) + flows.len() as u64 > u64::from(MAX_FLOWS) {
            return Err(doc.err(
                &format!("{path}.count"),
                format!("at most {MAX_FLOWS} flows per scenario, crafted packets included"),
            ));
        }
        for _ in 0..c.count {
            let id = flows.len() as u32 + 1;
            flows.push(FlowSpec {
                id,
                group: group.clone(),
                proto: Proto::Icmp,
                client_node: c.from.clone(),
                client: SocketAddr::new(src, id as u16),
                server_node: to_node.clone(),
                server: SocketAddr::new(dst, 0),
                dial: SocketAddr::new(dst, 0),
                round_trips: 1,
                timeout: DEFAULT_TIMEOUT,
                related_probe: false,
                size: 0,
                interval: Duration::ZERO,
                pace: None,
                craft: Some(Craft {
                    kind,
                    link: c.link.clone(),
                    from: c.from.clone(),
                }),
            });
        }
    }
    Ok(())
}

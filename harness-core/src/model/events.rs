//! `events:`: link ends set down or up between traffic groups.

use std::collections::BTreeSet;

use super::doc::{unknown_name, Doc};
use super::{raw, Event, FlowSpec, SpecError, Topology};

pub(super) fn events(
    doc: &Doc,
    topo: &Topology,
    flows: &[FlowSpec],
    raw: &[raw::EventDef],
) -> Result<Vec<Event>, SpecError> {
    let mut out = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        let path = format!("events[{i}]");
        let (link_name, up) = match (&e.down, &e.up) {
            (Some(l), None) => (l, false),
            (None, Some(l)) => (l, true),
            _ => return Err(doc.err(&path, "an event is `down: LINK` or `up: LINK`")),
        };
        let Some(link) = topo.link(link_name) else {
            let have: Vec<&str> = topo.links.iter().map(|l| l.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.{}", if up { "up" } else { "down" }),
                unknown_name("link", link_name, &have, "links:"),
            ));
        };
        // By default the far end from the router: the router sees its carrier go, as when
        // the modem or the ISP fails.
        let end = match &e.end {
            Some(n) if *n == link.a.node => &link.a,
            Some(n) if *n == link.b.node => &link.b,
            Some(n) => {
                return Err(doc.err(
                    &format!("{path}.end"),
                    format!(
                        "`{n}` is not an end of link `{link_name}` ({} and {})",
                        link.a.node, link.b.node
                    ),
                ))
            }
            None if link.a.node == topo.router.node => &link.b,
            None => &link.a,
        };
        if !flows
            .iter()
            .any(|f| f.group == e.before && f.craft.is_none())
        {
            let groups: BTreeSet<&str> = flows.iter().map(|f| f.group.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.before"),
                format!(
                    "`{}` is not a traffic name (there are: {})",
                    e.before,
                    groups.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let peer = if std::ptr::eq(end, &link.a) {
            &link.b
        } else {
            &link.a
        };
        out.push(Event {
            before_group: e.before.clone(),
            link: link_name.clone(),
            node: end.node.clone(),
            iface: end.iface.clone(),
            peer_node: peer.node.clone(),
            peer_iface: peer.iface.clone(),
            up,
        });
    }
    Ok(out)
}

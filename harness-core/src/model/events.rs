//! `events:`: changes to a link end — its carrier down or up, a silent blackhole, packet loss,
//! an end that stops answering ARP and neighbour solicitations, and healing — between traffic
//! groups (`before:`) or while one runs (`during:` with `at:` or `after_flows:`).

use std::collections::BTreeSet;

use super::doc::{unknown_name, valid_name, Doc};
use super::traffic::parse_duration;
use super::{raw, Change, Event, FlowSpec, SpecError, Topology, When};

pub(super) fn events(
    doc: &Doc,
    topo: &Topology,
    flows: &[FlowSpec],
    raw: &[raw::EventDef],
) -> Result<Vec<Event>, SpecError> {
    let mut out: Vec<Event> = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        let path = format!("events[{i}]");
        let name = e.name.clone().unwrap_or_else(|| format!("event{}", i + 1));
        if !valid_name(&name) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!("event name `{name}`: use letters, digits, `-`, `_`"),
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!("two events are called `{name}`; give each its own `name:`"),
            ));
        }
        let changes: Vec<(&str, &String, Change)> = [
            ("down", &e.down, Change::Carrier(false)),
            ("up", &e.up, Change::Carrier(true)),
            ("blackhole", &e.blackhole, Change::Blackhole),
            ("loss", &e.loss, Change::Loss(e.percent.unwrap_or(0))),
            ("deaf", &e.deaf, Change::Deaf),
            ("heal", &e.heal, Change::Heal),
        ]
        .into_iter()
        .filter_map(|(k, l, c)| l.as_ref().map(|l| (k, l, c)))
        .collect();
        let [(key, link_name, change)] = changes[..] else {
            return Err(doc.err(
                &path,
                "an event makes one change: `down: LINK`, `up: LINK`, `blackhole: LINK`, `loss: LINK` (with `percent: N`), `deaf: LINK` or `heal: LINK`",
            ));
        };
        match (change, e.percent) {
            (Change::Loss(p), _) if !(1..=99).contains(&p) => {
                return Err(doc.err(
                    &format!("{path}.percent"),
                    "`loss:` needs `percent: N`, the share of packets dropped each way, 1 to 99 (`down:` or `blackhole:` for all of them)",
                ))
            }
            (Change::Loss(_), _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(doc.err(
                    &format!("{path}.percent"),
                    "`percent:` goes with `loss:`",
                ))
            }
        }
        let Some(link) = topo.link(link_name) else {
            let have: Vec<&str> = topo.links.iter().map(|l| l.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.{key}"),
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
        let group_of = |key: &str, g: &str| -> Result<String, SpecError> {
            if flows.iter().any(|f| f.group == g && f.craft.is_none()) {
                return Ok(g.to_string());
            }
            let groups: BTreeSet<&str> = flows.iter().map(|f| f.group.as_str()).collect();
            Err(doc.err(
                &format!("{path}.{key}"),
                format!(
                    "`{g}` is not a traffic name (there are: {})",
                    groups.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ))
        };
        let when = match (&e.before, &e.during, &e.at, e.after_flows) {
            (Some(g), None, None, None) => When::Before(group_of("before", g)?),
            (None, Some(g), Some(at), None) => {
                let g = group_of("during", g)?;
                let d = parse_duration(at).ok_or_else(|| {
                    doc.err(
                        &format!("{path}.at"),
                        format!("`at: {at}`: write the time after the traffic starts, e.g. `300ms` or `2s`"),
                    )
                })?;
                When::At(g, d)
            }
            (None, Some(g), None, Some(n)) => {
                let g = group_of("during", g)?;
                let have = flows.iter().filter(|f| f.group == g).count();
                if n == 0 || n as usize >= have {
                    return Err(doc.err(
                        &format!("{path}.after_flows"),
                        format!("`after_flows: {n}`: `{g}` has {have} flows; the event comes once 1 to {} of them have started", have.saturating_sub(1)),
                    ));
                }
                When::AfterFlows(g, n)
            }
            (None, Some(_), None, None) => {
                return Err(doc.err(
                    &format!("{path}.during"),
                    "`during:` needs `at: TIME` (after the traffic starts) or `after_flows: N`",
                ))
            }
            (Some(_), Some(_), _, _) => {
                return Err(doc.err(
                    &format!("{path}.during"),
                    "an event is `before:` a traffic entry or `during:` one, not both",
                ))
            }
            (Some(_), None, _, _) => {
                return Err(doc.err(
                    &path,
                    "`at:` and `after_flows:` go with `during:`; a `before:` event comes once every earlier flow is done",
                ))
            }
            (None, Some(_), Some(_), Some(_)) => {
                return Err(doc.err(
                    &format!("{path}.after_flows"),
                    "an event is `at:` a time or `after_flows:`, not both",
                ))
            }
            (None, None, _, _) => {
                return Err(doc.err(
                    &path,
                    "say when: `before: TRAFFIC`, or `during: TRAFFIC` with `at: TIME` or `after_flows: N`",
                ))
            }
        };
        let peer = if std::ptr::eq(end, &link.a) {
            &link.b
        } else {
            &link.a
        };
        out.push(Event {
            name,
            when,
            change,
            link: link_name.clone(),
            node: end.node.clone(),
            iface: end.iface.clone(),
            peer_node: peer.node.clone(),
            peer_iface: peer.iface.clone(),
        });
    }
    Ok(out)
}

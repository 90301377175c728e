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

#[cfg(test)]
mod tests {
    use crate::model::{load_text, repo_path, Change, Started, When};
    use std::time::Duration;

    const HEAD: &str = "topology: ../topologies/jupiter.yaml\n\
                        traffic:\n\
                        \x20 - { name: long, proto: tcp, from: saturn, to: neptune, port: 80, flows: 2, round_trips: 10, interval: 50ms }\n\
                        \x20 - { name: new, proto: tcp, from: saturn, to: neptune, port: 80, flows: 10, pace: 20ms }\n";

    fn load(events: &str, expect: &str) -> Result<crate::model::Plan, String> {
        let text = format!("{HEAD}events:\n{events}expect:\n{expect}");
        load_text(&repo_path("scenarios/x.yaml"), &text).map_err(|e| e.to_string())
    }

    /// An event during traffic: at a time into a group or after N of its flows; each kind of
    /// change; named for expectations.
    #[test]
    fn events_during_traffic_and_their_kinds() {
        let plan = load(
            "  - { name: dies, during: new, at: 300ms, blackhole: wan1 }\n\
             \x20 - { during: new, after_flows: 5, loss: wan2, percent: 20 }\n\
             \x20 - { before: new, deaf: wan1, end: jupiter }\n\
             \x20 - { name: back, during: new, at: 1s, heal: wan1 }\n",
            "  - { flows: new, started: { after: dies, later_than: 100ms }, via: wan2 }\n\
             \x20 - { name: kept, flows: long, spanning: dies, fate: survives }\n",
        )
        .expect("valid");
        let e = &plan.events;
        assert_eq!(
            e[0].when,
            When::At("new".into(), Duration::from_millis(300))
        );
        assert_eq!(
            (e[0].change, e[0].node.as_str(), e[0].iface.as_str()),
            (Change::Blackhole, "isp1", "cust")
        );
        assert_eq!(e[1].name, "event2");
        assert_eq!(
            (e[1].when.clone(), e[1].change),
            (When::AfterFlows("new".into(), 5), Change::Loss(20))
        );
        assert_eq!((e[2].change, e[2].node.as_str()), (Change::Deaf, "jupiter"));
        assert_eq!(e[3].change, Change::Heal);
        assert_eq!(
            plan.expectations[0].started,
            Some(Started::After("dies".into(), Duration::from_millis(100)))
        );
        assert_eq!(
            plan.expectations[1].started,
            Some(Started::Spanning("dies".into()))
        );
        // The long flows' default timeout covers their pauses: 1 s more than 9 × 50 ms.
        assert_eq!(plan.flows[0].timeout, Duration::from_millis(1450));
        assert_eq!(plan.flows[2].pace, Some(Duration::from_millis(20)));
    }

    #[test]
    fn a_mistaken_event_says_what_to_write() {
        let ok_expect = "  - { completes: true }\n";
        for (events, expect, says) in [
            ("  - { down: wan1 }\n", ok_expect, "say when: `before: TRAFFIC`"),
            ("  - { during: new, down: wan1 }\n", ok_expect, "`during:` needs `at: TIME`"),
            ("  - { during: new, at: soon, down: wan1 }\n", ok_expect, "`at: soon`"),
            ("  - { before: new, at: 1s, down: wan1 }\n", ok_expect, "go with `during:`"),
            ("  - { during: new, after_flows: 10, down: wan1 }\n", ok_expect, "`new` has 10 flows"),
            ("  - { before: new, loss: wan1 }\n", ok_expect, "`loss:` needs `percent: N`"),
            ("  - { before: new, down: wan1, percent: 5 }\n", ok_expect, "`percent:` goes with `loss:`"),
            ("  - { before: new, down: wan1, blackhole: wan2 }\n", ok_expect, "an event makes one change"),
            ("  - { name: a, before: new, down: wan1 }\n  - { name: a, before: new, up: wan1 }\n", ok_expect, "two events are called `a`"),
            ("  - { name: a, before: new, down: wan1 }\n", "  - { started: { after: b }, via: wan2 }\n", "unknown event `b`"),
            ("  - { name: a, before: new, down: wan1 }\n", "  - { started: { later_than: 1s }, via: wan2 }\n", "`started:` is `{ after: EVENT }`"),
            ("  - { name: a, before: new, down: wan1 }\n", "  - { started: { after: a }, spanning: a, via: wan2 }\n", "`started:` or `spanning:`, not both"),
        ] {
            let e = load(events, expect).expect_err(says);
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}

//! `expect:` and `expect_failure:`: what must hold for the selected flows, and which
//! expectations a broken rule set must break.

use std::collections::{BTreeMap, BTreeSet};

use super::doc::{unknown_name, Doc};
use super::traffic::parse_duration;
use super::{
    error, raw, Break, Check, Event, Expectation, ExpectedFailure, Fate, FlowSpec, Proto,
    SpecError, Started, Topology, Within, MAX_EXPECTATIONS, MAX_SELECTED,
};

pub(super) fn expectations(
    doc: &Doc,
    topo: &Topology,
    flows: &[FlowSpec],
    events: &[Event],
    raw: Vec<raw::ExpectDef>,
) -> Result<Vec<Expectation>, SpecError> {
    // `started:` and `spanning:` name an event.
    let event = |path: String, name: &str| -> Result<String, SpecError> {
        if events.iter().any(|e| e.name == name) {
            return Ok(name.to_string());
        }
        let have: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        Err(doc.err(
            &path,
            if have.is_empty() {
                format!("`{name}` is not an event: the scenario has no `events:`")
            } else {
                unknown_name("event", name, &have, "events:")
            },
        ))
    };
    // `path` may end in `#key` (a mapping key names the uplink).
    let uplink = |path: String, name: &str| -> Result<String, SpecError> {
        if topo.router.uplinks.iter().any(|u| u == name) {
            Ok(name.to_string())
        } else {
            let ups: Vec<&str> = topo.router.uplinks.iter().map(String::as_str).collect();
            let hint = match error::closest(name, &ups) {
                Some(m) => format!("; did you mean `{m}`?"),
                None => String::new(),
            };
            Err(doc.err(
                &path,
                format!(
                    "`{name}` is not an uplink of the router `{}`{hint} (its uplinks are {}, listed in the topology's `router.uplinks`)",
                    topo.router.node,
                    ups.join(", ")
                ),
            ))
        }
    };
    // `via:` and `leaves_via:` name an uplink, or `none`.
    let uplink_or_none = |path: String, name: &str| -> Result<Option<String>, SpecError> {
        if name == "none" {
            Ok(None)
        } else {
            uplink(path, name).map(Some)
        }
    };
    let mut out: Vec<Expectation> = Vec::new();
    // For `via`, `leaves_via` and `completes`: by flow id, the first expectation stating it.
    let mut claimed = vec![vec![None::<usize>; flows.len() + 2]; 3];
    let mut selected = 0usize;
    for (i, e) in raw.into_iter().enumerate() {
        let path = format!("expect[{i}]");
        if i == MAX_EXPECTATIONS {
            return Err(doc.err(
                &path,
                format!("more than {MAX_EXPECTATIONS} expectations; select flows by traffic name instead of one expectation each"),
            ));
        }
        let mut checks = Vec::new();
        if let Some(l) = &e.via {
            checks.push(Check::Via(uplink_or_none(format!("{path}.via"), l)?));
        }
        if let Some(seq) = &e.sequence {
            if seq.is_empty() {
                return Err(doc.err(
                    &format!("{path}.sequence"),
                    "an empty sequence: list the uplinks in the order flows should take them",
                ));
            }
            let s = seq
                .iter()
                .enumerate()
                .map(|(k, l)| uplink(format!("{path}.sequence[{k}]"), l))
                .collect::<Result<_, _>>()?;
            checks.push(Check::Sequence(s));
        }
        if let Some(m) = e.source {
            let mut map = BTreeMap::new();
            for (l, a) in m.0 {
                let p = format!("{path}.source.{l}");
                let l = uplink(format!("{p}#key"), &l)?;
                let a: Within = a.parse().map_err(|_| {
                    doc.err(
                        &p,
                        format!(
                            "`{a}` is not an address or a prefix (`192.0.2.1`, `2001:db8:1::/48`)"
                        ),
                    )
                })?;
                map.insert(l, a);
            }
            checks.push(Check::Source(map));
        }
        if let Some(m) = e.mark {
            let mut map = BTreeMap::new();
            for (l, v) in m.0 {
                map.insert(uplink(format!("{path}.mark.{l}#key"), &l)?, v);
            }
            checks.push(Check::Mark(map));
        }
        if let Some(m) = e.split {
            let mut w = Vec::new();
            for (l, v) in m.0 {
                w.push((uplink(format!("{path}.split.{l}#key"), &l)?, v));
            }
            if w.iter().all(|(_, v)| *v == 0) {
                return Err(doc.err(
                    &format!("{path}.split"),
                    "give at least one uplink a weight above 0",
                ));
            }
            checks.push(match e.per {
                Some(raw::PerDef::Client) => Check::SplitPerClient(w),
                Some(raw::PerDef::Flow) | None => Check::Split(w),
            });
        } else if e.per.is_some() {
            return Err(doc.err(
                &format!("{path}.per"),
                "`per:` says what a `split:` counts (flow or client); this expectation has no split",
            ));
        }
        match e.sticky {
            Some(true) => checks.push(Check::Sticky),
            Some(false) => {
                return Err(doc.err(
                    &format!("{path}.sticky"),
                    "`sticky: false` states nothing; remove it",
                ))
            }
            None => {}
        }
        match e.one_uplink {
            Some(true) => checks.push(Check::OneUplink),
            Some(false) => {
                return Err(doc.err(
                    &format!("{path}.one_uplink"),
                    "`one_uplink: false` states nothing; remove it",
                ))
            }
            None => {}
        }
        if let Some(l) = &e.leaves_via {
            checks.push(Check::LeavesVia(uplink_or_none(
                format!("{path}.leaves_via"),
                l,
            )?));
        }
        if let Some(c) = e.completes {
            checks.push(Check::Completes(c));
        }
        if let Some(f) = e.fate {
            checks.push(Check::Fate(match f {
                raw::FateDef::Survives => Fate::Survives,
                raw::FateDef::Reset => Fate::Reset,
                raw::FateDef::Dies => Fate::Dies,
            }));
        }
        let started = match (&e.started, &e.spanning) {
            (Some(_), Some(_)) => {
                return Err(doc.err(
                    &format!("{path}.spanning"),
                    "an expectation takes `started:` or `spanning:`, not both",
                ))
            }
            (None, Some(ev)) => Some(Started::Spanning(event(format!("{path}.spanning"), ev)?)),
            (Some(s), None) => {
                let later = match &s.later_than {
                    None => std::time::Duration::ZERO,
                    Some(t) => parse_duration(t).ok_or_else(|| {
                        doc.err(
                            &format!("{path}.started.later_than"),
                            format!("`later_than: {t}`: write e.g. `1s` or `500ms`"),
                        )
                    })?,
                };
                let after = |ev: &str| event(format!("{path}.started.after"), ev);
                let before = |ev: &str| event(format!("{path}.started.before"), ev);
                Some(match (&s.after, &s.before, &s.later_than) {
                (Some(a), None, _) => Started::After(after(a)?, later),
                (None, Some(b), None) => Started::Before(before(b)?),
                (Some(a), Some(b), _) => Started::Between(after(a)?, later, before(b)?),
                _ => {
                    return Err(doc.err(
                        &format!("{path}.started"),
                        "`started:` is `{ after: EVENT }`, `{ after: EVENT, later_than: 1s }`, `{ before: EVENT }` or `{ after: EVENT, before: EVENT }`",
                    ))
                }
            })
            }
            (None, None) => None,
        };
        let check = match checks.len() {
            1 => checks.pop().expect("one"),
            0 => return Err(doc.err(
                &path,
                "an expectation states one of: via, sequence, source, mark, one_uplink, completes, split, leaves_via, sticky",
            )),
            _ => {
                return Err(doc.err(
                    &path,
                    format!(
                        "one property per expectation; this one has {}: split it",
                        checks
                            .iter()
                            .map(|c| c.key())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        };
        // The flows a name selects, in flow order; an error (at `at`) when none.
        let named = |n: &str, at: String| -> Result<Vec<u32>, SpecError> {
            let ids: Vec<u32> = flows
                .iter()
                .filter(|f| match n {
                    "all" => true,
                    "tcp" => f.proto == Proto::Tcp,
                    "udp" => f.proto == Proto::Udp,
                    g => f.group == g,
                })
                .map(|f| f.id)
                .collect();
            if ids.is_empty() {
                let groups: BTreeSet<&str> = flows.iter().map(|f| f.group.as_str()).collect();
                return Err(doc.err(
                    &at,
                    format!(
                        "`{n}` selects no flow: use all, tcp, udp or a traffic name ({})",
                        groups.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Ok(ids)
        };
        let (selector, ids): (String, Vec<u32>) = match e.flows {
            None => ("all".into(), flows.iter().map(|f| f.id).collect()),
            Some(raw::SelectorDef::Name(n)) => {
                let ids = named(&n, format!("{path}.flows"))?;
                (n, ids)
            }
            Some(raw::SelectorDef::List(items)) => {
                // In the order written, a name's flows in flow order; each flow once.
                let mut ids: Vec<u32> = Vec::new();
                let mut seen: BTreeSet<u32> = BTreeSet::new();
                let mut words = Vec::new();
                for (k, item) in items.iter().enumerate() {
                    let these = match item {
                        raw::SelectorItem::Id(id) => {
                            if !flows.iter().any(|f| f.id == *id) {
                                return Err(doc.err(
                                    &format!("{path}.flows[{k}]"),
                                    format!(
                                        "there is no flow {id} (flows are numbered 1 to {})",
                                        flows.len()
                                    ),
                                ));
                            }
                            words.push(id.to_string());
                            vec![*id]
                        }
                        raw::SelectorItem::Name(n) => {
                            words.push(n.clone());
                            named(n, format!("{path}.flows[{k}]"))?
                        }
                    };
                    ids.extend(these.into_iter().filter(|id| seen.insert(*id)));
                }
                (format!("[{}]", words.join(", ")), ids)
            }
        };
        selected += ids.len();
        if selected > MAX_SELECTED {
            return Err(doc.err(
                &path,
                format!("the expectations select more than {MAX_SELECTED} flows in all; let fewer expectations select all flows (one `flows: all` expectation checks every flow)"),
            ));
        }
        let name = e.name.unwrap_or_else(|| check.key().to_string());
        if out.iter().any(|x| x.name == name) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!("two expectations are called `{name}`; give each a `name:`"),
            ));
        }
        // `mark:` and `source:` by uplink: two that give one uplink two values cannot both
        // hold for a flow they share (whichever uplink it leaves by, one of them is wrong
        // when it is that one).
        // (Flows judged by when they ran against an event are known after the run: two
        // expectations on them may well select different ones.)
        if let (Check::Mark(_) | Check::Source(_), None) = (&check, &started) {
            let mine: BTreeSet<u32> = ids.iter().copied().collect();
            for other in out.iter().filter(|o| o.started.is_none()) {
                let differ = match (&check, &other.check) {
                    (Check::Mark(a), Check::Mark(b)) => a
                        .iter()
                        .find(|(l, v)| b.get(*l).is_some_and(|w| w != *v))
                        .map(|(l, v)| (l.clone(), v.to_string(), b[l].to_string())),
                    (Check::Source(a), Check::Source(b)) => a
                        .iter()
                        .find(|(l, v)| b.get(*l).is_some_and(|w| !w.meets(v)))
                        .map(|(l, v)| (l.clone(), v.to_string(), b[l].to_string())),
                    _ => None,
                };
                let Some((link, mine_v, theirs)) = differ else {
                    continue;
                };
                let both: Vec<String> = other
                    .flows
                    .iter()
                    .filter(|f| mine.contains(f))
                    .take(5)
                    .map(u32::to_string)
                    .collect();
                if !both.is_empty() {
                    return Err(doc.err(
                        &format!("{path}.{}.{link}", check.key()),
                        format!(
                            "`{}` for `{link}` is {mine_v} here and {theirs} in expectation `{}`, for flows {}: a flow that leaves by `{link}` cannot meet both; select other flows, or remove one",
                            check.key(),
                            other.name,
                            both.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(k) = exclusive_kind(&check).filter(|_| started.is_none()) {
            for id in &ids {
                let slot = &mut claimed[k][*id as usize];
                match slot {
                    None => *slot = Some(out.len()),
                    Some(j) if out[*j].check != check => {
                        let other = &out[*j];
                        let both: Vec<String> = ids
                            .iter()
                            .filter(|f| other.flows.contains(f))
                            .take(5)
                            .map(u32::to_string)
                            .collect();
                        return Err(doc.err(
                            &format!("{path}.{}", check.key()),
                            format!(
                                "`{}: {}` contradicts expectation `{}` (`{}: {}`) for flows {}: both cannot hold; select other flows, or remove one",
                                check.key(),
                                shown_value(&check),
                                other.name,
                                other.check.key(),
                                shown_value(&other.check),
                                both.join(", ")
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        out.push(Expectation {
            name,
            selector,
            flows: ids,
            check,
            started,
        });
    }
    if out.is_empty() {
        return Err(doc.err(
            "expect",
            "no expectations: a scenario states what must hold",
        ));
    }
    Ok(out)
}

/// Properties a flow has one value of: two expectations giving one flow two values of it
/// cannot both hold. Their index in `claimed`.
fn exclusive_kind(c: &Check) -> Option<usize> {
    match c {
        Check::Via(_) => Some(0),
        Check::LeavesVia(_) => Some(1),
        Check::Completes(_) => Some(2),
        _ => None,
    }
}

fn shown_value(c: &Check) -> String {
    match c {
        Check::Via(l) | Check::LeavesVia(l) => l.clone().unwrap_or_else(|| "none".into()),
        Check::Completes(b) => b.to_string(),
        _ => String::new(),
    }
}
pub(super) fn expected_failure(
    doc: &Doc,
    flows: &[FlowSpec],
    exps: &[Expectation],
    raw: raw::ExpectFailureDef,
) -> Result<ExpectedFailure, SpecError> {
    if raw.breaks.is_empty() {
        return Err(doc.err(
            "expect_failure.breaks",
            "name the expectations this broken rule set must break",
        ));
    }
    let mut breaks = Vec::new();
    for (i, b) in raw.breaks.into_iter().enumerate() {
        let path = format!("expect_failure.breaks[{i}]");
        let Some(e) = exps.iter().find(|e| e.name == b.expectation) else {
            let names: Vec<&str> = exps.iter().map(|e| e.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.expectation"),
                format!(
                    "no expectation is called `{}` (there are: {})",
                    b.expectation,
                    names.join(", ")
                ),
            ));
        };
        if let Some(ids) = &b.flows {
            for (k, id) in ids.iter().enumerate() {
                if !e.flows.contains(id) {
                    let why = if flows.iter().any(|f| f.id == *id) {
                        "is not selected by"
                    } else {
                        "does not exist for"
                    };
                    return Err(doc.err(
                        &format!("{path}.flows[{k}]"),
                        format!("flow {id} {why} expectation `{}`", e.name),
                    ));
                }
            }
        }
        let mut flows = b.flows;
        if let Some(f) = &mut flows {
            f.sort_unstable();
            f.dedup();
        }
        breaks.push(Break {
            expectation: b.expectation,
            flows,
        });
    }
    Ok(ExpectedFailure {
        reason: raw.reason,
        breaks,
    })
}

#[cfg(test)]
mod tests {
    use crate::model::{load_text, repo_path, Check};

    fn load(expect: &str) -> Result<Vec<Check>, String> {
        let path = repo_path("scenarios/sticky/x.yaml");
        let text = format!(
            "topology: ../../topologies/conformance.yaml\n\
             traffic:\n  - {{ proto: tcp, from: saturn, from_address: each, to: neptune, port: 80, flows: 4 }}\n\
             expect:\n{expect}"
        );
        load_text(&path, &text)
            .map(|p| p.expectations.into_iter().map(|e| e.check).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sticky_and_a_split_per_client_are_read() {
        let w = vec![("wan1".to_string(), 1), ("wan2".to_string(), 2)];
        assert_eq!(
            load(
                "  - { sticky: true }\n  - { name: by_client, split: { wan1: 1, wan2: 2 }, per: client }\n  - { name: by_flow, split: { wan1: 1, wan2: 2 }, per: flow }\n"
            ),
            Ok(vec![
                Check::Sticky,
                Check::SplitPerClient(w.clone()),
                Check::Split(w)
            ])
        );
    }

    #[test]
    fn per_without_a_split_and_sticky_false_are_refused() {
        let e = load("  - { sticky: true, per: client }\n").unwrap_err();
        assert!(e.contains("x.yaml:5:") && e.contains("has no split"), "{e}");
        let e = load("  - { sticky: false }\n").unwrap_err();
        assert!(e.contains("`sticky: false` states nothing"), "{e}");
        let e = load("  - { split: { wan1: 1 }, per: server }\n").unwrap_err();
        assert!(e.contains("client"), "{e}");
    }
}

//! Each expectation against each flow's path: a [`Finding`] for every flow that broke it, or
//! the counts of a split. Pure, and wordless.

use std::collections::BTreeMap;
use std::net::IpAddr;

use smol_str::SmolStr;

use super::{
    split_counts, stats, Bound, Declared, EventFigures, ExpResult, FateCounts, Finding,
    FlowFailure, FlowPath, Listed, Split, SplitCount, Vacant,
};
use crate::model::{Check, Expectation, Fate, Plan, Started};
use crate::observe::EventSeen;

pub(super) fn check(
    e: &Expectation,
    flows: &BTreeMap<u32, &FlowPath>,
    router: &str,
    events: &[EventSeen],
) -> ExpResult {
    let mut r = ExpResult {
        name: e.name.clone(),
        check: e.check.to_string(),
        selector: e.selector.clone(),
        flows: e.flows.clone(),
        failures: Vec::new(),
        split: None,
        broke_overall: false,
        vacant: None,
        declared: Declared::No,
    };
    // `started:` / `spanning:`: of the selected flows, those that ran so against the event.
    if let Some(s) = &e.started {
        r.check = format!("{} ({s})", r.check);
        match ran_so(s, &e.flows, flows, events) {
            Ok(ids) if ids.is_empty() => {
                r.vacant = Some(Vacant::NoFlow {
                    started: s.to_string(),
                });
            }
            Ok(ids) => r.flows = ids,
            Err(v) => r.vacant = Some(v),
        }
        if r.vacant.is_some() {
            r.flows = Vec::new();
            r.broke_overall = true;
            return r;
        }
    }
    let e = &Expectation {
        flows: r.flows.clone(),
        ..e.clone()
    };
    let selected = || e.flows.iter().filter_map(|id| flows.get(id).copied());
    match &e.check {
        Check::Split(weights) => {
            let split = check_split(weights, selected());
            r.broke_overall = !split.held();
            r.split = Some(split);
            return r;
        }
        Check::SplitPerClient(weights) => {
            let firsts: Vec<&FlowPath> = by_client(selected())
                .into_values()
                .map(|fs| fs[0])
                .collect();
            let mut split = check_split(weights, firsts.iter().copied());
            split.clients = Some(split.flows);
            split.flows = selected().count() as u64;
            r.broke_overall = !split.held();
            r.split = Some(split);
            return r;
        }
        Check::Sticky => {
            r.failures = check_sticky(selected());
            r.broke_overall = !r.failures.is_empty();
            return r;
        }
        _ => {}
    }
    for (k, id) in e.flows.iter().enumerate() {
        let Some(p) = flows.get(id) else { continue };
        if let Some((finding, with_drops)) = check_flow(&e.check, k, p, router) {
            r.failures.push(FlowFailure {
                flow: *id,
                finding,
                drops: if with_drops {
                    p.drops.clone()
                } else {
                    Vec::new()
                },
            });
        }
    }
    r
}

/// Of `ids`, the flows that ran as `s` says against its event (in the order given), or why
/// none can be told: the event did not happen.
fn ran_so(
    s: &Started,
    ids: &[u32],
    flows: &BTreeMap<u32, &FlowPath>,
    events: &[EventSeen],
) -> Result<Vec<u32>, Vacant> {
    // (asked, in force), in ms: a flow started in between is neither before nor after.
    let at_of = |name: &String| {
        events
            .iter()
            .find(|e| &e.name == name)
            .map(|e| (super::paths::ms(e.asked_ns), super::paths::ms(e.t_ns)))
            .ok_or_else(|| Vacant::EventMissed {
                event: name.clone(),
            })
    };
    let ((asked, at), until) = match s {
        Started::After(n, _) | Started::Before(n) | Started::Spanning(n) => (at_of(n)?, None),
        Started::Between(a, _, b) => (at_of(a)?, Some(at_of(b)?.0)),
    };
    let keep = |p: &FlowPath| match (s, p.started_ms, p.ended_ms) {
        (Started::After(_, d), Some(t), _) => t >= at + d.as_secs_f64() * 1000.0,
        (Started::Between(_, d, _), Some(t), _) => {
            t >= at + d.as_secs_f64() * 1000.0 && until.is_some_and(|u| t < u)
        }
        (Started::Before(_), Some(t), _) => t < asked,
        (Started::Spanning(_), Some(t), Some(end)) => t < asked && end > at,
        _ => false,
    };
    Ok(ids
        .iter()
        .filter(|id| flows.get(id).is_some_and(|p| keep(p)))
        .copied()
        .collect())
}

/// Each event that happened, with the fate of the connections running then and how long new
/// flows still left by its link.
pub(super) fn event_figures(
    plan: &Plan,
    flows: &[FlowPath],
    events: &[EventSeen],
) -> Vec<EventFigures> {
    events
        .iter()
        .map(|ev| {
            let (asked, at) = (super::paths::ms(ev.asked_ns), super::paths::ms(ev.t_ns));
            let planned = plan.events.iter().find(|e| e.name == ev.name);
            let link = planned.map(|e| e.link.clone()).unwrap_or_default();
            let restores = planned.is_some_and(|e| {
                matches!(
                    e.change,
                    crate::model::Change::Carrier(true) | crate::model::Change::Heal
                )
            });
            let mut spanning = FateCounts::default();
            for p in flows.iter().filter(|p| {
                p.started_ms.is_some_and(|t| t < asked) && p.ended_ms.is_some_and(|t| t > at)
            }) {
                match p.fate() {
                    Fate::Survives => spanning.survived += 1,
                    Fate::Reset => spanning.reset += 1,
                    Fate::Dies => spanning.died += 1,
                }
            }
            let after: Vec<(&FlowPath, f64)> = flows
                .iter()
                .filter_map(|p| p.started_ms.filter(|t| *t >= at).map(|t| (p, t - at)))
                .collect();
            let on_link = |p: &FlowPath| p.first_out.as_deref() == Some(link.as_str());
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            EventFigures {
                name: ev.name.clone(),
                link: link.clone(),
                restores,
                at_ms: at,
                spanning,
                started_after: after.len() as u32,
                last_on_link_ms: after
                    .iter()
                    .filter(|(p, _)| on_link(p))
                    .map(|(_, t)| round(*t))
                    .reduce(f64::max),
                first_on_link_ms: after
                    .iter()
                    .filter(|(p, _)| on_link(p))
                    .map(|(_, t)| round(*t))
                    .reduce(f64::min),
                first_elsewhere_ms: after
                    .iter()
                    .filter(|(p, _)| p.first_out.is_some() && !on_link(p))
                    .map(|(_, t)| round(*t))
                    .reduce(f64::min),
            }
        })
        .collect()
}

/// Counts the flows by the uplink they left on and checks each count against its binomial
/// interval.
fn check_split<'a>(weights: &[(String, u32)], flows: impl Iterator<Item = &'a FlowPath>) -> Split {
    let mut counts = split_counts(flows);
    let n: u64 = counts.values().sum();
    let w: Vec<u32> = weights.iter().map(|(_, w)| *w).collect();
    let total: u32 = w.iter().sum();
    let bounds = stats::split_intervals(n, &w, stats::FALSE_FAILURE_RATE);
    let mut rows = Vec::new();
    for ((link, wt), (lo, hi)) in weights.iter().zip(&bounds) {
        let c = counts.remove(link).unwrap_or(0);
        rows.push(SplitCount {
            uplink: link.clone(),
            count: c,
            expected: Some(Bound {
                mean: n as f64 * f64::from(*wt) / f64::from(total),
                low: *lo,
                high: *hi,
            }),
            inside: (*lo..=*hi).contains(&c),
        });
    }
    for (link, c) in counts {
        rows.push(SplitCount {
            uplink: link,
            count: c,
            expected: None,
            inside: false,
        });
    }
    Split {
        flows: n,
        clients: None,
        counts: rows,
    }
}

/// The flows by client address (the source the client had, on its own side of the router),
/// each client's in flow order.
pub(super) fn by_client<'a>(
    flows: impl Iterator<Item = &'a FlowPath>,
) -> BTreeMap<IpAddr, Vec<&'a FlowPath>> {
    let mut m: BTreeMap<IpAddr, Vec<&FlowPath>> = BTreeMap::new();
    for f in flows {
        m.entry(f.client.ip()).or_default().push(f);
    }
    for v in m.values_mut() {
        v.sort_by_key(|f| f.id);
    }
    m
}

/// `sticky`: each client's flows that left on another uplink than its first flow did (flows
/// start in id order, so its first is the one a sticky set learnt the client from).
fn check_sticky<'a>(flows: impl Iterator<Item = &'a FlowPath>) -> Vec<FlowFailure> {
    let mut out = Vec::new();
    for (client, fs) in by_client(flows) {
        let first = fs[0];
        let mut uplinks: Vec<(SmolStr, Vec<u32>)> = Vec::new();
        for f in &fs {
            let l = SmolStr::from(f.first_uplink());
            match uplinks.iter_mut().find(|(u, _)| *u == l) {
                Some((_, ids)) => ids.push(f.id),
                None => uplinks.push((l, vec![f.id])),
            }
        }
        if uplinks.len() < 2 {
            continue;
        }
        for f in fs
            .iter()
            .filter(|f| f.first_uplink() != first.first_uplink())
        {
            out.push(FlowFailure {
                flow: f.id,
                finding: Finding::ClientMoved {
                    client,
                    uplink: f.first_uplink().into(),
                    first: first.id,
                    first_uplink: first.first_uplink().into(),
                    uplinks: uplinks.clone(),
                },
                drops: Vec::new(),
            });
        }
    }
    out.sort_by_key(|f| f.flow);
    out
}

/// `None` when the flow meets the check, else what was observed instead, and whether where
/// its packets died explains it.
fn check_flow(c: &Check, k: usize, p: &FlowPath, router: &str) -> Option<(Finding, bool)> {
    let told = |f: Finding| Some((f, true));
    let bare = |f: Finding| Some((f, false));
    match c {
        Check::Via(None) => {
            if p.out.is_empty() && p.back.is_empty() {
                None
            } else {
                told(Finding::CrossedUplinks {
                    out: p.out.clone(),
                    back: p.back.clone(),
                })
            }
        }
        Check::Via(Some(l)) => {
            if p.out != [l.as_str()] {
                told(Finding::LeftVia {
                    expected: l.into(),
                    out: p.out.clone(),
                })
            } else if p.back != [l.as_str()] {
                told(Finding::CameBackVia {
                    expected: l.into(),
                    back: p.back.clone(),
                })
            } else {
                None
            }
        }
        Check::Sequence(seq) => {
            let want = &seq[k % seq.len()];
            if p.first_out.as_deref() == Some(want.as_str()) {
                None
            } else {
                bare(Finding::OutOfSequence {
                    expected: want.into(),
                    out: p.first_out.clone(),
                    position: k + 1,
                    sequence: seq.clone(),
                })
            }
        }
        Check::Source(map) => {
            let Some(l) = &p.first_out else {
                return told(Finding::LeftOnNoUplink);
            };
            let Some(want) = map.get(l.as_str()) else {
                return bare(Finding::Unlisted {
                    uplink: l.clone(),
                    what: Listed::Source,
                });
            };
            let want = *want;
            match p.source_seen {
                Some(a) if want.contains(a) => None,
                Some(a) => bare(Finding::WrongSource {
                    uplink: l.clone(),
                    seen: a,
                    expected: want,
                }),
                None => told(Finding::SourceUnseen {
                    uplink: l.clone(),
                    sent: p.first_out_source,
                    expected: want,
                }),
            }
        }
        Check::Mark(map) => {
            let Some(l) = &p.first_out else {
                return told(Finding::LeftOnNoUplink);
            };
            let Some(want) = map.get(l.as_str()) else {
                return bare(Finding::Unlisted {
                    uplink: l.clone(),
                    what: Listed::Mark,
                });
            };
            match p.mark {
                Some(m) if m == *want => None,
                Some(m) => bare(Finding::WrongMark {
                    uplink: l.clone(),
                    seen: m,
                    expected: *want,
                }),
                None => bare(Finding::NoConntrack {
                    uplink: l.clone(),
                    router: router.to_string(),
                }),
            }
        }
        Check::OneUplink => {
            if p.completed && p.related_seen == Some(false) {
                return bare(Finding::RelatedUnanswered);
            }
            let mut all: Vec<&SmolStr> = p.out.iter().collect();
            for b in &p.back {
                if !all.contains(&b) {
                    all.push(b);
                }
            }
            match all.len() {
                1 => None,
                0 => told(Finding::CrossedNoUplink),
                _ => bare(Finding::SplitUplinks {
                    out: p.out.clone(),
                    back: p.back.clone(),
                }),
            }
        }
        Check::Fate(want) => {
            let seen = p.fate();
            (seen != *want).then(|| {
                (
                    Finding::WrongFate {
                        expected: *want,
                        seen,
                        error: p.client_error.clone(),
                    },
                    true,
                )
            })
        }
        Check::Completes(want) => match (p.completed, want) {
            (true, true) | (false, false) => None,
            (false, true) => told(Finding::DidNotComplete {
                error: p.client_error.clone(),
            }),
            (true, false) => bare(Finding::Completed),
        },
        // Judged on the flows together, in `check`.
        Check::Split(_) | Check::SplitPerClient(_) | Check::Sticky => None,
        Check::LeavesVia(want) => {
            let got = &p.router_out;
            match want {
                Some(l) if got.len() == 1 && got[0] == l.as_str() => None,
                None if got.is_empty() => None,
                _ => told(Finding::RouterSentVia {
                    router: router.to_string(),
                    out: got.clone(),
                    expected: want.as_deref().map(SmolStr::from),
                }),
            }
        }
    }
}

//! Every sentence the harness says about a verdict: findings, story steps, where packets
//! died, split counts, why a declaration did not hold. The terminal, the snapshots, JUnit,
//! JSON and HTML all word a verdict through these. Pure.

use std::fmt::Display;

use smol_str::SmolStr;

use crate::model::Fate;
use crate::verdict::compare::{Changes, Field, Value};
use crate::verdict::{
    Dir, DropSite, End, Finding, FlowFailure, Listed, Problem, Split, Step, Vacant, Verdict,
};

/// `a, b, c`, or `none` when there are none.
pub fn join<T: Display>(v: &[T], sep: &str, none: &str) -> String {
    if v.is_empty() {
        return none.to_string();
    }
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// Flow ids: `2, 4, 6`.
pub fn ids(v: &[u32]) -> String {
    join(v, ", ", "")
}

/// Flow ids with runs folded: `1–3, 5, 7–9`.
pub fn ranges(ids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}–{}", ids[i], ids[j])
        } else {
            ids[i].to_string()
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// Uplinks in a sentence: `wan1 and wan2`, or `no uplink`.
pub fn uplinks(v: &[SmolStr]) -> String {
    join(v, " and ", "no uplink")
}

/// `left via wan1`, or `left on no uplink`.
fn left(out: Option<&SmolStr>) -> String {
    match out {
        Some(l) => format!("left via {l}"),
        None => "left on no uplink".to_string(),
    }
}

/// One story step: `→ SYN left via wan1 with source 10.37.1.253, reached neptune`.
pub fn step(s: &Step) -> String {
    let arrow = if s.dir == Dir::Out { "→" } else { "←" };
    let what = if s.count == 1 {
        s.kinds[0].to_string()
    } else {
        format!("{} packets ({})", s.count, s.kinds.join(", "))
    };
    let via = match (s.dir, &s.uplink, s.source) {
        (Dir::Out, Some(l), Some(src)) => format!(" left via {l} with source {src}"),
        (Dir::Back, Some(l), _) => format!(" came back via {l}"),
        _ => " crossed no uplink".to_string(),
    };
    let end = match &s.end {
        End::Reached(node) => format!(", reached {node}"),
        End::Died { node, link } => format!(", died at {node} (last seen on {link})"),
    };
    format!("{arrow} {what}{via}{end}")
}

/// A flow's whole story, its steps joined by `; `.
fn story(v: &Verdict, flow: u32) -> String {
    v.flow(flow)
        .map(|p| {
            p.story
                .iter()
                .map(|s| step(s))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// "6 packets outgoing died at isp1 (last seen on wan1)", for messages.
pub fn drops(d: &[DropSite]) -> Option<String> {
    let parts: Vec<String> = d
        .iter()
        .map(|d| {
            let what = if d.count == 1 {
                "1 packet".to_string()
            } else {
                format!("{} packets", d.count)
            };
            let way = if d.dir == Dir::Out {
                "outgoing"
            } else {
                "returning"
            };
            format!(
                "{what} {way} died at {} (last seen on {})",
                d.node, d.after_link
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What a flow did instead: `left via wan2, expected wan1 (it is number 3 in the sequence …)`.
pub fn finding(v: &Verdict, f: &FlowFailure) -> String {
    let msg = match &f.finding {
        Finding::CrossedUplinks { out, back } => format!(
            "crossed uplinks: out via {}, back via {}; expected none",
            uplinks(out),
            uplinks(back)
        ),
        Finding::LeftVia { expected, out } => {
            format!("left via {}, expected only {expected}", uplinks(out))
        }
        Finding::CameBackVia { expected, back } => format!(
            "left via {expected}, but its replies came back via {}",
            uplinks(back)
        ),
        Finding::OutOfSequence {
            expected,
            out,
            position,
            sequence,
        } => format!(
            "{}, expected {expected} (it is number {position} in the sequence {}, …)",
            left(out.as_ref()),
            sequence.join(", ")
        ),
        Finding::LeftOnNoUplink => "left on no uplink".to_string(),
        Finding::Unlisted { uplink, what } => format!(
            "left via {uplink}, which this expectation gives no {} for",
            match what {
                Listed::Source => "source",
                Listed::Mark => "mark",
            }
        ),
        Finding::WrongSource {
            uplink,
            seen,
            expected,
        } => format!("left via {uplink}; the server saw source {seen}, expected {expected}"),
        Finding::SourceUnseen {
            uplink,
            sent,
            expected,
        } => format!(
            "left via {uplink}{}; the server saw nothing of it (expected {})",
            sent.map(|a| format!(" with source {a}"))
                .unwrap_or_default(),
            if expected.0.prefix_len() == expected.0.max_prefix_len() {
                format!("source {}", expected.0.addr())
            } else {
                format!("a source in {}", expected.0)
            }
        ),
        Finding::WrongMark {
            uplink,
            seen,
            expected,
        } => format!("left via {uplink} with conntrack mark {seen}, expected {expected}"),
        Finding::NoConntrack { uplink, router } => {
            format!("left via {uplink}, but {router} has no conntrack entry for it")
        }
        Finding::RelatedUnanswered => format!(
            "its RELATED probe drew no ICMP error on any link: the late datagram was lost, or the client did not answer it: {}",
            story(v, f.flow)
        ),
        Finding::SplitUplinks { out, back } => format!(
            "packets left via {}, replies came back via {}: {}",
            uplinks(out),
            uplinks(back),
            story(v, f.flow)
        ),
        Finding::CrossedNoUplink => "crossed no uplink".to_string(),
        Finding::DidNotComplete { error } => format!(
            "did not complete: {}",
            error.as_deref().unwrap_or("no outcome recorded")
        ),
        Finding::Completed => "completed, expected it not to".to_string(),
        Finding::WrongFate {
            expected,
            seen,
            error,
        } => format!(
            "{}, expected it to {}",
            match seen {
                Fate::Survives => "it survived".to_string(),
                Fate::Reset => format!(
                    "it was reset ({})",
                    error.as_deref().unwrap_or("the connection was reset")
                ),
                Fate::Dies => format!(
                    "it died ({})",
                    error.as_deref().unwrap_or("no outcome recorded")
                ),
            },
            match expected {
                Fate::Survives => "survive",
                Fate::Reset => "be reset",
                Fate::Dies => "die",
            }
        ),
        Finding::RouterSentVia {
            router,
            out,
            expected,
        } => format!(
            "{router} sent it out via {}, expected {}",
            uplinks(out),
            expected.as_deref().unwrap_or("no uplink")
        ),
        Finding::ClientMoved {
            client,
            uplink,
            first,
            first_uplink,
            uplinks,
        } => format!(
            "left via {uplink}, but client {client}'s first flow, {first}, left via {first_uplink} (its flows: {})",
            uplinks
                .iter()
                .map(|(l, ids)| {
                    let shown: Vec<String> = ids.iter().take(6).map(u32::to_string).collect();
                    let more = if ids.len() > 6 { ", …" } else { "" };
                    format!("{l} {}: {}{more}", ids.len(), shown.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    match drops(&f.drops) {
        Some(d) => format!("{msg}; {d}"),
        None => msg,
    }
}

/// `600 flows: wan1 212 (expected 200, 150–251), wan2 388 (expected 400, 349–450)`, with `✗`
/// after each count outside its interval.
pub fn split(s: &Split) -> String {
    let parts: Vec<String> = s
        .counts
        .iter()
        .map(|c| match &c.expected {
            Some(b) => format!(
                "{} {} (expected {:.0}, {}–{}){}",
                c.uplink,
                c.count,
                b.mean,
                b.low,
                b.high,
                if c.inside { "" } else { " ✗" }
            ),
            None => format!("{} {} (expected 0) ✗", c.uplink, c.count),
        })
        .collect();
    match s.clients {
        Some(c) => format!(
            "{c} clients ({} flows), each by the uplink its first flow left on: {}",
            s.flows,
            parts.join(", ")
        ),
        None => format!("{} flows: {}", s.flows, parts.join(", ")),
    }
}

/// What an expectation judged on its flows together observed: a split's counts, or how many
/// clients moved between uplinks (empty for one judged flow by flow).
pub fn observed(v: &Verdict, expectation: &str) -> String {
    let Some(r) = v.results.iter().find(|r| r.name == expectation) else {
        return String::new();
    };
    match &r.vacant {
        Some(Vacant::EventMissed { event }) => {
            return format!("event `{event}` never happened, so no flow can be judged against it (the traffic it is tied to ended first, or never ran)")
        }
        Some(Vacant::NoFlow { started }) => {
            return format!("no selected flow {started}: nothing to judge; give the traffic more flows, or a later `pace:`/`interval:` so that some do")
        }
        None => {}
    }
    if let Some(s) = &r.split {
        return split(s);
    }
    let moved: std::collections::BTreeSet<std::net::IpAddr> = r
        .failures
        .iter()
        .filter_map(|f| match &f.finding {
            Finding::ClientMoved { client, .. } => Some(*client),
            _ => None,
        })
        .collect();
    if moved.is_empty() {
        return String::new();
    }
    let clients: std::collections::BTreeSet<std::net::IpAddr> = v
        .flows
        .iter()
        .filter(|p| r.flows.contains(&p.id))
        .map(|p| p.client.ip())
        .collect();
    format!(
        "{} of {} clients moved between uplinks ({}{}): a sticky rule keeps a client's new connections on the uplink its first took, with a set of client source addresses (with a timeout) that it matches and fills on the source",
        moved.len(),
        clients.len(),
        moved
            .iter()
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if moved.len() > 5 { ", …" } else { "" }
    )
}

/// Why a declared-broken scenario did not break as declared, one problem.
pub fn problem(v: &Verdict, p: &Problem) -> String {
    match p {
        Problem::Undeclared { expectation, flows } if flows.is_empty() => format!(
            "`{expectation}` broke ({}), which the declaration does not expect",
            observed(v, expectation)
        ),
        Problem::Undeclared { expectation, flows } => format!(
            "`{expectation}` broke for flows {}, which the declaration does not expect",
            ids(flows)
        ),
        Problem::Held { expectation } => {
            format!("`{expectation}` was declared to break, but it held")
        }
        Problem::OtherFlows {
            expectation,
            declared,
            broke,
        } => format!(
            "`{expectation}` was declared to break for flows {}; it broke for flows {}",
            ids(declared),
            ids(broke)
        ),
    }
}

/// Every problem, joined by `; `.
pub fn problems(v: &Verdict, ps: &[Problem]) -> String {
    ps.iter()
        .map(|p| problem(v, p))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A changed field's value: `wan1,wan2`, `10.37.1.253`, `—`, `completes`.
fn value(v: &Value) -> String {
    let dash = |x: Option<String>| x.unwrap_or_else(|| "—".into());
    match v {
        Value::Uplinks(l) => join(l, ",", "—"),
        Value::Addr(a) => dash(a.map(|a| a.to_string())),
        Value::Mark(m) => dash(m.map(|m| m.to_string())),
        Value::Completes(true) => "completes".into(),
        Value::Completes(false) => "does not complete".into(),
    }
}

/// What `harness diff` prints for one scenario's changes, a line each:
/// `flow 4: out wan1 → wan2; source 10.37.1.253 → 10.37.2.253`.
pub fn changes(c: &Changes) -> Vec<String> {
    let name = |f: Field| match f {
        Field::Out => "out",
        Field::Back => "back",
        Field::Source => "source",
        Field::ServerSaw => "server saw",
        Field::Mark => "mark",
        Field::Completion => "completion",
    };
    let counts = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(l, c)| format!("{l} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let flows = c.flows.iter().map(|f| {
        let parts: Vec<String> = f
            .changes
            .iter()
            .map(|x| {
                format!(
                    "{} {} → {}",
                    name(x.field),
                    value(&x.before),
                    value(&x.after)
                )
            })
            .collect();
        format!("flow {}: {}", f.flow, parts.join("; "))
    });
    let splits = c.splits.iter().map(|s| {
        format!(
            "split `{}`: {} → {} (two-sample bound, false-alarm rate ≤ 1e-6)",
            s.expectation,
            counts(&s.before),
            counts(&s.after)
        )
    });
    flows.chain(splits).collect()
}

/// An event and the figures around it, on one line: `wan1_dies (wan1) at 0.304 s: of 4
/// connections running then 2 survived, 0 were reset, 2 died; of 18 flows started after it,
/// the last to leave via wan1 started 12 ms after it, the first by another uplink 2 ms after`.
pub fn event(e: &crate::verdict::EventFigures) -> String {
    let s = &e.spanning;
    let running = s.survived + s.reset + s.died;
    let spanning = if running == 0 {
        "no connection was running then".to_string()
    } else {
        format!(
            "of {running} connection{} running then {} survived, {} {} reset, {} died",
            if running == 1 { "" } else { "s" },
            s.survived,
            s.reset,
            if s.reset == 1 { "was" } else { "were" },
            s.died
        )
    };
    let after = if e.started_after == 0 {
        "no flow started after it".to_string()
    } else if e.restores {
        format!(
            "of {} flow{} started after it, {}",
            e.started_after,
            if e.started_after == 1 { "" } else { "s" },
            match e.first_on_link_ms {
                Some(t) => format!(
                    "the first to leave via {} again started {} after it",
                    e.link,
                    ms(t)
                ),
                None => format!("none left via {}", e.link),
            }
        )
    } else {
        format!(
            "of {} flow{} started after it, {}; {}",
            e.started_after,
            if e.started_after == 1 { "" } else { "s" },
            match e.last_on_link_ms {
                Some(t) => format!(
                    "the last to leave via {} started {} after it",
                    e.link,
                    ms(t)
                ),
                None => format!("none left via {}", e.link),
            },
            match e.first_elsewhere_ms {
                Some(t) => format!("the first by another uplink {} after it", ms(t)),
                None => "none left by another uplink".to_string(),
            }
        )
    };
    format!(
        "event {} ({}) at {:.3} s: {spanning}; {after}",
        e.name,
        e.link,
        e.at_ms / 1000.0
    )
}

/// `12 ms`, `1.250 s`.
fn ms(t: f64) -> String {
    if t < 1000.0 {
        format!("{t:.0} ms")
    } else {
        format!("{:.3} s", t / 1000.0)
    }
}

/// What became of a flow, in the past tense: `survived`, `was reset`, `died`.
fn fate_was(f: Fate) -> &'static str {
    match f {
        Fate::Survives => "survived",
        Fate::Reset => "was reset",
        Fate::Dies => "died",
    }
}

/// A flow on the HTML page's timeline (its tooltip): `flow 1 (long, tcp 192.168.157.3:40001):
/// out via wan1 and wan2, back via wan1; died: round trip 7 of 10: no answer within 1450ms;
/// ran from 23.2 ms to 1474.9 ms, 59 packets`.
pub fn timeline_flow(f: &crate::verdict::FlowPath) -> String {
    let fate = match (f.fate(), &f.client_error) {
        (Fate::Survives, _) | (_, None) => fate_was(f.fate()).to_string(),
        (fate, Some(e)) => format!("{}: {e}", fate_was(fate)),
    };
    let times = match (f.started_ms, f.ended_ms) {
        (Some(a), Some(b)) => format!("ran from {a:.1} ms to {b:.1} ms"),
        (Some(a), None) => format!("started at {a:.1} ms"),
        _ => "its times were not recorded".to_string(),
    };
    format!(
        "flow {} ({}, {} {}): out via {}, back via {}; {fate}; {times}, {} packet{}",
        f.id,
        f.group,
        f.proto,
        f.client,
        uplinks(&f.out),
        uplinks(&f.back),
        f.packets,
        if f.packets == 1 { "" } else { "s" }
    )
}

/// Flows of a group gathered on one row of the timeline (its tooltip): `14 flows of new (7,
/// 9–21) left via wan2 and survived; they ran from 300.1 ms to 640.2 ms`.
pub fn timeline_flows(
    group: &str,
    uplink: &str,
    fate: Fate,
    ids: &[u32],
    span: Option<(f64, f64)>,
) -> String {
    const SHOWN: usize = 40;
    let named = if ids.len() > SHOWN {
        format!("{} … and {} more", ranges(&ids[..SHOWN]), ids.len() - SHOWN)
    } else {
        ranges(ids)
    };
    let way = if uplink == "no uplink" {
        "left on no uplink".to_string()
    } else {
        format!("left via {uplink}")
    };
    let when = match span {
        Some((a, b)) => format!("; they ran from {a:.1} ms to {b:.1} ms"),
        None => String::new(),
    };
    format!(
        "{} flow{} of {group} ({named}) {way} and {}{when}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        fate_was(fate)
    )
}

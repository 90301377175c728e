//! The timeline of a scenario whose run had events: a time axis since the captures started
//! (in ms; in s from ten seconds on), each event a vertical line, and a row per flow under its
//! traffic group's name: a bar from when it started to when its client was done, coloured by
//! the uplink its first packet left on, its fate at its end, and a tick per packet on its
//! client's link (out above the bar, replies below). With many flows, each group's flows are
//! gathered into a row per uplink and fate, so the drawing stays a few dozen rows high.
//! Tooltips are SVG `<title>`s; a row that names a flow links to the flow's place further down
//! the page, where it has one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{Fate, Plan};
use crate::report::words;
use crate::verdict::{Dir, FlowPath, Verdict};

use super::esc;

/// Flows drawn a row each; with more, each group's flows are gathered by uplink and fate.
pub(super) const MAX_FLOW_ROWS: usize = 60;

/// The bars' colours, by uplink in the order the topology lists them (then again from the
/// first). None is a path colour ([`super::OUT`], [`super::BACK`], [`super::DIED`]) nor the
/// drawings' uplink amber, so a screenshot still tells the drawings' colours apart.
pub const UPLINK_COLOURS: [&str; 10] = [
    "#7c3aed", "#0891b2", "#c2410c", "#db2777", "#4d7c0f", "#4338ca", "#0f766e", "#a16207",
    "#9333ea", "#be123c",
];
/// The bar of a flow that left on no uplink.
pub const NO_UPLINK: &str = "#94a3b8";
/// Packet ticks: the page's text shades of out and back, not the path colours.
const TICK_OUT: &str = "#1e40af";
const TICK_BACK: &str = "#15803d";

/// The drawing's width (its viewBox; the page scales it down to fit narrower windows).
const WIDTH: f64 = 840.0;
/// Room right of the axis for a fate mark and the last tick's label.
const RIGHT: f64 = 28.0;
/// Heights: a flow's row, a group's heading, a lane of event names.
const ROW: f64 = 17.0;
const HEAD: f64 = 20.0;
const LANE: f64 = 15.0;
/// Font sizes, and the width of a character at them (generous, so that estimates keep
/// texts apart).
const LABEL_PX: f64 = 12.0;
const EVENT_PX: f64 = 12.0;
const TICK_PX: f64 = 11.5;
const CHAR_EM: f64 = 0.64;

fn text_w(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * px * CHAR_EM
}

/// `s`, cut to at most `max` characters with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(max.saturating_sub(1)).collect();
        o.push('…');
        o
    }
}

/// The flows with an anchor (`id="{sid}-flow-N"`) in `html`, the rest of their section.
pub(super) fn anchors(html: &str, sid: &str) -> BTreeSet<u32> {
    let pat = format!("id=\"{sid}-flow-");
    html.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .collect()
}

/// A flow's packets on its client's link: when each was seen there (ms), which way.
fn client_ticks(f: &FlowPath, client: Option<&str>) -> Vec<(Dir, f64)> {
    f.trace
        .iter()
        .flatten()
        .filter_map(|p| {
            let h = match (p.dir, client) {
                (Dir::Out, Some(c)) => p.hops.iter().find(|h| h.from == c),
                (Dir::Back, Some(c)) => p.hops.iter().rev().find(|h| h.to == c),
                (Dir::Out, None) => p.hops.first(),
                (Dir::Back, None) => p.hops.last().filter(|_| p.died.is_none()),
            }?;
            Some((p.dir, h.t_ns as f64 / 1e6))
        })
        .collect()
}

/// When a flow ran (ms): from its start (or its first packet) to its client's end (or its
/// last packet).
fn span(f: &FlowPath, ticks: &[(Dir, f64)]) -> Option<(f64, f64)> {
    let first = ticks.iter().map(|t| t.1).reduce(f64::min);
    let last = ticks.iter().map(|t| t.1).reduce(f64::max);
    let a = f.started_ms.or(first)?;
    let b = f.ended_ms.or(last).unwrap_or(a).max(a);
    Some((a, b))
}

fn fate_mark(f: Fate) -> (&'static str, &'static str) {
    match f {
        Fate::Survives => ("✓", "s"),
        Fate::Reset => ("R", "r"),
        Fate::Dies => ("✕", "d"),
    }
}

/// A flow with what the timeline draws of it.
struct Drawn<'a> {
    f: &'a FlowPath,
    ticks: Vec<(Dir, f64)>,
    span: Option<(f64, f64)>,
}

enum Row<'a> {
    Group {
        name: &'a str,
        flows: usize,
    },
    Flow(Drawn<'a>),
    Many {
        group: &'a str,
        uplink: String,
        fate: Fate,
        flows: Vec<Drawn<'a>>,
    },
}

impl Row<'_> {
    fn height(&self) -> f64 {
        match self {
            Row::Group { .. } => HEAD,
            _ => ROW,
        }
    }
    fn label(&self) -> String {
        match self {
            Row::Group { .. } => String::new(),
            Row::Flow(d) => format!("flow {}", d.f.id),
            Row::Many { uplink, flows, .. } => {
                if uplink == "no uplink" {
                    format!("{}, no uplink", flows.len())
                } else {
                    format!("{} via {}", flows.len(), cut(uplink, 16))
                }
            }
        }
    }
}

/// Ms on the axis → x.
struct Scale {
    left: f64,
    right: f64,
    end: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        self.left + (t.clamp(0.0, self.end) / self.end) * (self.right - self.left)
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `min`.
fn nice_step(min: f64) -> f64 {
    let min = min.max(1e-3);
    let p = 10f64.powf(min.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= min * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// The timeline's part of a scenario's section, or nothing when its run had no event.
/// `anchored`: the flows that have a place of their own further down the page.
pub(super) fn section(sid: &str, plan: &Plan, v: &Verdict, anchored: &BTreeSet<u32>) -> String {
    if v.events.is_empty() {
        return String::new();
    }
    let topo = &plan.topology;
    let clients: BTreeMap<u32, &str> = plan
        .flows
        .iter()
        .map(|f| (f.id, f.client_node.as_str()))
        .collect();
    let colour = |uplink: Option<&str>| -> &'static str {
        uplink
            .and_then(|u| topo.router.uplinks.iter().position(|x| x == u))
            .map_or(NO_UPLINK, |i| UPLINK_COLOURS[i % UPLINK_COLOURS.len()])
    };

    // The flows by traffic group, groups in the order of their first flow.
    let mut groups: Vec<(&str, Vec<Drawn>)> = Vec::new();
    for f in &v.flows {
        let ticks = client_ticks(f, clients.get(&f.id).copied());
        let d = Drawn {
            span: span(f, &ticks),
            ticks,
            f,
        };
        match groups.iter_mut().find(|(g, _)| *g == f.group.as_str()) {
            Some((_, fs)) => fs.push(d),
            None => groups.push((f.group.as_str(), vec![d])),
        }
    }
    let gather = v.flows.len() > MAX_FLOW_ROWS;
    let mut rows: Vec<Row> = Vec::new();
    for (name, fs) in groups {
        rows.push(Row::Group {
            name,
            flows: fs.len(),
        });
        if !gather {
            rows.extend(fs.into_iter().map(Row::Flow));
            continue;
        }
        let rank = |u: &str| {
            topo.router
                .uplinks
                .iter()
                .position(|x| x == u)
                .unwrap_or(usize::MAX)
        };
        let mut by: BTreeMap<(usize, String, u8), (Fate, Vec<Drawn>)> = BTreeMap::new();
        for d in fs {
            let u = d.f.first_uplink().to_string();
            let fate = d.f.fate();
            let order = match fate {
                Fate::Survives => 0,
                Fate::Reset => 1,
                Fate::Dies => 2,
            };
            by.entry((rank(&u), u, order))
                .or_insert_with(|| (fate, Vec::new()))
                .1
                .push(d);
        }
        rows.extend(
            by.into_iter()
                .map(|((_, uplink, _), (fate, flows))| Row::Many {
                    group: name,
                    uplink,
                    fate,
                    flows,
                }),
        );
    }

    // Time: 0 to past the last thing seen, on a round step.
    let all = || {
        rows.iter().flat_map(|r| match r {
            Row::Flow(d) => std::slice::from_ref(d).iter(),
            Row::Many { flows, .. } => flows.iter(),
            Row::Group { .. } => [].iter(),
        })
    };
    let t_max = all()
        .flat_map(|d| {
            d.span
                .map(|s| s.1)
                .into_iter()
                .chain(d.ticks.iter().map(|t| t.1))
        })
        .chain(v.events.iter().map(|e| e.at_ms))
        .fold(1.0, f64::max);
    let longest = rows
        .iter()
        .map(|r| text_w(&r.label(), LABEL_PX))
        .fold(text_w("t, ms", TICK_PX), f64::max);
    let left = (longest + 18.0).clamp(80.0, 260.0);
    let right = WIDTH - RIGHT;
    let step = nice_step(t_max * 64.0 / (right - left));
    let end = (t_max / step).ceil().max(1.0) * step;
    let sc = Scale { left, right, end };
    // The axis in ms, or in s from ten seconds on.
    let (unit, per) = if end >= 10_000.0 {
        ("s", 1000.0)
    } else {
        ("ms", 1.0)
    };
    let decimals = if step / per >= 1.0 {
        0
    } else {
        (-(step / per).log10().floor()) as usize
    };

    // Event names in lanes, so that none overlaps another.
    let max_chars = ((right - left) / (EVENT_PX * CHAR_EM)) as usize;
    let mut lanes: Vec<f64> = Vec::new();
    let mut events: Vec<(f64, f64, usize, String)> = Vec::new();
    for e in &v.events {
        let label = cut(&format!("{} ({})", e.name, e.link), max_chars);
        let w = text_w(&label, EVENT_PX);
        let x = sc.x(e.at_ms);
        let cx = x.clamp(left + w / 2.0, WIDTH - 4.0 - w / 2.0);
        let lane = match lanes.iter().position(|r| cx - w / 2.0 > r + 8.0) {
            Some(k) => k,
            None => {
                lanes.push(f64::MIN);
                lanes.len() - 1
            }
        };
        lanes[lane] = cx + w / 2.0;
        events.push((x, cx, lane, label));
    }
    let top = 4.0;
    let axis_text = top + LANE * lanes.len() as f64 + 13.0;
    let axis = axis_text + 6.0;
    let first_row = axis + 4.0;
    let bottom = first_row + rows.iter().map(Row::height).sum::<f64>();
    let height = bottom + 8.0;

    let mut s = String::new();
    let _ = write!(
        s,
        "<h3 id=\"{sid}-timeline\">Timeline</h3>\n<div class=\"timeline\"><svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"timeline of {}\"><title>timeline of {}: the events, and when each flow ran</title>",
        esc(&v.scenario),
        esc(&v.scenario)
    );
    // Stripes under every other flow row, then the grid and the axis.
    let mut y = first_row;
    let mut k = 0;
    s.push_str("<g class=\"stripes\">");
    for r in &rows {
        match r {
            Row::Group { .. } => k = 0,
            _ => {
                if k % 2 == 1 {
                    let _ = write!(
                        s,
                        "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH:.0}\" height=\"{ROW:.0}\" fill=\"#f1f5f9\"/>"
                    );
                }
                k += 1;
            }
        }
        y += r.height();
    }
    s.push_str("</g><g class=\"axis\">");
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{axis_text:.1}\" class=\"tl-t\" text-anchor=\"end\">t, {unit}</text><line x1=\"{left:.1}\" y1=\"{axis:.1}\" x2=\"{right:.1}\" y2=\"{axis:.1}\" stroke=\"#64748b\"/>",
        left - 12.0
    );
    let ticks = (end / step).round() as usize;
    for i in 0..=ticks {
        let t = i as f64 * step;
        let x = sc.x(t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#e2e8f0\"/><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{axis:.1}\" stroke=\"#64748b\"/><text x=\"{x:.1}\" y=\"{axis_text:.1}\" class=\"tl-t\" text-anchor=\"middle\">{:.decimals$}</text>",
            axis + 1.0,
            axis - 4.0,
            t / per
        );
    }
    s.push_str("</g>");

    // The rows.
    let mut y = first_row;
    s.push_str("<g class=\"rows\">");
    for r in &rows {
        let mid = y + ROW / 2.0;
        match r {
            Row::Group { name, flows } => {
                let text = format!(
                    "{} · {flows} flow{}",
                    cut(name, 60),
                    if *flows == 1 { "" } else { "s" }
                );
                let _ = write!(
                    s,
                    "<g class=\"tl-group\" data-group=\"{}\"><line x1=\"0\" y1=\"{:.1}\" x2=\"{WIDTH:.0}\" y2=\"{:.1}\" stroke=\"#cbd5e1\"/><text x=\"6\" y=\"{:.1}\" class=\"tl-g\">{}</text></g>",
                    esc(name),
                    y + 0.5,
                    y + 0.5,
                    y + 14.5,
                    esc(&text)
                );
            }
            Row::Flow(d) => {
                let f = d.f;
                let link = anchored.contains(&f.id);
                if link {
                    let _ = write!(s, "<a href=\"#{sid}-flow-{}\">", f.id);
                }
                let _ = write!(
                    s,
                    "<g class=\"tl-row\" data-flow=\"{}\"><title>{}</title><text x=\"{:.1}\" y=\"{:.1}\" class=\"tl-l{}\" text-anchor=\"end\">{}</text>",
                    f.id,
                    esc(&words::timeline_flow(f)),
                    left - 8.0,
                    mid + 4.0,
                    if link { " a" } else { "" },
                    esc(&r.label())
                );
                let c = colour(f.first_out.as_deref());
                bar(&mut s, &sc, d.span, mid, c, 1.0);
                ticks_of(&mut s, &sc, &d.ticks, mid);
                let end_x = d.span.map_or(left, |(_, b)| sc.x(b));
                mark(&mut s, f.fate(), end_x, mid);
                s.push_str("</g>");
                if link {
                    s.push_str("</a>");
                }
            }
            Row::Many {
                group,
                uplink,
                fate,
                flows,
            } => {
                let ids: Vec<u32> = flows.iter().map(|d| d.f.id).collect();
                let spans: Vec<(f64, f64)> = flows.iter().filter_map(|d| d.span).collect();
                let whole = spans
                    .iter()
                    .copied()
                    .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
                let _ = write!(
                    s,
                    "<g class=\"tl-row\" data-flows=\"{}\"><title>{}</title><text x=\"{:.1}\" y=\"{:.1}\" class=\"tl-l\" text-anchor=\"end\">{}</text>",
                    ids.len(),
                    esc(&words::timeline_flows(group, uplink, *fate, &ids, whole)),
                    left - 8.0,
                    mid + 4.0,
                    esc(&r.label())
                );
                let c = colour((uplink != "no uplink").then_some(uplink.as_str()));
                bar(&mut s, &sc, whole, mid, c, 0.35);
                // Each flow's start, a stroke across the bar.
                let mut xs: BTreeSet<i64> = BTreeSet::new();
                for (a, _) in &spans {
                    xs.insert((sc.x(*a) * 2.0).round() as i64);
                }
                if !xs.is_empty() {
                    s.push_str("<path d=\"");
                    for x in xs {
                        let _ = write!(s, "M{:.1} {:.1}v8", x as f64 / 2.0, mid - 4.0);
                    }
                    let _ = write!(s, "\" stroke=\"{c}\" stroke-width=\"1.2\"/>");
                }
                let end_x = whole.map_or(left, |(_, b)| sc.x(b));
                mark(&mut s, *fate, end_x, mid);
                s.push_str("</g>");
            }
        }
        y += r.height();
    }
    s.push_str("</g>");

    // The events over the rows, their names above the axis.
    s.push_str("<g class=\"events\">");
    for ((x, cx, lane, label), e) in events.iter().zip(&v.events) {
        let base = top + LANE * (*lane as f64 + 1.0) - 3.0;
        let _ = write!(
            s,
            "<g class=\"tl-event\" data-event=\"{}\"><title>{}</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#0f172a\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/><text x=\"{cx:.1}\" y=\"{base:.1}\" class=\"tl-e\" text-anchor=\"middle\">{}</text></g>",
            esc(&e.name),
            esc(&words::event(e)),
            base + 3.0,
            esc(label)
        );
    }
    s.push_str("</g></svg></div>\n");

    legend(&mut s, topo.router.uplinks.as_slice(), &v.flows, gather);
    s.push_str("<ul class=\"events\">");
    for e in &v.events {
        let _ = write!(s, "<li>{}</li>", esc(&words::event(e)));
    }
    s.push_str("</ul>\n");
    s
}

/// A bar from `span`'s start to its end, at least 2 px wide.
fn bar(s: &mut String, sc: &Scale, span: Option<(f64, f64)>, mid: f64, colour: &str, op: f64) {
    let Some((a, b)) = span else { return };
    let (x0, x1) = (sc.x(a), sc.x(b));
    let _ = write!(
        s,
        "<rect class=\"tl-bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" rx=\"1.5\" fill=\"{colour}\"{} data-from=\"{a:.1}\" data-to=\"{b:.1}\"/>",
        mid - 3.0,
        (x1 - x0).max(2.0),
        if op < 1.0 {
            format!(" fill-opacity=\"{op}\"")
        } else {
            String::new()
        }
    );
}

/// A tick per packet on the client's link: out above the bar, replies below (one per half
/// pixel).
fn ticks_of(s: &mut String, sc: &Scale, ticks: &[(Dir, f64)], mid: f64) {
    for (dir, colour, y0, cls) in [
        (Dir::Out, TICK_OUT, mid - 8.5, "out"),
        (Dir::Back, TICK_BACK, mid + 3.5, "back"),
    ] {
        let xs: BTreeSet<i64> = ticks
            .iter()
            .filter(|t| t.0 == dir)
            .map(|t| (sc.x(t.1) * 2.0).round() as i64)
            .collect();
        if xs.is_empty() {
            continue;
        }
        let _ = write!(s, "<path class=\"tl-{cls}\" d=\"");
        for x in xs {
            let _ = write!(s, "M{:.1} {y0:.1}v5", x as f64 / 2.0);
        }
        let _ = write!(s, "\" stroke=\"{colour}\" stroke-width=\"1.3\"/>");
    }
}

fn mark(s: &mut String, fate: Fate, x: f64, mid: f64) {
    let (glyph, cls) = fate_mark(fate);
    let _ = write!(
        s,
        "<text class=\"tl-f {cls}\" x=\"{:.1}\" y=\"{:.1}\">{glyph}</text>",
        x + 4.0,
        mid + 4.0
    );
}

/// What the colours and marks mean: the uplinks the flows left on, the fates, the ticks.
fn legend(s: &mut String, uplinks: &[String], flows: &[FlowPath], gathered: bool) {
    let used: BTreeSet<&str> = flows.iter().map(|f| f.first_uplink()).collect();
    s.push_str("<div class=\"legend\">");
    for (i, u) in uplinks.iter().enumerate() {
        if used.contains(u.as_str()) {
            let _ = write!(
                s,
                "<span>{}first packet left via {}</span>",
                swatch(UPLINK_COLOURS[i % UPLINK_COLOURS.len()]),
                esc(u)
            );
        }
    }
    if used.contains("no uplink") {
        let _ = write!(s, "<span>{}on no uplink</span>", swatch(NO_UPLINK));
    }
    s.push_str("<span><b class=\"tl-f s\">✓</b> survived</span><span><b class=\"tl-f r\">R</b> reset</span><span><b class=\"tl-f d\">✕</b> died</span>");
    if gathered {
        s.push_str(
            "<span>a row per group, uplink and fate: its flows' starts across the bar</span>",
        );
    } else {
        let _ = write!(
            s,
            "<span><svg width=\"26\" height=\"14\" aria-hidden=\"true\"><rect x=\"1\" y=\"4\" width=\"24\" height=\"6\" rx=\"1.5\" fill=\"{NO_UPLINK}\"/><path d=\"M7 0v4.5M15 0v4.5\" stroke=\"{TICK_OUT}\"/><path d=\"M11 9.5v4.5M19 9.5v4.5\" stroke=\"{TICK_BACK}\"/></svg>packets on the client's link: out above, replies below</span>"
        );
    }
    s.push_str("<span><svg width=\"10\" height=\"14\" aria-hidden=\"true\"><line x1=\"5\" y1=\"0\" x2=\"5\" y2=\"14\" stroke=\"#0f172a\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/></svg>an event</span></div>\n");
}

fn swatch(colour: &str) -> String {
    format!(
        "<svg width=\"26\" height=\"10\" aria-hidden=\"true\"><rect x=\"1\" y=\"2\" width=\"24\" height=\"6\" rx=\"1.5\" fill=\"{colour}\"/></svg>"
    )
}

//! The parts of one scenario's section: its heading, its expectations, its failing flows
//! hop by hop, and the other flows grouped by the path they took.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{FlowSpec, Topology};
use crate::report::words;
use crate::verdict::{split_counts, Dir, FlowPath, HopTrace, Outcome, PacketTrace, Verdict};
use smol_str::SmolStr;

use super::svg::{grid, legend, roles, svg, Drawing, Ends, Overlay, Size};
use super::{
    esc, outcome_words, slug, some_ids, NotLoaded, Scenario, Skipped, MAX_DETAILED, MAX_PACKETS,
    MAX_ROWS, NOT_LOADED, SKIPPED,
};

/// The section of a scenario whose rules did not load: its heading, where it is, the
/// topology, and the error in full where the flows would be.
pub(super) fn not_loaded(s: &mut String, i: usize, n: &NotLoaded) {
    let (plan, topo) = (n.plan, &n.plan.topology);
    let _ = write!(
        s,
        "<section class=\"scenario fail\" id=\"r{i}-{}\">\n<h2><span class=\"badge fail\">{}</span> {}</h2>\n<p class=\"summary\">The rules of <code>{}</code> did not load, so no flow ran: the rule set fails this scenario.</p>\n",
        slug(&plan.name),
        esc(NOT_LOADED),
        esc(&plan.name),
        esc(n.router)
    );
    if let Some(d) = &plan.description {
        let _ = writeln!(s, "<p>{}</p>", esc(d));
    }
    let _ = writeln!(
        s,
        "<p class=\"meta\"><code>{}</code> · topology <b>{}</b> · router <b>{}</b>, uplinks {}</p>",
        esc(&plan.file.display().to_string()),
        esc(&topo.name),
        esc(&topo.router.node),
        esc(&topo.router.uplinks.join(", "))
    );
    let _ = writeln!(
        s,
        "<pre class=\"rules-error\" style=\"white-space: pre-wrap; background: #fef2f2; border: 1px solid #fecaca; border-radius: 4px; padding: 8px 10px;\">{}</pre>\n</section>",
        esc(n.error)
    );
}

/// The section of a scenario the gate skipped: its heading, why, and where it is.
pub(super) fn skipped(s: &mut String, i: usize, k: &Skipped) {
    let (plan, topo) = (k.plan, &k.plan.topology);
    let _ = write!(
        s,
        "<section class=\"scenario skipped\" id=\"k{i}-{}\">\n<h2><span class=\"badge skipped\">{SKIPPED}</span> {}</h2>\n<p class=\"summary\">Not run: {}. It counts neither as passed nor as failed.</p>\n",
        slug(&plan.name),
        esc(&plan.name),
        esc(k.reason)
    );
    if let Some(d) = &plan.description {
        let _ = writeln!(s, "<p>{}</p>", esc(d));
    }
    let _ = writeln!(
        s,
        "<p class=\"meta\"><code>{}</code> · topology <b>{}</b> · router <b>{}</b>, uplinks {}</p>\n</section>",
        esc(&plan.file.display().to_string()),
        esc(&topo.name),
        esc(&topo.router.node),
        esc(&topo.router.uplinks.join(", "))
    );
}

pub(super) fn scenario(s: &mut String, i: usize, sc: &Scenario) {
    let (plan, v) = (sc.plan, sc.verdict);
    let topo = &plan.topology;
    let sid = format!("s{i}-{}", slug(&v.scenario));
    let (word, class) = outcome_words(&v.outcome);
    let _ = write!(
        s,
        "<section class=\"scenario {class}\" id=\"{sid}\">\n<h2><span class=\"badge {class}\">{}</span> {}</h2>\n<p class=\"summary\">{}</p>\n",
        esc(word),
        esc(&v.scenario),
        esc(&crate::report::summary(v))
    );
    if let Some(d) = &plan.description {
        let _ = writeln!(s, "<p>{}</p>", esc(d));
    }
    if let Outcome::NotAsDeclared(problems) = &v.outcome {
        s.push_str("<ul class=\"failures\">");
        for p in problems {
            let _ = write!(s, "<li>{}</li>", esc(&words::problem(v, p)));
        }
        s.push_str("</ul>\n");
    }
    let _ = writeln!(
        s,
        "<p class=\"meta\"><code>{}</code> · topology <b>{}</b> · router <b>{}</b>, uplinks {} · {} flows</p>",
        esc(&plan.file.display().to_string()),
        esc(&topo.name),
        esc(&topo.router.node),
        esc(&topo.router.uplinks.join(", ")),
        v.flows.len()
    );

    let g = grid(topo);
    let big = Drawing::new(topo, &g, Size::Topology, roles(plan));
    let small = Drawing::new(topo, &g, Size::Flow, BTreeMap::new());
    let _ = writeln!(
        s,
        "<div class=\"drawing\">{}</div>{}",
        svg(&big, None, None, &format!("topology {}", topo.name)),
        legend()
    );

    expectations(s, &sid, v);
    // The timeline goes here, once the flows below are written: its rows link to theirs.
    let timeline_at = s.len();

    // Each flow's packets, hop by hop, as the verdict kept them (`Traces::All`).
    let traces: BTreeMap<u32, &Vec<PacketTrace>> = v
        .flows
        .iter()
        .filter_map(|f| f.trace.as_ref().map(|t| (f.id, t)))
        .collect();
    let specs: BTreeMap<u32, &FlowSpec> = plan.flows.iter().map(|f| (f.id, f)).collect();
    let failing: BTreeSet<u32> = v.results.iter().flat_map(|r| r.failed_flows()).collect();
    let none = Vec::new();
    if !failing.is_empty() {
        let _ = writeln!(
            s,
            "<h3>Failing flows ({}){}</h3>",
            failing.len(),
            if v.outcome == Outcome::BrokenAsDeclared {
                " — the breakage this rule set is declared to show"
            } else {
                ""
            }
        );
        for (k, id) in failing.iter().enumerate() {
            let Some(f) = v.flows.iter().find(|f| f.id == *id) else {
                continue;
            };
            if k == MAX_DETAILED {
                let rest: Vec<u32> = failing.iter().skip(MAX_DETAILED).copied().collect();
                let _ = writeln!(
                    s,
                    "<p class=\"note\">{} more failing flows not drawn: {}. The JSON result file has them all.</p>",
                    rest.len(),
                    esc(&some_ids(&rest))
                );
                break;
            }
            failing_flow(
                s,
                &sid,
                v,
                f,
                specs.get(id).copied(),
                traces.get(id).copied().unwrap_or(&none),
                &small,
            );
        }
    }

    // The rest, one drawing per path.
    let together = v.statistical_flows();
    let mut groups: BTreeMap<Overlay, Vec<&FlowPath>> = BTreeMap::new();
    for f in v.flows.iter().filter(|f| !failing.contains(&f.id)) {
        groups
            .entry(Overlay::of(
                topo,
                traces.get(&f.id).copied().unwrap_or(&none),
            ))
            .or_default()
            .push(f);
    }
    let mut groups: Vec<(Overlay, Vec<&FlowPath>)> = groups.into_iter().collect();
    groups.sort_by_key(|(_, fs)| fs[0].id);
    if !groups.is_empty() {
        let _ = writeln!(
            s,
            "<h3>{} flows ({}), by the path they took</h3>",
            if failing.is_empty() { "All" } else { "Other" },
            v.flows.len() - failing.len()
        );
    }
    if !together.is_empty() {
        statistical(s, v, &together);
    }
    for (o, fs) in &groups {
        group(s, &sid, v, o, fs, &together, &small);
    }
    let anchored = super::timeline::anchors(&s[timeline_at..], &sid);
    s.insert_str(
        timeline_at,
        &super::timeline::section(&sid, plan, v, &anchored),
    );
    s.push_str("</section>\n");
}

fn expectations(s: &mut String, sid: &str, v: &Verdict) {
    s.push_str("<h3>Expectations</h3>\n<table class=\"exp\"><thead><tr><th>expectation</th><th>check</th><th>flows</th><th>result</th></tr></thead><tbody>\n");
    for r in &v.results {
        let result = if !r.broke() {
            match &r.split {
                Some(o) => format!(
                    "<span class=\"held\">held</span>: {}",
                    esc(&words::split(o))
                ),
                None => "<span class=\"held\">held</span>".to_string(),
            }
        } else if r.broke_overall {
            format!(
                "<span class=\"broke\">BROKE</span>: {}",
                esc(&words::observed(v, &r.name))
            )
        } else {
            let links: Vec<String> = r
                .failed_flows()
                .iter()
                .map(|id| format!("<a href=\"#{sid}-flow-{id}\">{id}</a>"))
                .collect();
            format!(
                "<span class=\"broke\">BROKE</span> for {} of {} flows: {}",
                r.failures.len(),
                r.flows.len(),
                links.join(", ")
            )
        };
        let _ = writeln!(
            s,
            "<tr><td><b>{}</b></td><td><code>{}</code></td><td>{}</td><td>{result}</td></tr>",
            esc(&r.name),
            esc(&r.check),
            esc(&r.selector)
        );
    }
    s.push_str("</tbody></table>\n");
    if let Some(d) = &v.declared {
        let _ = writeln!(
            s,
            "<p class=\"meta\">Declared broken: {}</p>",
            esc(&d.reason)
        );
    }
}

fn or_dash(v: &[SmolStr]) -> String {
    words::join(v, ", ", "—")
}

/// `tcp 192.168.157.3:40002 → 172.16.1.100:80`
fn flow_title(f: &FlowPath, spec: Option<&FlowSpec>) -> String {
    let to = spec.map_or(String::new(), |sp| format!(" → {}", sp.dial));
    format!("{} {}{to}", f.proto, f.client)
}

fn failing_flow(
    s: &mut String,
    sid: &str,
    v: &Verdict,
    f: &FlowPath,
    spec: Option<&FlowSpec>,
    packets: &[PacketTrace],
    d: &Drawing,
) {
    let verdict = crate::report::flow_verdict(v, f);
    let badge = if v.broken_as_declared(f.id) {
        "declared"
    } else {
        "fail"
    };
    let _ = writeln!(
        s,
        "<article class=\"flow bad\" id=\"{sid}-flow-{}\">\n<h4><span>flow {}</span> <span class=\"muted\">{}</span> <code>{}</code> <span class=\"badge {badge}\">{}</span></h4>",
        f.id,
        f.id,
        esc(&f.group),
        esc(&flow_title(f, spec)),
        esc(&verdict)
    );
    let ends = spec.map(|sp| Ends {
        client: &sp.client_node,
        server: &sp.server_node,
    });
    let overlay = Overlay::of(d.topo, packets);
    let _ = write!(
        s,
        "<div class=\"flowbody\"><div class=\"drawing\">{}</div><div class=\"facts\">",
        svg(d, Some(&overlay), ends.as_ref(), &format!("flow {}", f.id))
    );
    facts(s, f, spec);
    s.push_str("<h5>What broke</h5><ul class=\"failures\">");
    for r in &v.results {
        for x in r.failures.iter().filter(|x| x.flow == f.id) {
            let _ = write!(
                s,
                "<li><b>{}</b> <code>{}</code>: {}</li>",
                esc(&r.name),
                esc(&r.check),
                esc(&words::finding(v, x))
            );
        }
    }
    s.push_str("</ul>");
    if !f.story.is_empty() {
        s.push_str("<h5>What its packets did</h5><ul class=\"story\">");
        for step in &f.story {
            let _ = write!(s, "<li>{}</li>", esc(&words::step(step)));
        }
        s.push_str("</ul>");
    }
    s.push_str("</div></div>\n");
    hops(s, d.topo, spec, packets);
    s.push_str("</article>\n");
}

fn facts(s: &mut String, f: &FlowPath, spec: Option<&FlowSpec>) {
    let mut rows: Vec<(&str, String)> = vec![
        ("out via", or_dash(&f.out)),
        ("back via", or_dash(&f.back)),
        (
            "source seen",
            f.source_seen.map_or("—".into(), |a| a.to_string()),
        ),
        (
            "conntrack mark",
            f.mark.map_or("—".into(), |m| m.to_string()),
        ),
        (
            "completed",
            if f.completed {
                "yes".into()
            } else {
                format!(
                    "no — {}",
                    f.client_error.as_deref().unwrap_or("no outcome recorded")
                )
            },
        ),
        ("packets seen", f.packets.to_string()),
    ];
    if let Some(sp) = spec {
        rows.insert(
            0,
            (
                "between",
                format!("{} → {}", sp.client_node, sp.server_node),
            ),
        );
    }
    if let Some(d) = words::drops(&f.drops) {
        rows.push(("died", d));
    }
    s.push_str("<dl class=\"kv\">");
    for (k, val) in rows {
        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&val));
    }
    s.push_str("</dl>");
}

/// `10.37.2.253:40002`, with the parts that differ from the packet's first sighting marked.
fn endpoint(addr: IpAddr, port: u16, first: (IpAddr, u16), ports: bool) -> String {
    let a = if addr == first.0 {
        addr.to_string()
    } else {
        format!("<mark class=\"nat\">{addr}</mark>")
    };
    if !ports {
        return a;
    }
    let p = if port == first.1 {
        port.to_string()
    } else {
        format!("<mark class=\"nat\">{port}</mark>")
    };
    format!("{a}:{p}")
}

fn hops(s: &mut String, topo: &Topology, spec: Option<&FlowSpec>, packets: &[PacketTrace]) {
    let _ = writeln!(
        s,
        "<h5>Packets hop by hop ({}{})</h5>",
        packets.len(),
        if packets.len() > MAX_PACKETS {
            format!(", the first {MAX_PACKETS}")
        } else {
            String::new()
        }
    );
    if packets.is_empty() {
        s.push_str("<p class=\"note\">No packet of this flow was seen on any link.</p>\n");
        return;
    }
    let t0 = packets
        .iter()
        .flat_map(|p| p.hops.iter().map(|h| h.t_ns))
        .min()
        .unwrap_or(0);
    s.push_str("<table class=\"hops\"><thead><tr><th>#</th><th>t ms</th><th colspan=\"2\">packet</th><th>seen on, in path order: link · sender → receiver, source → destination there (<mark class=\"nat\">changed</mark> by NAT)</th></tr></thead><tbody>\n");
    for (k, p) in packets.iter().take(MAX_PACKETS).enumerate() {
        let (arrow, dcls) = match p.dir {
            Dir::Out => ("→", "out"),
            Dir::Back => ("←", "back"),
        };
        let ports = p.proto != 1;
        let first: &HopTrace = &p.hops[0];
        let t = p.hops.iter().map(|h| h.t_ns).min().unwrap_or(t0);
        let what = if p.flags.is_empty() {
            format!("<b>{}</b>", esc(p.kind))
        } else {
            format!(
                "<b>{}</b> <span class=\"muted\">[{}]</span>",
                esc(p.kind),
                esc(&p.flags)
            )
        };
        let len = if p.payload_len > 0 {
            format!(" <span class=\"muted\">{} B</span>", p.payload_len)
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<tr class=\"{dcls}\"><td class=\"n\">{}</td><td class=\"t\">{:.1}</td><td class=\"dir {dcls}\">{arrow}</td><td class=\"what\">{what}{len}</td><td><div class=\"chain\">",
            k + 1,
            (t - t0) as f64 / 1e6
        );
        for (j, h) in p.hops.iter().enumerate() {
            if j > 0 {
                s.push_str("<span class=\"sep\">›</span>");
            }
            let last_died = p
                .died
                .as_ref()
                .is_some_and(|(node, link)| *link == h.link && *node == h.to)
                && j + 1 == p.hops.len();
            let up = topo.router.uplinks.iter().any(|u| *u == h.link);
            let _ = write!(
                s,
                "<span class=\"hop {dcls}{}\"><span class=\"l{}\">{}</span> {} → {}<br><code>{} → {}</code></span>",
                if last_died { " last-died" } else { "" },
                if up { " up" } else { "" },
                esc(&h.link),
                esc(&h.from),
                esc(&h.to),
                endpoint(h.src, h.sport, (first.src, first.sport), ports),
                endpoint(h.dst, h.dport, (first.dst, first.dport), ports),
            );
        }
        match &p.died {
            Some((node, link)) => {
                let _ = write!(
                    s,
                    "<span class=\"end died\">✕ died at {} (last seen on {})</span>",
                    esc(node),
                    esc(link)
                );
            }
            None => {
                let dest = spec.map(|sp| {
                    if p.dir == Dir::Out {
                        sp.server_node.as_str()
                    } else {
                        sp.client_node.as_str()
                    }
                });
                let _ = write!(
                    s,
                    "<span class=\"end ok\">✓ reached {}</span>",
                    esc(dest.unwrap_or("its end"))
                );
            }
        }
        s.push_str("</div></td></tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

/// Flows judged together: how many left on each uplink.
fn statistical(s: &mut String, v: &Verdict, together: &BTreeSet<u32>) {
    let flows = || v.flows.iter().filter(|f| together.contains(&f.id));
    let counts = split_counts(flows());
    let done = flows().filter(|f| f.completed).count();
    let parts: Vec<String> = counts
        .iter()
        .map(|(l, c)| format!("<b>{}</b> {c}", esc(l)))
        .collect();
    let _ = writeln!(
        s,
        "<p>{} flows are judged together by their split (which uplink each takes varies from run to run); they left via: {}; {done} completed.</p>",
        together.len(),
        parts.join(" · ")
    );
}

fn group(
    s: &mut String,
    sid: &str,
    v: &Verdict,
    o: &Overlay,
    fs: &[&FlowPath],
    together: &BTreeSet<u32>,
    d: &Drawing,
) {
    let ids: Vec<u32> = fs.iter().map(|f| f.id).collect();
    let first = fs[0];
    let how = if o.crossed.is_empty() {
        "no packet seen".to_string()
    } else {
        format!(
            "out via {}, back via {}",
            or_dash(&first.out).replace('—', "no uplink"),
            or_dash(&first.back).replace('—', "no uplink")
        )
    };
    let all_together = ids.iter().all(|id| together.contains(id));
    // Flows judged together are many and scattered: their count says more than their ids.
    let named = if all_together && ids.len() > 1 {
        String::new()
    } else {
        format!(
            "{} {}: ",
            if ids.len() == 1 { "flow" } else { "flows" },
            some_ids(&ids)
        )
    };
    let _ = writeln!(
        s,
        "<article class=\"flow group\" id=\"{sid}-path-{}\">\n<h4><span>{}{} flow{}</span> <span class=\"muted\">{}</span></h4>",
        first.id,
        esc(&named),
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        esc(&how)
    );
    let _ = write!(
        s,
        "<div class=\"flowbody\"><div class=\"drawing\">{}</div><div class=\"facts\">",
        svg(
            d,
            Some(o),
            None,
            &format!("the path of flows {}", some_ids(&ids))
        )
    );
    if all_together && fs.len() > 1 {
        let _ = write!(
            s,
            "<p class=\"note\">Judged together by their split: {} flows took this path (flows {}).</p>",
            fs.len(),
            esc(&some_ids(&ids[..ids.len().min(12)]))
                + if ids.len() > 12 { ", …" } else { "" }
        );
    } else {
        s.push_str("<table><thead><tr><th>flow</th><th>proto</th><th>client</th><th>out</th><th>back</th><th>source seen</th><th>mark</th><th>verdict</th></tr></thead><tbody>");
        for f in fs.iter().take(MAX_ROWS) {
            let _ = write!(
                s,
                "<tr id=\"{sid}-flow-{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                f.id,
                f.id,
                f.proto,
                f.client,
                esc(&or_dash(&f.out)),
                esc(&or_dash(&f.back)),
                f.source_seen.map_or("—".into(), |a| a.to_string()),
                f.mark.map_or("—".into(), |m| m.to_string()),
                esc(&crate::report::flow_verdict(v, f))
            );
        }
        s.push_str("</tbody></table>");
        if fs.len() > MAX_ROWS {
            let _ = write!(
                s,
                "<p class=\"note\">… and {} more flows on this path.</p>",
                fs.len() - MAX_ROWS
            );
        }
    }
    s.push_str("</div></div></article>\n");
}

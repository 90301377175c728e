//! The page's own checks: escaping, order, a failing flow's hops, the layout.

use rstest::rstest;

use super::svg::{grid, roles, Drawing, Size, UPLINK};
use super::timeline::UPLINK_COLOURS;
use super::*;
use crate::model::{self, repo_path};
use crate::observe::packet::{Packet, Tag, ACK};
use crate::observe::{ClientOutcome, Sighting};
use crate::verdict::{End, Finding, Step, Traces};

/// Judged as a run that writes HTML is: with every flow's packets kept.
fn judge(plan: &Plan, obs: &Observations) -> Verdict {
    crate::verdict::judge_with(plan, obs, &Traces::All)
}

fn load(rel: &str) -> Plan {
    model::load(&repo_path(rel)).expect("a valid scenario")
}

fn page_of(plan: &Plan, v: &Verdict, obs: &Observations) -> String {
    page(&[Scenario {
        plan,
        verdict: v,
        obs,
    }])
}

/// Flow `flow`'s data packet seen on `link`, sent by its `a` end or its `b` end.
fn seen(plan: &Plan, flow: u32, link: &str, by_a: bool, src: &str, t: u64) -> Sighting {
    let i = plan
        .topology
        .links
        .iter()
        .position(|l| l.name == link)
        .expect("link");
    Sighting {
        link: i,
        seq: t as u32,
        t_ns: t * 1_000_000,
        from_a: by_a,
        pkt: Packet {
            src: src.parse().unwrap(),
            dst: "172.16.1.100".parse().unwrap(),
            proto: 6,
            sport: model::client_port(flow),
            dport: 80,
            ip_id: 7,
            seq: 1,
            ack: 1,
            flags: ACK | 0x08,
            payload_len: 8,
            tag: Some(Tag {
                flow,
                request: true,
            }),
            icmp: None,
            inner: None,
        },
    }
}

/// Dual-ISP where flow 2's data left the LAN, crossed wan1 with wan2's source, and died.
fn stray() -> (Plan, Observations) {
    let plan = load("scenarios/dual-isp.yaml");
    let mut obs = Observations {
        sightings: vec![
            seen(&plan, 2, "lan", true, "192.168.157.3", 1),
            seen(&plan, 2, "wan1", true, "10.37.2.253", 2),
        ]
        .into(),
        ..Observations::default()
    };
    obs.clients.insert(
        2,
        ClientOutcome {
            round_trips_done: 0,
            completed: false,
            error: Some("round trip 1 of 5: no answer within 1s".into()),
            reset: false,
            recovered: false,
        },
    );
    (plan, obs)
}

#[rstest]
#[case::plain("dual-isp", "dual-isp")]
#[case::tags("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;")]
#[case::attribute("a\"b'c", "a&quot;b&#39;c")]
#[case::ampersand("AT&T <isp>", "AT&amp;T &lt;isp&gt;")]
fn escapes(#[case] raw: &str, #[case] want: &str) {
    assert_eq!(esc(raw), want);
}

#[test]
fn nothing_from_the_scenario_reaches_the_page_unescaped() {
    let (mut plan, obs) = stray();
    plan.description = Some("<script>alert('d')</script>".into());
    let mut v = judge(&plan, &obs);
    v.scenario = "<img src=x onerror=alert(1)>".into();
    v.results[0].failures[0].finding = Finding::DidNotComplete {
        error: Some("<b>bold</b> & \"quoted\"".into()),
    };
    v.flows[1].story.push(std::sync::Arc::new(Step {
        dir: crate::verdict::Dir::Out,
        count: 1,
        kinds: vec!["<iframe src=x>"],
        uplink: None,
        source: None,
        end: End::Reached("neptune".into()),
    }));
    let html = page_of(&plan, &v, &obs);
    for raw in ["<script", "<img", "<b>bold", "<iframe"] {
        assert!(!html.contains(raw), "`{raw}` is in the page unescaped");
    }
    for escaped in [
        "&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;",
        "&lt;iframe src=x&gt;",
    ] {
        assert!(html.contains(escaped), "`{escaped}` missing");
    }
    // Nothing to fetch, nothing to run.
    for external in ["src=\"http", "href=\"http", "<link", "@import", "url(http"] {
        assert!(
            !html.contains(external),
            "`{external}` in a self-contained page"
        );
    }
}

#[test]
fn failing_flows_come_first_and_failing_scenarios_before_passing_ones() {
    let (plan, obs) = stray();
    let mut v = judge(&plan, &obs);
    // Only flow 7 failed.
    for r in &mut v.results {
        r.failures.retain(|f| f.flow == 7);
    }
    v.outcome = Outcome::Fail;
    let mut ok = v.clone();
    ok.scenario = "all-good".into();
    for r in &mut ok.results {
        r.failures.clear();
    }
    ok.outcome = Outcome::Pass;
    let html = page(&[
        Scenario {
            plan: &plan,
            verdict: &ok,
            obs: &obs,
        },
        Scenario {
            plan: &plan,
            verdict: &v,
            obs: &obs,
        },
    ]);
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the page"))
    };
    // The failing scenario (given second) comes first, its failing flow before the others.
    assert!(at("id=\"s1-dual-isp\"") < at("id=\"s0-all-good\""));
    let failing = at("<h3>Failing flows (1)");
    let flow7 = at("<article class=\"flow bad\" id=\"s1-dual-isp-flow-7\"");
    let others = at("<h3>Other flows (9)");
    assert!(failing < flow7 && flow7 < others);
    assert!(others < at("id=\"s1-dual-isp-flow-1\""));
    assert_eq!(html.matches("class=\"flow bad\"").count(), 1);
    // Outcomes in words.
    assert!(html.contains("<span class=\"badge fail\">FAIL</span> dual-isp</h2>"));
    assert!(html.contains("<span class=\"badge pass\">pass</span> all-good</h2>"));
}

/// `harness gate`: a scenario whose rules did not load comes first, with the tool's words in
/// full (escaped) where the flows would be, and counts as failed.
#[test]
fn a_scenario_whose_rules_did_not_load_shows_why_first() {
    let plan = load("scenarios/dual-isp.yaml");
    let obs = Observations::default();
    let mut ok = judge(&plan, &obs);
    ok.scenario = "all-good".into();
    for r in &mut ok.results {
        r.failures.clear();
    }
    ok.outcome = Outcome::Pass;
    let html = page_with(
        &[Scenario {
            plan: &plan,
            verdict: &ok,
            obs: &obs,
        }],
        &[NotLoaded {
            plan: &plan,
            router: "jupiter",
            error: "b.rules:2: iptables-restore rejected this line on node `jupiter`:\n    -A X -j <NOPE>",
        }],
    );
    assert!(
        html.contains("<h1>harness: 2 scenarios, 1 FAILED</h1>"),
        "{html}"
    );
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the page"))
    };
    assert!(at("href=\"#r0-dual-isp\"") < at("href=\"#s0-all-good\""));
    assert!(at("id=\"r0-dual-isp\"") < at("id=\"s0-all-good\""));
    assert!(html.contains("<span class=\"badge fail\">FAIL: rules not loaded</span> dual-isp</h2>"));
    assert!(html.contains("on node `jupiter`:\n    -A X -j &lt;NOPE&gt;</pre>"));
    assert_eq!(
        page(&[]),
        page_with(&[], &[]),
        "page is page_with, nothing unloaded"
    );
}

/// `harness gate`: a skipped scenario comes last, with a `skipped` badge and why, counted in
/// the heading apart from the failures.
#[test]
fn a_skipped_scenario_is_listed_last_with_why() {
    let plan = load("scenarios/dual-isp.yaml");
    let twin = load("scenarios/dual-isp-no-restore.yaml");
    let obs = Observations::default();
    let v = judge(&plan, &obs);
    let html = page_gated(
        &[Scenario {
            plan: &plan,
            verdict: &v,
            obs: &obs,
        }],
        &[],
        &[Skipped {
            plan: &twin,
            reason: "declared broken (it tests the harness, not the rules)",
        }],
    );
    assert!(
        html.contains("<h1>harness: 2 scenarios, 1 FAILED, 1 skipped</h1>"),
        "{html}"
    );
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the page"))
    };
    assert!(at("href=\"#s0-dual-isp\"") < at("href=\"#k0-dual-isp-no-restore\""));
    assert!(at("id=\"s0-dual-isp\"") < at("id=\"k0-dual-isp-no-restore\""));
    assert!(html.contains(
        "<span class=\"badge skipped\">skipped</span> <a href=\"#k0-dual-isp-no-restore\">"
    ));
    assert!(html.contains(
        "<h2><span class=\"badge skipped\">skipped</span> dual-isp-no-restore</h2>\n<p class=\"summary\">Not run: declared broken (it tests the harness, not the rules). It counts neither as passed nor as failed.</p>"
    ));
    let alone = page_gated(
        &[],
        &[],
        &[Skipped {
            plan: &twin,
            reason: "declared broken (it tests the harness, not the rules)",
        }],
    );
    assert!(
        alone.contains("<h1>harness: 1 scenario, 1 skipped</h1>"),
        "nothing ran, so nothing was as expected: {alone}"
    );
    assert_eq!(
        page_with(&[], &[]),
        page_gated(&[], &[], &[]),
        "page_with is page_gated, nothing skipped"
    );
}

#[test]
fn a_failing_flow_lists_its_packets_hop_by_hop_and_colours_where_they_died() {
    let (plan, obs) = stray();
    let v = judge(&plan, &obs);
    let html = page_of(&plan, &v, &obs);
    let start = html
        .find("id=\"s0-dual-isp-flow-2\"")
        .expect("flow 2 is drawn");
    let end = start + html[start..].find("</article>").unwrap();
    let flow = &html[start..end];
    // Its path: out on lan, died on wan1 at isp1, which is marked.
    assert!(flow.contains(&format!(
        "stroke=\"{OUT}\" stroke-width=\"4\" data-link=\"lan\" data-dir=\"out\""
    )));
    assert!(flow.contains(&format!("stroke=\"{DIED}\"")));
    assert!(flow.contains("data-link=\"wan1\" data-dir=\"died\""));
    assert!(flow.contains("<g class=\"node died\" data-node=\"isp1\">"));
    // Its packet, link by link, node to node, with the source NAT marked where it changed.
    let lan = flow
        .find("<span class=\"l\">lan</span> saturn → jupiter")
        .unwrap();
    let wan1 = flow
        .find("<span class=\"l up\">wan1</span> jupiter → isp1")
        .unwrap();
    assert!(lan < wan1);
    assert!(flow.contains("<code>192.168.157.3:40002 → 172.16.1.100:80</code>"));
    assert!(flow
        .contains("<code><mark class=\"nat\">10.37.2.253</mark>:40002 → 172.16.1.100:80</code>"));
    assert!(flow.contains("✕ died at isp1 (last seen on wan1)"));
    assert!(flow.contains("round trip 1 of 5: no answer within 1s"));
}

/// One scenario per topology.
#[rstest]
#[case::jupiter("scenarios/dual-isp.yaml")]
#[case::jupiter3("scenarios/nth/three-uplinks.yaml")]
#[case::inbound("scenarios/inbound/dnat-return.yaml")]
#[case::hairpin("scenarios/inbound/hairpin-nat.yaml")]
#[case::tunnel("scenarios/local/tunnel-local-vs-forwarded.yaml")]
#[case::pbr("scenarios/pbr/ipset-port.yaml")]
#[case::seed004("scenarios/seed004/fwmark.yaml")]
fn the_drawing_holds_every_node_and_link_laid_out_around_the_router(#[case] rel: &str) {
    let plan = load(rel);
    let topo = &plan.topology;
    let html = page_of(
        &plan,
        &judge(&plan, &Observations::default()),
        &Observations::default(),
    );
    let start = html
        .find("<svg class=\"topo\"")
        .expect("a topology drawing");
    let drawing = &html[start..start + html[start..].find("</svg>").unwrap()];
    for n in &topo.nodes {
        assert!(
            drawing.contains(&format!("data-node=\"{}\"", n.name)),
            "node {} not drawn",
            n.name
        );
        assert!(drawing.contains(&format!(">{}</text>", n.name)));
    }
    for l in &topo.links {
        assert!(
            drawing.contains(&format!("data-link=\"{}\"", l.name)),
            "link {} not drawn",
            l.name
        );
        assert!(drawing.contains(&format!(">{}</text>", l.name)));
    }
    for u in &topo.router.uplinks {
        assert!(drawing.contains(&format!(
            "stroke=\"{UPLINK}\" stroke-width=\"6\" data-link=\"{u}\""
        )));
    }
    // No two boxes overlap; all are on the canvas; uplinks lead right of the router.
    let d = Drawing::new(topo, &grid(topo), Size::Topology, roles(&plan));
    let boxes: Vec<(f64, f64, f64, f64)> = d
        .centre
        .iter()
        .zip(&d.dims)
        .map(|(c, s)| {
            (
                c.0 - s.0 / 2.0,
                c.1 - s.1 / 2.0,
                c.0 + s.0 / 2.0,
                c.1 + s.1 / 2.0,
            )
        })
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        assert!(a.0 >= 0.0 && a.1 >= 0.0 && a.2 <= d.width && a.3 <= d.height);
        for b in &boxes[i + 1..] {
            assert!(
                a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1,
                "{a:?} overlaps {b:?}"
            );
        }
    }
    let x = |name: &str| d.centre[topo.nodes.iter().position(|n| n.name == name).unwrap()].0;
    let router = x(&topo.router.node);
    for l in topo
        .links
        .iter()
        .filter(|l| topo.router.uplinks.contains(&l.name))
    {
        let far = if l.a.node == topo.router.node {
            &l.b.node
        } else {
            &l.a.node
        };
        if far != "switch" {
            assert!(
                x(far) > router,
                "{far} is behind uplink {} but not right of the router",
                l.name
            );
        }
    }
    let lan_pc = topo.nodes.iter().find(|n| n.name == "saturn").unwrap();
    assert!(x(&lan_pc.name) < router, "the LAN PC is left of the router");
}

#[test]
fn many_failing_flows_are_capped_and_flows_judged_together_are_counted() {
    // 1000 flows, no packet seen: every flow fails its per-flow expectations.
    let plan = load("scenarios/ecmp/weighted.yaml");
    let obs = Observations::default();
    let v = judge(&plan, &obs);
    let html = page_of(&plan, &v, &obs);
    assert_eq!(html.matches("class=\"flow bad\"").count(), MAX_DETAILED);
    assert!(html.contains("975 more failing flows not drawn"));
    assert!(html.len() < 600_000, "{} bytes", html.len());
}

// ---------------------------------------------------------------------------------------
// The timeline

/// `plan` judged on nothing seen, then given an event at 300 ms on wan1 and, flow by flow,
/// times 100 ms apart (flow `n` from `100·n` to `100·n + 50` ms), the uplink `wan1` or
/// `wan2` by parity, and a fate by `n % 3` (0 survives, 1 reset, 2 dies).
fn timed(plan: &Plan) -> Verdict {
    let mut v = judge(plan, &Observations::default());
    v.events = vec![crate::verdict::EventFigures {
        name: "wan1_dies".into(),
        link: "wan1".into(),
        restores: false,
        at_ms: 300.0,
        spanning: crate::verdict::FateCounts {
            survived: 1,
            reset: 0,
            died: 1,
        },
        started_after: 7,
        last_on_link_ms: None,
        first_on_link_ms: None,
        first_elsewhere_ms: Some(100.0),
    }];
    v.timed = true;
    for f in &mut v.flows {
        let n = f64::from(f.id);
        f.started_ms = Some(100.0 * n);
        f.ended_ms = Some(100.0 * n + 50.0);
        f.first_out = Some(if f.id % 2 == 1 { "wan1" } else { "wan2" }.into());
        f.completed = f.id % 3 == 0;
        f.reset = f.id % 3 == 1;
    }
    v
}

/// The timeline's part of the page: from its heading to the event figures' end.
fn timeline_of(html: &str) -> &str {
    let start = html
        .find("<h3 id=\"s0-")
        .and_then(|_| html.find("-timeline\">Timeline</h3>"))
        .expect("a timeline");
    let end = start + html[start..].find("</ul>").expect("the event figures");
    &html[start..end]
}

/// The number in attribute `name="…"` of the first element after `from` in `s`.
fn attr(s: &str, from: &str, name: &str) -> f64 {
    let at = s
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {s}"));
    let rest = &s[at..];
    let k = rest.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
    rest[k..k + rest[k..].find('"').unwrap()].parse().unwrap()
}

/// The row of flow `id`, up to its end.
fn row_of(t: &str, id: u32) -> &str {
    let start = t
        .find(&format!("class=\"tl-row\" data-flow=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for flow {id}"));
    &t[start..start + t[start..].find("</g>").unwrap()]
}

#[test]
fn the_timeline_appears_only_for_a_run_with_events() {
    let plan = load("scenarios/dual-isp.yaml");
    let obs = Observations::default();
    let mut v = timed(&plan);
    let html = page_of(&plan, &v, &obs);
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    assert!(html.contains("<h3 id=\"s0-dual-isp-timeline\">Timeline</h3>"));
    // After the expectations, before the flows.
    let at = |needle: &str| html.find(needle).unwrap();
    assert!(at("<h3>Expectations</h3>") < at(">Timeline</h3>"));
    assert!(at(">Timeline</h3>") < at("<h3>Failing flows"));
    // The figures in words under the drawing.
    assert!(timeline_of(&html).contains(&format!(
        "<ul class=\"events\"><li>{}</li>",
        esc(&crate::report::words::event(&v.events[0]))
    )));
    v.events.clear();
    let html = page_of(&plan, &v, &obs);
    assert!(
        !html.contains("<svg class=\"timeline\"") && !html.contains("Timeline</h3>"),
        "a timeline without events"
    );
}

#[test]
fn a_row_per_flow_under_its_group_with_bars_placed_by_time_and_fates_marked() {
    let plan = load("scenarios/dual-isp.yaml");
    let v = timed(&plan);
    let html = page_of(&plan, &v, &Observations::default());
    let t = timeline_of(&html);
    assert_eq!(t.matches("class=\"tl-row\" data-flow=").count(), 10);
    assert!(
        !t.contains("data-flows="),
        "nothing gathered under the limit"
    );
    // Groups in the order of their first flow, each with its flows.
    let web = t.find("data-group=\"web\"").unwrap();
    let dns = t.find("data-group=\"dns\"").unwrap();
    assert!(web < t.find("data-flow=\"8\"").unwrap());
    assert!(t.find("data-flow=\"8\"").unwrap() < dns);
    assert!(dns < t.find("data-flow=\"9\"").unwrap());
    assert!(t.contains(">web · 8 flows</text>") && t.contains(">dns · 2 flows</text>"));
    // Bars from start to end on one linear scale (flow n: 100·n to 100·n + 50 ms).
    let x = |id: u32| attr(row_of(t, id), "<rect class=\"tl-bar\"", "x");
    let w = |id: u32| attr(row_of(t, id), "<rect class=\"tl-bar\"", "width");
    let per_ms = (x(9) - x(1)) / 800.0;
    assert!(per_ms > 0.5, "{per_ms} px per ms");
    for id in 1..=10 {
        let want = x(1) + per_ms * 100.0 * f64::from(id - 1);
        assert!(
            (x(id) - want).abs() < 0.2,
            "flow {id} at {}, not {want}",
            x(id)
        );
        assert!((w(id) - per_ms * 50.0).abs() < 0.2);
    }
    // The event's line between flow 2's bar and flow 3's start.
    let ev = attr(t, "data-event=\"wan1_dies\"", "x1");
    assert!((ev - (x(1) + per_ms * 200.0)).abs() < 0.2, "event at {ev}");
    assert!(t.contains(">wan1_dies (wan1)</text>"));
    // Coloured by the uplink the first packet left on.
    assert!(row_of(t, 1).contains(&format!("fill=\"{}\"", UPLINK_COLOURS[0])));
    assert!(row_of(t, 2).contains(&format!("fill=\"{}\"", UPLINK_COLOURS[1])));
    // Fates at the bars' ends.
    for (id, glyph, cls) in [(3, "✓", "s"), (4, "R", "r"), (5, "✕", "d")] {
        let r = row_of(t, id);
        assert!(
            r.contains(&format!("class=\"tl-f {cls}\"")) && r.contains(&format!(">{glyph}</text>")),
            "{r}"
        );
        assert!(attr(r, "class=\"tl-f", "x") > x(id) + w(id));
    }
    // Its tooltip says it all.
    assert!(row_of(t, 4).contains("<title>flow 4 (web, tcp 192.168.157.3:40004): out via no uplink, back via no uplink; was reset"));
}

#[test]
fn packets_are_ticked_on_the_client_link_out_above_and_replies_below() {
    let (plan, mut obs) = stray();
    // Flow 2's data left saturn on lan at 1 ms and died; a reply to it reached saturn at 4 ms.
    let mut back = seen(&plan, 2, "lan", false, "172.16.1.100", 4);
    back.pkt.dst = "192.168.157.3".parse().unwrap();
    back.pkt.src = "172.16.1.100".parse().unwrap();
    std::mem::swap(&mut back.pkt.sport, &mut back.pkt.dport);
    back.pkt.tag = Some(Tag {
        flow: 2,
        request: false,
    });
    obs.sightings = vec![
        seen(&plan, 2, "lan", true, "192.168.157.3", 1),
        seen(&plan, 2, "wan1", true, "10.37.2.253", 2),
        back,
    ]
    .into();
    let mut v = timed(&plan);
    let judged = judge(&plan, &obs);
    v.flows[1].trace = judged.flows[1].trace.clone();
    let html = page_of(&plan, &v, &obs);
    let r = row_of(timeline_of(&html), 2);
    assert!(r.contains("<path class=\"tl-out\" d=\"M"), "{r}");
    assert!(
        attr(r, "class=\"tl-out\"", "stroke-width") > 0.0 && r.contains("class=\"tl-back\""),
        "{r}"
    );
}

#[test]
fn every_link_on_the_timeline_leads_to_its_flow_and_no_other_links() {
    // 50 flows, none failing, all on one path (none seen): the first 40 are listed in its
    // table, with an anchor each; the other 10 only counted.
    let plan = load("scenarios/ecmp/weighted.yaml");
    let mut v = timed(&plan);
    v.flows.truncate(50);
    v.results.clear();
    let html = page_of(&plan, &v, &Observations::default());
    let t = timeline_of(&html);
    let mut linked = Vec::new();
    for (i, _) in t.match_indices("<a href=\"#") {
        let target = &t[i + 10..];
        let target = &target[..target.find('"').unwrap()];
        assert!(
            html.contains(&format!("id=\"{target}\"")),
            "#{target} leads nowhere"
        );
        linked.push(target.to_string());
    }
    let anchored = super::timeline::anchors(&html, "s0-weighted");
    assert_eq!(anchored.len(), MAX_ROWS);
    assert_eq!(linked.len(), MAX_ROWS);
    for id in &anchored {
        assert!(linked.contains(&format!("s0-weighted-flow-{id}")));
    }
    for f in v.flows.iter().filter(|f| !anchored.contains(&f.id)) {
        assert!(
            row_of(t, f.id).contains("class=\"tl-l\""),
            "flow {} unlinked",
            f.id
        );
    }
}

#[test]
fn many_flows_are_gathered_by_group_uplink_and_fate() {
    let plan = load("scenarios/ecmp/weighted.yaml");
    let v = timed(&plan);
    let html = page_of(&plan, &v, &Observations::default());
    let t = timeline_of(&html);
    assert!(v.flows.len() > super::timeline::MAX_FLOW_ROWS);
    assert!(!t.contains("data-flow="), "no row per flow");
    let counts: Vec<usize> = t
        .match_indices("data-flows=\"")
        .map(|(i, _)| {
            let rest = &t[i + 12..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    let groups = t.matches("class=\"tl-group\"").count();
    // Two uplinks by parity, three fates by id mod 3: six kinds per group.
    assert_eq!(counts.len(), 6 * groups, "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), v.flows.len());
    assert!(t.contains(&format!(">{} via wan1</text>", counts[0])));
    // Each row spans its flows' times, first start to last end.
    let first = t.find("data-flows=").unwrap();
    let from = attr(&t[first..], "<rect class=\"tl-bar\"", "data-from");
    let to = attr(&t[first..], "<rect class=\"tl-bar\"", "data-to");
    assert!(
        from <= 300.0 && to >= 100.0 * (v.flows.len() as f64 - 5.0),
        "{from}..{to}"
    );
    assert!(t.len() < 40_000, "the timeline takes {} bytes", t.len());
    // 100 s of them: the axis is in seconds.
    assert!(t.contains(">t, s</text>") && t.contains(">100</text>"));
}

#[test]
fn nothing_on_the_timeline_is_unescaped() {
    let plan = load("scenarios/dual-isp.yaml");
    let mut v = timed(&plan);
    v.events[0].name = "<script>e</script>".into();
    v.events[0].link = "w&1".into();
    for f in &mut v.flows {
        f.group = "<b>g</b>".into();
    }
    let html = page_of(&plan, &v, &Observations::default());
    let t = timeline_of(&html);
    for raw in ["<script", "<b>g"] {
        assert!(!t.contains(raw), "`{raw}` unescaped in {t}");
    }
    assert!(t.contains(">&lt;script&gt;e&lt;/script&gt; (w&amp;1)</text>"));
    assert!(t.contains("data-group=\"&lt;b&gt;g&lt;/b&gt;\""));
    assert!(t.contains(">&lt;b&gt;g&lt;/b&gt; · 10 flows</text>"));
}

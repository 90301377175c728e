//! One self-contained HTML page for a set of runs: the topology drawn, each flow's path
//! coloured on it, failing flows first, each failing flow's packets hop by hop. Pure.
//!
//! Nothing is fetched and nothing needs JavaScript: inline CSS and inline SVG. The drawing is
//! laid out from the graph, so every topology gets one: the router in the middle, what is
//! behind its LAN ports to the left, what is behind its uplinks to the right, each node in the
//! column of its distance from the router. Flows that took the same path share one drawing;
//! flows judged together by statistics are counted, not drawn one by one.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::model::{FlowSpec, Plan, Topology};
use crate::observe::Observations;
use crate::verdict::{
    links_or_dash, split_counts, Dir, FlowPath, HopTrace, Outcome, PacketTrace, Verdict,
};
use smol_str::SmolStr;

/// What one judged scenario contributes to the page.
pub struct Scenario<'a> {
    pub plan: &'a Plan,
    pub verdict: &'a Verdict,
    pub obs: &'a Observations,
}

// The path colours are the drawings' own (and the legend's): text and borders use other
// shades, so that a screenshot shows by these colours whether the paths were drawn.

/// Packets going out, client → server.
pub const OUT: &str = "#2563eb";
/// Replies, server → client.
pub const BACK: &str = "#16a34a";
/// Where packets died: the link they were last seen on, and the node that dropped them.
pub const DIED: &str = "#dc2626";
/// The router's uplinks.
const UPLINK: &str = "#d97706";
/// Uplinks under a flow's path, lighter.
const UPLINK_LIGHT: &str = "#fcd9a4";
const LINK: &str = "#94a3b8";

/// Failing flows drawn and listed one by one; the others are only counted.
const MAX_DETAILED: usize = 25;
/// Packets listed per failing flow.
const MAX_PACKETS: usize = 120;
/// Rows of a table of flows that took one path.
const MAX_ROWS: usize = 40;
/// Flow ids named in a heading.
const MAX_IDS: usize = 40;

/// Text for HTML, in elements and in quoted attributes alike.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------
// Layout

/// Where each node sits: its column (0 leftmost) and its place within the column, centred
/// on 0 (three nodes: -1, 0, 1).
struct Grid {
    col: Vec<usize>,
    slot: Vec<f64>,
    cols: usize,
    /// The most nodes in one column.
    tallest: usize,
    /// Columns right of the router's (the uplinks' side), where same-column links bulge right.
    router_col: usize,
}

/// Columns by distance from the router: a node whose route goes via one of the router's
/// addresses is on its LAN, and so is everything reached with it without crossing the router;
/// those go left, the rest right. Within a column, nodes follow their neighbours nearer the
/// router (the uplinks' order first), so lines cross little.
fn grid(topo: &Topology) -> Grid {
    let n = topo.nodes.len();
    let idx: HashMap<&str, usize> = topo
        .nodes
        .iter()
        .enumerate()
        .map(|(i, nd)| (nd.name.as_str(), i))
        .collect();
    let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (li, l) in topo.links.iter().enumerate() {
        if let (Some(&a), Some(&b)) = (idx.get(l.a.node.as_str()), idx.get(l.b.node.as_str())) {
            if a != b {
                adj[a].push((b, li));
                adj[b].push((a, li));
            }
        }
    }
    let Some(&r) = idx.get(topo.router.node.as_str()) else {
        return Grid {
            col: (0..n).collect(),
            slot: vec![0.0; n],
            cols: n,
            tallest: 1,
            router_col: 0,
        };
    };
    let bfs = |start: usize, skip: Option<usize>, seen: &mut Vec<usize>, mark: usize| {
        let mut q = VecDeque::from([start]);
        seen[start] = mark;
        while let Some(u) = q.pop_front() {
            for &(w, _) in &adj[u] {
                if Some(w) != skip && seen[w] == usize::MAX {
                    seen[w] = if skip.is_some() { mark } else { seen[u] + 1 };
                    q.push_back(w);
                }
            }
        }
    };
    let mut dist = vec![usize::MAX; n];
    bfs(r, None, &mut dist, 0);
    // Parts of the lab the router joins: components once it is taken out.
    let mut part = vec![usize::MAX; n];
    part[r] = n;
    for s in 0..n {
        if part[s] == usize::MAX {
            bfs(s, Some(r), &mut part, s);
        }
    }
    let router_addrs: Vec<Ipv4Addr> = topo
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| e.node == topo.router.node)
        .flat_map(|e| e.addrs.iter().map(|a| a.addr()))
        .collect();
    let lan: BTreeSet<usize> = topo
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, nd)| {
            nd.routes
                .iter()
                .any(|rt| rt.via.is_some_and(|v| router_addrs.contains(&v)))
        })
        .map(|(i, _)| part[i])
        .collect();
    let signed: Vec<Option<i64>> = (0..n)
        .map(|i| {
            (dist[i] != usize::MAX).then(|| {
                let d = dist[i] as i64;
                if i != r && lan.contains(&part[i]) {
                    -d
                } else {
                    d
                }
            })
        })
        .collect();
    let lo = signed.iter().flatten().copied().min().unwrap_or(0);
    let hi = signed.iter().flatten().copied().max().unwrap_or(0);
    let mut col: Vec<usize> = signed
        .iter()
        .map(|c| c.map_or((hi - lo + 1) as usize, |c| (c - lo) as usize))
        .collect();
    let uplink_rank = |li: usize| {
        topo.router
            .uplinks
            .iter()
            .position(|u| *u == topo.links[li].name)
            .unwrap_or(usize::MAX)
    };
    // Columns from the router outwards; unreachable nodes last, by name.
    let mut slot = vec![0.0; n];
    let mut order: Vec<i64> = (lo..=hi).collect();
    order.sort_by_key(|c| (c.abs(), *c));
    let mut tallest = 1;
    for c in order.into_iter().map(Some).chain([None]) {
        let mut members: Vec<usize> = (0..n).filter(|&i| signed[i] == c).collect();
        if c.is_none() {
            members.sort_by(|&a, &b| topo.nodes[a].name.cmp(&topo.nodes[b].name));
        }
        let nearer = c.map(|c| c - c.signum());
        let key = |i: usize| {
            let near: Vec<(usize, usize)> = adj[i]
                .iter()
                .filter(|(w, _)| nearer.is_some() && signed[*w] == nearer && c != Some(0))
                .copied()
                .collect();
            let bary = if near.is_empty() {
                f64::MAX
            } else {
                near.iter().map(|(w, _)| slot[*w]).sum::<f64>() / near.len() as f64
            };
            let link = near
                .iter()
                .map(|(_, li)| (uplink_rank(*li), *li))
                .min()
                .unwrap_or((usize::MAX, usize::MAX));
            (bary, link)
        };
        if c.is_some() {
            let keys: HashMap<usize, (f64, (usize, usize))> =
                members.iter().map(|&i| (i, key(i))).collect();
            members.sort_by(|a, b| {
                let (ka, kb) = (keys[a], keys[b]);
                ka.0.total_cmp(&kb.0)
                    .then(ka.1.cmp(&kb.1))
                    .then(topo.nodes[*a].name.cmp(&topo.nodes[*b].name))
            });
        }
        let k = members.len();
        tallest = tallest.max(k);
        for (j, &i) in members.iter().enumerate() {
            slot[i] = j as f64 - (k as f64 - 1.0) / 2.0;
            if c.is_none() {
                col[i] = (hi - lo + 1) as usize;
            }
        }
    }
    let cols = col.iter().copied().max().map_or(0, |m| m + 1);
    Grid {
        col,
        slot,
        cols,
        tallest,
        router_col: (-lo) as usize,
    }
}

/// How big a drawing is: the topology on its own (nodes listing their interfaces), or small,
/// under one flow's path.
#[derive(Clone, Copy, PartialEq)]
enum Size {
    Topology,
    Flow,
}

type Pt = (f64, f64);

/// One link drawn: a quadratic curve from `a` through control `c` to `b` (straight when `c`
/// is the middle), visible between `t0` and `t1`, outside both nodes' boxes.
struct Edge {
    a: Pt,
    c: Pt,
    b: Pt,
    t0: f64,
    t1: f64,
}

impl Edge {
    fn at(&self, t: f64) -> Pt {
        let u = 1.0 - t;
        (
            u * u * self.a.0 + 2.0 * u * t * self.c.0 + t * t * self.b.0,
            u * u * self.a.1 + 2.0 * u * t * self.c.1 + t * t * self.b.1,
        )
    }
    fn tangent(&self, t: f64) -> Pt {
        let u = 1.0 - t;
        unit((
            2.0 * u * (self.c.0 - self.a.0) + 2.0 * t * (self.b.0 - self.c.0),
            2.0 * u * (self.c.1 - self.a.1) + 2.0 * t * (self.b.1 - self.c.1),
        ))
    }
    /// The chord's normal: which side `+` offsets go.
    fn normal(&self) -> Pt {
        let d = unit((self.b.0 - self.a.0, self.b.1 - self.a.1));
        (-d.1, d.0)
    }
    /// The curve as an SVG path, moved `off` along the normal.
    fn path(&self, off: f64) -> String {
        let n = self.normal();
        let m = |p: Pt| (p.0 + n.0 * off, p.1 + n.1 * off);
        let (a, c, b) = (m(self.a), m(self.c), m(self.b));
        format!(
            "M{:.1} {:.1} Q{:.1} {:.1} {:.1} {:.1}",
            a.0, a.1, c.0, c.1, b.0, b.1
        )
    }
}

fn unit(p: Pt) -> Pt {
    let l = (p.0 * p.0 + p.1 * p.1).sqrt();
    if l < 1e-9 {
        (1.0, 0.0)
    } else {
        (p.0 / l, p.1 / l)
    }
}

/// A topology placed on a canvas.
struct Drawing<'t> {
    topo: &'t Topology,
    size: Size,
    centre: Vec<Pt>,
    /// Each node's box, width and height.
    dims: Vec<Pt>,
    /// Lines of interface text per node (topology size only).
    lines: Vec<Vec<String>>,
    edges: Vec<Edge>,
    width: f64,
    height: f64,
    /// What each node is to the scenario, under its name (topology size only).
    roles: BTreeMap<String, String>,
}

/// `eth1 10.37.1.253/24`, one line per address, for the node's box.
fn iface_lines(topo: &Topology, node: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in topo
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| e.node == node)
    {
        if e.addrs.is_empty() {
            v.push(e.iface.clone());
        }
        for (k, a) in e.addrs.iter().enumerate() {
            let name = if k == 0 {
                e.iface.clone()
            } else {
                " ".repeat(e.iface.chars().count())
            };
            v.push(format!("{name} {a}"));
        }
    }
    v
}

impl<'t> Drawing<'t> {
    fn new(
        topo: &'t Topology,
        g: &Grid,
        size: Size,
        roles: BTreeMap<String, String>,
    ) -> Drawing<'t> {
        let n = topo.nodes.len();
        let lines: Vec<Vec<String>> = if size == Size::Topology {
            topo.nodes
                .iter()
                .map(|nd| iface_lines(topo, &nd.name))
                .collect()
        } else {
            vec![Vec::new(); n]
        };
        let (colw, node_w, margin) = match size {
            Size::Topology => {
                let longest = lines
                    .iter()
                    .flatten()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(0);
                let w = (longest as f64 * 6.7 + 20.0).max(120.0);
                (w + 78.0, w, 16.0)
            }
            Size::Flow => (160.0, 84.0, 12.0),
        };
        let dims: Vec<Pt> = lines
            .iter()
            .zip(&topo.nodes)
            .map(|(l, nd)| match size {
                Size::Topology => {
                    let role = if roles.contains_key(&nd.name) { 1 } else { 0 };
                    (node_w, 29.0 + 13.0 * (role + l.len()) as f64)
                }
                Size::Flow => (node_w, 26.0),
            })
            .collect();
        let tallest_box = dims.iter().map(|d| d.1).fold(26.0, f64::max);
        let rowh = tallest_box
            + match size {
                Size::Topology => 46.0,
                Size::Flow => 40.0,
            };
        let centre: Vec<Pt> = (0..n)
            .map(|i| {
                (
                    margin + node_w / 2.0 + g.col[i] as f64 * colw,
                    margin
                        + tallest_box / 2.0
                        + ((g.tallest as f64 - 1.0) / 2.0 + g.slot[i]) * rowh,
                )
            })
            .collect();
        let node: HashMap<&str, usize> = topo
            .nodes
            .iter()
            .enumerate()
            .map(|(i, nd)| (nd.name.as_str(), i))
            .collect();
        let inside = |p: Pt, i: usize| {
            (p.0 - centre[i].0).abs() <= dims[i].0 / 2.0 + 2.0
                && (p.1 - centre[i].1).abs() <= dims[i].1 / 2.0 + 2.0
        };
        let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
        let edges = topo
            .links
            .iter()
            .map(|l| {
                let (ia, ib) = (node[l.a.node.as_str()], node[l.b.node.as_str()]);
                let (a, b) = (centre[ia], centre[ib]);
                let k = pairs.entry((ia.min(ib), ia.max(ib))).or_insert(0);
                let nth = *k;
                *k += 1;
                let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
                let e0 = Edge {
                    a,
                    c: mid,
                    b,
                    t0: 0.0,
                    t1: 1.0,
                };
                let nrm = e0.normal();
                // Same column: bulge away from the router; another link between the same two
                // nodes: bend to alternate sides.
                let mut bend = if g.col[ia] == g.col[ib] {
                    let outward = if g.col[ia] >= g.router_col { 1.0 } else { -1.0 };
                    let side = if nrm.0 * outward >= 0.0 { 1.0 } else { -1.0 };
                    side * (colw * 0.4 + 18.0 * nth as f64)
                } else {
                    0.0
                };
                if bend == 0.0 && nth > 0 {
                    let step = nth.div_ceil(2) as f64 * 22.0;
                    bend = if nth % 2 == 1 { step } else { -step };
                }
                let mut e = Edge {
                    a,
                    c: (mid.0 + nrm.0 * bend, mid.1 + nrm.1 * bend),
                    b,
                    t0: 0.0,
                    t1: 1.0,
                };
                let ts: Vec<f64> = (0..=200).map(|s| f64::from(s) / 200.0).collect();
                let t0 = ts.iter().copied().find(|&t| !inside(e.at(t), ia));
                let t1 = ts.iter().rev().copied().find(|&t| !inside(e.at(t), ib));
                match (t0, t1) {
                    (Some(t0), Some(t1)) if t0 < t1 => (e.t0, e.t1) = (t0, t1),
                    _ => (e.t0, e.t1) = (0.4, 0.6),
                }
                e
            })
            .collect();
        let width = margin * 2.0 + (g.cols.max(1) as f64 - 1.0) * colw + node_w;
        let height = margin * 2.0 + (g.tallest as f64 - 1.0) * rowh + tallest_box;
        Drawing {
            topo,
            size,
            centre,
            dims,
            lines,
            edges,
            width,
            height,
            roles,
        }
    }
}

// ---------------------------------------------------------------------------------------
// What a flow's path colours

/// The links a set of packets crossed, which way, and where some died.
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Overlay {
    /// (link, sent by the link's `a` end, direction of the flow)
    crossed: BTreeSet<(usize, bool, Dir)>,
    /// (link it was last seen on, sent by its `a` end, direction, node that dropped it)
    died: BTreeSet<(usize, bool, Dir, String)>,
}

impl Overlay {
    fn of(topo: &Topology, packets: &[PacketTrace]) -> Overlay {
        let link: HashMap<&str, usize> = topo
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect();
        let mut o = Overlay::default();
        for p in packets {
            for h in &p.hops {
                if let Some(&li) = link.get(h.link.as_str()) {
                    o.crossed
                        .insert((li, topo.links[li].a.node == h.from, p.dir));
                }
            }
            if let Some((node, last)) = &p.died {
                if let Some(h) = p
                    .hops
                    .iter()
                    .rev()
                    .find(|h| h.link == *last && h.to == *node)
                {
                    if let Some(&li) = link.get(h.link.as_str()) {
                        o.died
                            .insert((li, topo.links[li].a.node == h.from, p.dir, node.clone()));
                    }
                }
            }
        }
        o
    }
}

/// Which of a drawing's nodes are the flow's client and server.
struct Ends<'a> {
    client: &'a str,
    server: &'a str,
}

fn arrow(s: &mut String, at: Pt, dir: Pt, colour: &str, scale: f64) {
    let n = (-dir.1, dir.0);
    let tip = (at.0 + dir.0 * 6.0 * scale, at.1 + dir.1 * 6.0 * scale);
    let l = (
        at.0 - dir.0 * 5.0 * scale + n.0 * 5.0 * scale,
        at.1 - dir.1 * 5.0 * scale + n.1 * 5.0 * scale,
    );
    let r = (
        at.0 - dir.0 * 5.0 * scale - n.0 * 5.0 * scale,
        at.1 - dir.1 * 5.0 * scale - n.1 * 5.0 * scale,
    );
    let _ = write!(
        s,
        "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"/>",
        tip.0, tip.1, l.0, l.1, r.0, r.1
    );
}

/// The drawing as inline SVG; with an overlay, the flow's path coloured on it.
fn svg(d: &Drawing, overlay: Option<&Overlay>, ends: Option<&Ends>, label: &str) -> String {
    let topo = d.topo;
    let big = d.size == Size::Topology;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {:.0} {:.0}\" width=\"{:.0}\" height=\"{:.0}\" role=\"img\" aria-label=\"{}\">",
        if big { "topo" } else { "path" },
        d.width,
        d.height,
        d.width,
        d.height,
        esc(label)
    );
    let _ = write!(s, "<title>{}</title>", esc(label));
    // The links, uplinks wide and amber.
    s.push_str("<g class=\"links\">");
    for (li, l) in topo.links.iter().enumerate() {
        let up = topo.router.uplinks.contains(&l.name);
        let (colour, w) = match (up, overlay.is_some()) {
            (true, false) => (UPLINK, 6.0),
            (true, true) => (UPLINK_LIGHT, 9.0),
            (false, _) => (LINK, 2.0),
        };
        let _ = write!(
            s,
            "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{w}\" data-link=\"{}\"/>",
            d.edges[li].path(0.0),
            esc(&l.name)
        );
    }
    s.push_str("</g>");
    if let Some(o) = overlay {
        s.push_str("<g class=\"overlay\">");
        for (li, a_sent, dir) in &o.crossed {
            let e = &d.edges[*li];
            let (colour, off) = match dir {
                Dir::Out => (OUT, 3.2),
                Dir::Back => (BACK, -3.2),
            };
            let _ = write!(
                s,
                "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"4\" data-link=\"{}\" data-dir=\"{}\"/>",
                e.path(off),
                esc(&topo.links[*li].name),
                if *dir == Dir::Out { "out" } else { "back" }
            );
            // An arrow near where the packets arrived.
            let t = if *a_sent {
                e.t0 + 0.8 * (e.t1 - e.t0)
            } else {
                e.t0 + 0.2 * (e.t1 - e.t0)
            };
            let p = e.at(t);
            let n = e.normal();
            let tan = e.tangent(t);
            let way = if *a_sent { tan } else { (-tan.0, -tan.1) };
            arrow(
                &mut s,
                (p.0 + n.0 * off * 1.6, p.1 + n.1 * off * 1.6),
                way,
                colour,
                0.9,
            );
        }
        for (li, _, dir, _) in &o.died {
            let e = &d.edges[*li];
            let off = if *dir == Dir::Out { 3.2 } else { -3.2 };
            let _ = write!(
                s,
                "<path d=\"{}\" fill=\"none\" stroke=\"{DIED}\" stroke-width=\"4.5\" stroke-dasharray=\"8 4\" data-link=\"{}\" data-dir=\"died\"/>",
                e.path(off),
                esc(&topo.links[*li].name)
            );
        }
        s.push_str("</g>");
    }
    // Link names over the middle of each visible line.
    s.push_str("<g class=\"link-names\">");
    for (li, l) in topo.links.iter().enumerate() {
        let e = &d.edges[li];
        let p = e.at((e.t0 + e.t1) / 2.0);
        let up = topo.router.uplinks.contains(&l.name);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"{}\">{}</text>",
            p.0,
            p.1 + 4.0,
            if up { "ln up" } else { "ln" },
            esc(&l.name)
        );
    }
    s.push_str("</g>");
    // The nodes.
    let died_at: BTreeSet<&str> = overlay
        .map(|o| o.died.iter().map(|d| d.3.as_str()).collect())
        .unwrap_or_default();
    s.push_str("<g class=\"nodes\">");
    for (i, nd) in topo.nodes.iter().enumerate() {
        let (c, dm) = (d.centre[i], d.dims[i]);
        let router = nd.name == topo.router.node;
        let end = ends.is_some_and(|e| e.client == nd.name || e.server == nd.name);
        let died = died_at.contains(nd.name.as_str());
        let class = [
            Some("node"),
            router.then_some("router"),
            end.then_some("end"),
            died.then_some("died"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let _ = write!(
            s,
            "<g class=\"{class}\" data-node=\"{}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\"/>",
            esc(&nd.name),
            c.0 - dm.0 / 2.0,
            c.1 - dm.1 / 2.0,
            dm.0,
            dm.1
        );
        let top = c.1 - dm.1 / 2.0;
        if big {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"nn\">{}</text>",
                c.0,
                top + 17.0,
                esc(&nd.name)
            );
            let mut y = top + 31.0;
            if let Some(role) = d.roles.get(&nd.name) {
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"role\">{}</text>",
                    c.0,
                    y - 1.0,
                    esc(role)
                );
                y += 13.0;
            }
            for line in &d.lines[i] {
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"if\" xml:space=\"preserve\">{}</text>",
                    c.0 - dm.0 / 2.0 + 8.0,
                    y,
                    esc(line)
                );
                y += 13.0;
            }
        } else {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"nn\">{}</text>",
                c.0,
                c.1 + 4.5,
                esc(&nd.name)
            );
        }
        if died {
            let (x, y) = (c.0 + dm.0 / 2.0 - 2.0, top + 2.0);
            let _ = write!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"8\" fill=\"{DIED}\"/><path d=\"M{:.1} {:.1} l7 7 m0 -7 l-7 7\" stroke=\"#fff\" stroke-width=\"2\"/>",
                x - 3.5,
                y - 3.5
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</g></svg>");
    s
}

/// `router under test`, `client`, `server`, for the topology's node boxes.
fn roles(plan: &Plan) -> BTreeMap<String, String> {
    let mut r: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    r.entry(plan.topology.router.node.clone())
        .or_default()
        .push("router under test");
    for f in &plan.flows {
        for (node, role) in [(&f.client_node, "client"), (&f.server_node, "server")] {
            let v = r.entry(node.clone()).or_default();
            if !v.contains(&role) {
                v.push(role);
            }
        }
    }
    r.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
}

// ---------------------------------------------------------------------------------------
// The page

const CSS: &str = r#"
:root { --out: #1e40af; --back: #15803d; --died: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 24px 60px; background: #f1f5f9; color: #0f172a;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
code, .mono, .if, td.addr { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 22px; margin: 0 0 6px; display: flex; align-items: center; gap: 12px; }
h3 { font-size: 16px; margin: 22px 0 8px; border-bottom: 1px solid #cbd5e1; padding-bottom: 3px; }
h4 { font-size: 15px; margin: 0 0 8px; display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 10px; }
h5 { font-size: 13px; margin: 10px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: #475569; }
a { color: #1d4ed8; }
.top { margin-bottom: 16px; }
.index { list-style: none; padding: 0; margin: 6px 0 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 4px; font-weight: 700; font-size: 13px;
  color: #fff; letter-spacing: .02em; white-space: nowrap; }
.badge.pass { background: #166534; } .badge.fail { background: #991b1b; } .badge.declared { background: #92400e; }
.scenario { background: #fff; border: 1px solid #cbd5e1; border-left: 8px solid #166534; border-radius: 6px;
  padding: 16px 20px; margin: 0 0 28px; }
.scenario.fail { border-left-color: #991b1b; } .scenario.declared { border-left-color: #92400e; }
.summary { font-weight: 600; margin: 0 0 4px; }
.meta, .muted { color: #475569; }
.meta { margin: 0 0 10px; font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; color: #334155; margin: 6px 0 0; }
.legend svg { display: inline-block; vertical-align: middle; margin-right: 4px; }
.drawing { overflow-x: auto; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
svg .ln { font-size: 12px; text-anchor: middle; fill: #334155; paint-order: stroke; stroke: #fff;
  stroke-width: 4px; stroke-linejoin: round; }
svg .ln.up { fill: #92400e; font-weight: 700; }
svg .node rect { fill: #fff; stroke: #64748b; stroke-width: 1.2; }
svg .node.end rect { stroke: #0f172a; stroke-width: 2.2; fill: #e0e7ff; }
svg .node.router rect { fill: #1e293b; stroke: #1e293b; }
svg .node.router text { fill: #fff; }
svg .node.died rect { stroke: #dc2626; stroke-width: 2.5; }
svg .nn { font-size: 13px; font-weight: 700; text-anchor: middle; fill: #0f172a; }
svg.topo .nn { font-size: 14px; }
svg .role { font-size: 10.5px; text-anchor: middle; fill: #64748b; font-style: italic; }
svg .if { font-size: 11px; fill: #334155; font-family: "DejaVu Sans Mono", ui-monospace, monospace; }
svg .node.router .if { fill: #e2e8f0; } svg .node.router .role { fill: #cbd5e1; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { color: #475569; font-weight: 600; border-bottom: 1px solid #cbd5e1; white-space: nowrap; }
tr + tr td { border-top: 1px solid #eef2f7; }
.held { color: #166534; font-weight: 600; } .broke { color: #b91c1c; font-weight: 700; }
.declared .broke { color: #9a3412; }
.flow { border: 1px solid #cbd5e1; border-radius: 6px; padding: 12px 14px; margin: 0 0 14px; background: #fff; }
.flow.bad { border-color: #fca5a5; border-left: 6px solid #b91c1c; background: #fffafa; }
.declared .flow.bad { border-color: #fcd34d; border-left-color: #b45309; background: #fffdf5; }
.flowbody { display: flex; flex-wrap: wrap; gap: 10px 24px; align-items: flex-start; }
.flowbody .drawing { flex: 0 0 auto; }
.facts { flex: 1 1 320px; min-width: 300px; overflow-x: auto; }
.group .facts { flex-basis: 560px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 0; }
dl.kv dt { color: #475569; } dl.kv dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
ul.failures, ul.story { margin: 0; padding-left: 18px; }
ul.failures li { color: #7f1d1d; margin-bottom: 3px; }
.declared ul.failures li { color: #7c2d12; }
ul.story li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
table.hops { width: 100%; margin-top: 4px; }
table.hops td { padding: 4px 8px 4px 0; }
table.hops td.n { color: #64748b; text-align: right; }
table.hops td.t { color: #64748b; white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
table.hops td.what { white-space: nowrap; }
.dir { font-weight: 800; font-size: 15px; }
.dir.out { color: var(--out); } .dir.back { color: var(--back); }
.chain { display: flex; flex-wrap: wrap; align-items: stretch; gap: 4px; }
.hop { border: 1px solid #cbd5e1; border-radius: 4px; padding: 1px 6px; background: #f8fafc; font-size: 12px; line-height: 1.35; }
.hop.out { border-left: 4px solid #93c5fd; } .hop.back { border-left: 4px solid #86efac; }
.hop.last-died { border-color: #f87171; border-left: 4px solid var(--died); background: #fef2f2; }
.hop .l { font-weight: 700; } .hop .l.up { color: #92400e; }
.hop code { font-size: 12px; }
.sep { align-self: center; color: #94a3b8; }
.end { align-self: center; font-weight: 700; font-size: 12.5px; white-space: nowrap; }
.end.ok { color: #166534; } .end.died { color: var(--died); }
mark.nat { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.note { color: #475569; font-style: italic; }
"#;

/// The outcome in words, and its class.
fn outcome_words(o: &Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Pass => ("pass", "pass"),
        Outcome::Fail => ("FAIL", "fail"),
        Outcome::BrokenAsDeclared => ("broken as declared", "declared"),
        Outcome::NotAsDeclared(_) => ("FAIL: not broken as declared", "fail"),
    }
}

/// An id for anchors: letters, digits and `-`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `1, 3, 5 … and 12 more`
fn some_ids(ids: &[u32]) -> String {
    if ids.len() <= MAX_IDS {
        super::ranges(ids)
    } else {
        format!(
            "{} … and {} more",
            super::ranges(&ids[..MAX_IDS]),
            ids.len() - MAX_IDS
        )
    }
}

fn swatch(colour: &str, dashed: bool) -> String {
    format!(
        "<svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"{colour}\" stroke-width=\"{}\"{}/></svg>",
        if colour == UPLINK { 6 } else { 3 },
        if dashed { " stroke-dasharray=\"5 3\"" } else { "" }
    )
}

fn legend() -> String {
    format!(
        "<div class=\"legend\"><span>{}packets out (client → server)</span><span>{}replies (server → client)</span><span>{}last link of packets that died; <b style=\"color:#b91c1c\">✕</b> the node that dropped them</span><span>{}the router's uplinks</span><span>arrows: the way packets went</span></div>",
        swatch(OUT, false),
        swatch(BACK, false),
        swatch(DIED, true),
        swatch(UPLINK, false)
    )
}

/// The whole page.
pub fn page(all: &[Scenario]) -> String {
    let mut order: Vec<(usize, &Scenario)> = all.iter().enumerate().collect();
    order.sort_by_key(|(_, sc)| sc.verdict.outcome.ok());
    let bad = all.iter().filter(|sc| !sc.verdict.outcome.ok()).count();
    let names: Vec<&str> = all.iter().map(|sc| sc.verdict.scenario.as_str()).collect();
    let verdict = if bad == 0 {
        "all as expected".to_string()
    } else {
        format!("{bad} FAILED")
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>harness: {} — {}</title>\n<style>{CSS}</style></head>\n<body>\n",
        esc(&names.join(", ")),
        esc(&verdict)
    );
    let _ = write!(
        s,
        "<header class=\"top\"><h1>harness: {} scenario{}, {}</h1><ul class=\"index\">",
        all.len(),
        if all.len() == 1 { "" } else { "s" },
        esc(&verdict)
    );
    for (i, sc) in &order {
        let (word, class) = outcome_words(&sc.verdict.outcome);
        let _ = write!(
            s,
            "<li><span class=\"badge {class}\">{}</span> <a href=\"#s{i}-{}\">{}</a></li>",
            esc(word),
            slug(&sc.verdict.scenario),
            esc(&sc.verdict.scenario)
        );
    }
    s.push_str("</ul></header>\n");
    for (i, sc) in &order {
        scenario(&mut s, *i, sc);
    }
    s.push_str("</body></html>\n");
    s
}

fn scenario(s: &mut String, i: usize, sc: &Scenario) {
    let (plan, v) = (sc.plan, sc.verdict);
    let topo = &plan.topology;
    let sid = format!("s{i}-{}", slug(&v.scenario));
    let (word, class) = outcome_words(&v.outcome);
    let _ = write!(
        s,
        "<section class=\"scenario {class}\" id=\"{sid}\">\n<h2><span class=\"badge {class}\">{}</span> {}</h2>\n<p class=\"summary\">{}</p>\n",
        esc(word),
        esc(&v.scenario),
        esc(&super::summary(v))
    );
    if let Some(d) = &plan.description {
        let _ = writeln!(s, "<p>{}</p>", esc(d));
    }
    if let Outcome::NotAsDeclared(problems) = &v.outcome {
        s.push_str("<ul class=\"failures\">");
        for p in problems {
            let _ = write!(s, "<li>{}</li>", esc(p));
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

    let traces = crate::verdict::traces(plan, sc.obs);
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
                traces.get(id).unwrap_or(&none),
                &small,
            );
        }
    }

    // The rest, one drawing per path.
    let together = v.statistical_flows();
    let mut groups: BTreeMap<Overlay, Vec<&FlowPath>> = BTreeMap::new();
    for f in v.flows.iter().filter(|f| !failing.contains(&f.id)) {
        groups
            .entry(Overlay::of(topo, traces.get(&f.id).unwrap_or(&none)))
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
    s.push_str("</section>\n");
}

fn expectations(s: &mut String, sid: &str, v: &Verdict) {
    s.push_str("<h3>Expectations</h3>\n<table class=\"exp\"><thead><tr><th>expectation</th><th>check</th><th>flows</th><th>result</th></tr></thead><tbody>\n");
    for r in &v.results {
        let result = if !r.broke() {
            match &r.observed {
                Some(o) => format!("<span class=\"held\">held</span>: {}", esc(o)),
                None => "<span class=\"held\">held</span>".to_string(),
            }
        } else if r.broke_overall {
            format!(
                "<span class=\"broke\">BROKE</span>: {}",
                esc(r.observed.as_deref().unwrap_or(""))
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
    links_or_dash(v, ", ")
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
    let verdict = super::flow_verdict(v, f);
    let badge = if verdict.starts_with("broken as declared") {
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
                esc(&x.msg)
            );
        }
    }
    s.push_str("</ul>");
    if !f.story.is_empty() {
        s.push_str("<h5>What its packets did</h5><ul class=\"story\">");
        for line in &f.story {
            let _ = write!(s, "<li>{}</li>", esc(line));
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
    if let Some(d) = f.drop_summary() {
        rows.push(("died", d));
    }
    s.push_str("<dl class=\"kv\">");
    for (k, val) in rows {
        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&val));
    }
    s.push_str("</dl>");
}

/// `10.37.2.253:40002`, with the parts that differ from the packet's first sighting marked.
fn endpoint(addr: Ipv4Addr, port: u16, first: (Ipv4Addr, u16), ports: bool) -> String {
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
            let up = topo.router.uplinks.contains(&h.link);
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
                esc(&super::flow_verdict(v, f))
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

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::model::{self, repo_path};
    use crate::observe::packet::{Packet, Tag, ACK};
    use crate::observe::{ClientOutcome, Sighting};
    use crate::verdict::judge;

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
        v.results[0].failures[0].msg = "<b>bold</b> & \"quoted\"".into();
        v.flows[1].story.push("<iframe src=x>".into());
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
        assert!(flow.contains(
            "<code><mark class=\"nat\">10.37.2.253</mark>:40002 → 172.16.1.100:80</code>"
        ));
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
}

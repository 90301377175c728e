//! The topology laid out around the router and drawn as inline SVG, with a flow's path
//! coloured on it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{Plan, Topology};
use crate::verdict::{Dir, PacketTrace};

use super::{esc, BACK, DIED, OUT};

/// The router's uplinks.
pub(super) const UPLINK: &str = "#d97706";
/// Uplinks under a flow's path, lighter.
const UPLINK_LIGHT: &str = "#fcd9a4";
const LINK: &str = "#94a3b8";

// ---------------------------------------------------------------------------------------
// Layout

/// Where each node sits: its column (0 leftmost) and its place within the column, centred
/// on 0 (three nodes: -1, 0, 1).
pub(super) struct Grid {
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
pub(super) fn grid(topo: &Topology) -> Grid {
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
    let router_addrs: Vec<IpAddr> = topo
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
pub(super) enum Size {
    Topology,
    Flow,
}

pub(super) type Pt = (f64, f64);

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
pub(super) struct Drawing<'t> {
    pub(super) topo: &'t Topology,
    size: Size,
    pub(super) centre: Vec<Pt>,
    /// Each node's box, width and height.
    pub(super) dims: Vec<Pt>,
    /// Lines of interface text per node (topology size only).
    lines: Vec<Vec<String>>,
    edges: Vec<Edge>,
    pub(super) width: f64,
    pub(super) height: f64,
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
    pub(super) fn new(
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
pub(super) struct Overlay {
    /// (link, sent by the link's `a` end, direction of the flow)
    pub(super) crossed: BTreeSet<(usize, bool, Dir)>,
    /// (link it was last seen on, sent by its `a` end, direction, node that dropped it)
    pub(super) died: BTreeSet<(usize, bool, Dir, String)>,
}

impl Overlay {
    pub(super) fn of(topo: &Topology, packets: &[PacketTrace]) -> Overlay {
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
                        o.died.insert((
                            li,
                            topo.links[li].a.node == h.from,
                            p.dir,
                            node.to_string(),
                        ));
                    }
                }
            }
        }
        o
    }
}

/// Which of a drawing's nodes are the flow's client and server.
pub(super) struct Ends<'a> {
    pub(super) client: &'a str,
    pub(super) server: &'a str,
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
pub(super) fn svg(
    d: &Drawing,
    overlay: Option<&Overlay>,
    ends: Option<&Ends>,
    label: &str,
) -> String {
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
pub(super) fn roles(plan: &Plan) -> BTreeMap<String, String> {
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

fn swatch(colour: &str, dashed: bool) -> String {
    format!(
        "<svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"{colour}\" stroke-width=\"{}\"{}/></svg>",
        if colour == UPLINK { 6 } else { 3 },
        if dashed { " stroke-dasharray=\"5 3\"" } else { "" }
    )
}

pub(super) fn legend() -> String {
    format!(
        "<div class=\"legend\"><span>{}packets out (client → server)</span><span>{}replies (server → client)</span><span>{}last link of packets that died; <b style=\"color:#b91c1c\">✕</b> the node that dropped them</span><span>{}the router's uplinks</span><span>arrows: the way packets went</span></div>",
        swatch(OUT, false),
        swatch(BACK, false),
        swatch(DIED, true),
        swatch(UPLINK, false)
    )
}

//! YAML → validated [`Plan`]. Pure: reads files, touches nothing else. Every input error is
//! found here, before anything is built, with `file:line:col`.

pub mod bundle;
mod error;
mod facts;
pub mod generate;
pub mod hostsafe;
pub mod limits;
pub mod locate;
pub mod plan;
mod raw;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;

pub use error::SpecError;
pub use facts::facts;
use locate::YamlIndex;
pub use plan::*;

/// The largest routing table id a scenario may name.
pub const MAX_TABLE: u32 = i32::MAX as u32;
/// The most round trips one flow may make (the catalog's longest flows make 50).
pub const MAX_ROUND_TRIPS: u32 = 10_000;
/// The most flows a scenario may have, traffic and crafted packets together.
pub const MAX_FLOWS: u32 = 25_000;
/// The most expectations a scenario may state (each holds the ids of the flows it selects).
pub const MAX_EXPECTATIONS: usize = 1_000;

/// The most flow ids all expectations together may select (4 MB of ids; 25000 flows under
/// 40 expectations that each select all).
pub const MAX_SELECTED: usize = 1_000_000;

/// The default time a flow has to finish all its round trips.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// One YAML file being validated: reports errors at the position of a path.
struct Doc<'a> {
    file: &'a Path,
    index: YamlIndex,
}

impl Doc<'_> {
    fn err(&self, path: &str, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.file, self.index.find(path), msg)
    }

    /// An error about the key at `path` (a name being declared), not its value.
    fn err_key(&self, path: &str, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.file, self.index.find_key(path), msg)
    }
}

/// `unknown node `satrun`; did you mean `saturn`? (the topology has …)`
fn unknown_name(what: &str, name: &str, known: &[&str], listed_as: &str) -> String {
    let hint = match error::closest(name, known) {
        Some(m) => format!("; did you mean `{m}`?"),
        None => String::new(),
    };
    format!(
        "unknown {what} `{name}`{hint} ({listed_as} {})",
        known.join(", ")
    )
}

fn read(file: &Path, named_at: Option<(&Doc, &str)>) -> Result<String, SpecError> {
    limits::read_regular(file, limits::MAX_YAML_BYTES).map_err(|e| {
        let msg = e.describe(file);
        let todo = match (&e, named_at.is_some()) {
            (limits::ReadError::TooBig { .. }, _) => {
                "the most a scenario or topology may hold: is it the right file?"
            }
            (limits::ReadError::Io(_), true) => "paths are relative to the file that names them",
            (limits::ReadError::Io(_), false) => "check the path",
            (_, true) => "name a topology file (YAML), relative to this file",
            (_, false) => "name a scenario file (YAML)",
        };
        match named_at {
            Some((doc, path)) => doc.err(path, format!("{msg}; {todo}")),
            None => SpecError::new(file, None, format!("{msg}; {todo}")),
        }
    })
}

fn parse<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, SpecError> {
    limits::check_shape(text).map_err(|e| SpecError::new(file, Some(e.pos), e.msg))?;
    serde_yaml_ng::from_str(text).map_err(|e| SpecError::from_yaml(file, &e))
}

/// Reads and validates a scenario and the topology it names.
pub fn load(scenario: &Path) -> Result<Plan, SpecError> {
    let text = read(scenario, None)?;
    load_text(scenario, &text)
}

/// Validates a scenario given as text; `scenario` names it in messages, and relative paths
/// in it are taken from its folder.
pub fn load_text(scenario: &Path, text: &str) -> Result<Plan, SpecError> {
    let raw: raw::Scenario = parse(scenario, text)?;
    let doc = Doc {
        file: scenario,
        index: YamlIndex::new(text),
    };
    // `x.yaml`'s folder is `` (files named in it are shown as written); generators run in
    // `.` then (see `node_rules`).
    let dir = scenario.parent().unwrap_or(Path::new(""));

    let topology = match &raw.topology {
        raw::TopologyDef::File(f) => {
            let topo_file = dir.join(f);
            let topo_text = read(&topo_file, Some((&doc, "topology")))?;
            let t = topology(&topo_file, &topo_text)?;
            let topo_doc = Doc {
                file: &topo_file,
                index: YamlIndex::new(&topo_text),
            };
            crossing_uplinks(&doc, &topo_doc, &t, &raw.traffic)?;
            t
        }
        raw::TopologyDef::Generated(g) => {
            let n = u32::try_from(g.uplinks).unwrap_or(0);
            if !(1..=generate::MAX_UPLINKS).contains(&n) {
                return Err(doc.err(
                    "topology.uplinks",
                    format!(
                        "`uplinks: {}`: a generated lab has 1 to {} uplinks",
                        g.uplinks,
                        generate::MAX_UPLINKS
                    ),
                ));
            }
            // Errors in the generated text (there should be none) name the scenario.
            topology(scenario, &generate::multi_wan(n))?
        }
    };

    let rules = node_rules(&doc, dir, &topology, raw.rules)?;
    let mut flows = flows(&doc, &topology, &raw.traffic)?;
    crafted(&doc, &topology, &raw.craft, &mut flows)?;
    if flows.is_empty() {
        return Err(doc.err(
            "traffic",
            "no traffic: add at least one entry under `traffic:` (or `craft:`)",
        ));
    }
    let expectations = expectations(&doc, &topology, &flows, raw.expect)?;
    let expected_failure = match raw.expect_failure {
        None => None,
        Some(ef) => Some(expected_failure(&doc, &flows, &expectations, ef)?),
    };
    let events = events(&doc, &topology, &flows, &raw.events)?;
    let plan = Plan {
        events,
        name: stem(scenario),
        file: scenario.to_path_buf(),
        description: raw.description,
        topology,
        rules,
        flows,
        expectations,
        expected_failure,
    };
    hostsafe::check_plan(&plan)?;
    Ok(plan)
}

/// A traffic entry that starts behind one of the router's uplinks and ends behind another:
/// its flows would cross two uplinks, and every `via` or `one_uplink` would fail for a
/// mistake in the topology (typically the LAN link listed in `router.uplinks`). "Behind a
/// link": reachable from its far end without passing through the router.
fn crossing_uplinks(
    doc: &Doc,
    topo_doc: &Doc,
    topo: &Topology,
    traffic: &[raw::TrafficDef],
) -> Result<(), SpecError> {
    let router = topo.router.node.as_str();
    // Union-find over nodes, the router left out.
    let names: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
    let idx = |n: &str| names.iter().position(|m| *m == n);
    let mut parent: Vec<usize> = (0..names.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for l in &topo.links {
        if l.a.node == router || l.b.node == router {
            continue;
        }
        if let (Some(a), Some(b)) = (idx(&l.a.node), idx(&l.b.node)) {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
    }
    // The uplinks behind which each node sits.
    let mut behind = |node: &str| -> Vec<&str> {
        let Some(n) = idx(node) else {
            return Vec::new();
        };
        let rn = root(&mut parent, n);
        topo.router
            .uplinks
            .iter()
            .filter(|u| {
                topo.link(u).is_some_and(|l| {
                    let far = if l.a.node == router { &l.b } else { &l.a };
                    idx(&far.node).is_some_and(|f| root(&mut parent, f) == rn)
                })
            })
            .map(String::as_str)
            .collect()
    };
    for (i, t) in traffic.iter().enumerate() {
        if t.from == router || t.to == router {
            continue;
        }
        let (from, to) = (behind(&t.from), behind(&t.to));
        if from.is_empty() || to.is_empty() || from.iter().any(|u| to.contains(u)) {
            continue;
        }
        let k = topo
            .router
            .uplinks
            .iter()
            .position(|u| u == from[0])
            .expect("an uplink");
        let (line, col) = doc
            .index
            .find(&format!("traffic[{i}].from"))
            .unwrap_or((0, 0));
        let name = t
            .name
            .clone()
            .unwrap_or_else(|| format!("traffic{}", i + 1));
        return Err(topo_doc.err(
            &format!("router.uplinks[{k}]"),
            format!(
                "`{}` is listed as an uplink, yet traffic `{name}` ({}:{line}:{col}) starts behind it, at `{}`, and goes to `{}`, behind {}: its flows would cross two uplinks. An uplink is one of the router's ways out; remove the link the flows come in by (the LAN) from `router.uplinks`",
                from[0],
                doc.file.display(),
                t.from,
                t.to,
                to.join(", ")
            ),
        ));
    }
    Ok(())
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Node, link and table names: letters, digits, `-` and `_`, starting with a letter.
fn valid_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.len() <= 32
}

/// Why the kernel (or the lab) would refuse an interface name, if it would: the kernel takes
/// 1 to 15 bytes without `/`, `:` or blanks, not `.` or `..`; `all` and `default` name the
/// `conf/` sysctl folders (EINVAL); every namespace already has `lo`.
fn iface_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 15 {
        Some("1 to 15 characters")
    } else if s == "." || s == ".." {
        Some("`.` and `..` are not interface names")
    } else if s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("no `/`, `:` or blanks")
    } else if s == "lo" {
        Some("every node already has the loopback `lo`; pick another name")
    } else if s == "all" || s == "default" {
        Some("the kernel keeps `all` and `default` for its sysctl folders; pick another name")
    } else {
        None
    }
}

/// What a destination address is when no flow can reach a server at it: loopback (the
/// client's own), multicast, unspecified or the limited broadcast.
fn not_unicast(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_loopback() {
        Some("a loopback address (the client's own `lo`)")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.octets()[0] == 0 {
        Some("in 0.0.0.0/8")
    } else if a == Ipv4Addr::BROADCAST {
        Some("the limited broadcast address")
    } else {
        None
    }
}

/// Why an address cannot be given to a veth end, if it cannot: loopback, multicast, `0/8`,
/// the limited broadcast and a `/0` prefix are refused or unusable on a link.
fn addr_problem(net: &Ipv4Net) -> Option<String> {
    let a = net.addr();
    let what = if a.is_loopback() {
        "a loopback address (127.0.0.0/8): the kernel keeps it for `lo`"
    } else if a.is_multicast() {
        "a multicast address (224.0.0.0/4): a host address cannot be one"
    } else if a == Ipv4Addr::BROADCAST {
        "the limited broadcast address"
    } else if a.octets()[0] == 0 {
        "in 0.0.0.0/8 (\"this network\"): not an address a host can have"
    } else if net.prefix_len() == 0 {
        return Some(format!(
            "`{net}`: a /0 prefix makes every address a neighbour on this link; give the subnet's length, e.g. `{a}/24`"
        ));
    } else {
        return None;
    };
    Some(format!(
        "`{net}` is {what}; use a unicast address such as 10.0.0.1/24"
    ))
}

pub fn topology(file: &Path, text: &str) -> Result<Topology, SpecError> {
    let raw: raw::Topology = parse(file, text)?;
    let doc = Doc {
        file,
        index: YamlIndex::new(text),
    };

    for (name, _) in &raw.nodes.0 {
        if !valid_name(name) {
            return Err(doc.err_key(
                &format!("nodes.{name}"),
                format!("node name `{name}`: use letters, digits, `-` and `_`, starting with a letter (at most 32)"),
            ));
        }
    }
    let node_names: Vec<&str> = raw.nodes.0.iter().map(|(n, _)| n.as_str()).collect();

    let mut links = Vec::new();
    let mut seen_ifaces: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen_addrs: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for (i, (name, def)) in raw.links.0.iter().enumerate() {
        if !valid_name(name) {
            return Err(doc.err_key(
                &format!("links.{name}"),
                format!(
                    "link name `{name}`: use letters, digits, `-` and `_`, starting with a letter"
                ),
            ));
        }
        let mut ends = Vec::new();
        for (side, text) in [("a", &def.a), ("b", &def.b)] {
            let path = format!("links.{name}.{side}");
            let end = parse_end(text)
                .map_err(|m| doc.err(&path, format!("link `{name}` end {side}: {m}")))?;
            if !node_names.contains(&end.node.as_str()) {
                return Err(doc.err(
                    &path,
                    format!(
                        "link `{name}`: {}; declare it under `nodes:`",
                        unknown_name("node", &end.node, &node_names, "known:")
                    ),
                ));
            }
            if !seen_ifaces.insert((end.node.clone(), end.iface.clone())) {
                return Err(doc.err(
                    &path,
                    format!("link `{name}`: node `{}` already has an interface `{}`; give each end its own name", end.node, end.iface),
                ));
            }
            for a in &end.addrs {
                if let Some(other) = seen_addrs.insert(a.addr(), name.clone()) {
                    return Err(doc.err(
                        &path,
                        format!("address {} is already used on link `{other}`", a.addr()),
                    ));
                }
            }
            let n = i as u16 + 1;
            let mac = [
                0x02,
                0x48,
                (n >> 8) as u8,
                n as u8,
                0,
                if side == "a" { 0xa } else { 0xb },
            ];
            ends.push(End { mac, ..end });
        }
        let b = ends.pop().expect("two ends");
        let a = ends.pop().expect("two ends");
        if a.node == b.node {
            return Err(doc.err_key(
                &format!("links.{name}"),
                format!("link `{name}` joins node `{}` to itself", a.node),
            ));
        }
        links.push(Link {
            name: name.clone(),
            a,
            b,
        });
    }

    let mut nodes = Vec::new();
    for (name, def) in &raw.nodes.0 {
        let ifaces: Vec<&End> = links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(|e| e.node == *name)
            .collect();
        if ifaces.is_empty() {
            return Err(doc.err_key(
                &format!("nodes.{name}"),
                format!("node `{name}` is on no link; add a link under `links:` or remove it"),
            ));
        }
        let mut sysctls = Vec::new();
        for (key, value) in &def.sysctls.0 {
            let path = format!("nodes.{name}.sysctls.{key}");
            check_sysctl(key, &ifaces)
                .map_err(|m| doc.err(&path, format!("node `{name}`: sysctl `{key}`: {m}")))?;
            sysctls.push((key.clone(), value.to_string()));
        }
        let mut routes = Vec::new();
        for (i, text) in def.routes.iter().enumerate() {
            let path = format!("nodes.{name}.routes[{i}]");
            let r = parse_route(text)
                .map_err(|m| doc.err(&path, format!("node `{name}`: route `{text}`: {m}")))?;
            if let Some(dev) = &r.dev {
                if !ifaces.iter().any(|e| e.iface == *dev) {
                    let have: Vec<&str> = ifaces.iter().map(|e| e.iface.as_str()).collect();
                    return Err(doc.err(&path, format!("node `{name}`: route `{text}`: no interface `{dev}` on this node (it has {})", have.join(", "))));
                }
            }
            if let Some(gw) = r.via {
                let subnets: Vec<Ipv4Net> = ifaces.iter().flat_map(|e| &e.addrs).copied().collect();
                if !subnets.iter().any(|a| a.contains(&gw)) {
                    let list: Vec<String> = subnets
                        .iter()
                        .map(|a| {
                            format!(
                                "{} on {}",
                                a.trunc(),
                                ifaces
                                    .iter()
                                    .find(|e| e.addrs.contains(a))
                                    .map_or("?", |e| e.iface.as_str())
                            )
                        })
                        .collect();
                    return Err(doc.err(&path, format!("node `{name}`: route `{text}`: gateway {gw} is in none of this node's subnets ({}); a gateway must be a neighbour on one of its links", list.join(", "))));
                }
            }
            routes.push(r);
        }
        let mut rules = Vec::new();
        for (i, text) in def.rules.iter().enumerate() {
            let path = format!("nodes.{name}.rules[{i}]");
            let r = parse_rule(text)
                .map_err(|m| doc.err(&path, format!("node `{name}`: rule `{text}`: {m}")))?;
            for dev in [&r.iif, &r.oif].into_iter().flatten() {
                if !ifaces.iter().any(|e| e.iface == *dev) {
                    return Err(doc.err(
                        &path,
                        format!("node `{name}`: rule `{text}`: no interface `{dev}` on this node"),
                    ));
                }
            }
            rules.push(r);
        }
        nodes.push(Node {
            name: name.clone(),
            sysctls,
            routes,
            rules,
        });
    }

    let r = &raw.router;
    if !node_names.contains(&r.node.as_str()) {
        return Err(doc.err(
            "router.node",
            format!(
                "{}; declare it under `nodes:`",
                unknown_name("node", &r.node, &node_names, "known:")
            ),
        ));
    }
    if r.uplinks.is_empty() {
        return Err(doc.err(
            "router.uplinks",
            "list the router's uplinks (the links its balancing chooses between)",
        ));
    }
    for (i, up) in r.uplinks.iter().enumerate() {
        let path = format!("router.uplinks[{i}]");
        match links.iter().find(|l| l.name == *up) {
            None => {
                let have: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
                return Err(doc.err(
                    &path,
                    format!(
                        "{}; an uplink is a link declared under `links:`",
                        unknown_name("link", up, &have, "links:")
                    ),
                ));
            }
            Some(_) if r.uplinks[..i].contains(up) => {
                return Err(doc.err(&path, format!("uplink `{up}` is listed twice")));
            }
            Some(l) if l.a.node != r.node && l.b.node != r.node => {
                return Err(doc.err(
                    &path,
                    format!("link `{up}` does not touch the router `{}`", r.node),
                ));
            }
            _ => {}
        }
    }
    for (l, _) in &r.weights.0 {
        if !r.uplinks.contains(l) {
            return Err(doc.err_key(
                &format!("router.weights.{l}"),
                format!(
                    "`{l}` is not one of the router's uplinks ({})",
                    r.uplinks.join(", ")
                ),
            ));
        }
    }
    Ok(Topology {
        name: raw.name.unwrap_or_else(|| stem(file)),
        file: file.to_path_buf(),
        nodes,
        links,
        router: Router {
            node: r.node.clone(),
            uplinks: r.uplinks.clone(),
            weights: r.weights.0.clone(),
        },
    })
}

/// `jupiter:eth1 10.37.1.253/24 [more addresses]`
fn parse_end(text: &str) -> Result<End, String> {
    let mut words = text.split_whitespace();
    let head = words
        .next()
        .ok_or("write `NODE:IFACE ADDRESS/LEN`, e.g. `jupiter:eth1 10.37.1.253/24`")?;
    let (node, iface) = head
        .split_once(':')
        .ok_or_else(|| format!("`{head}`: write `NODE:IFACE`, e.g. `jupiter:eth1`"))?;
    if let Some(why) = iface_problem(iface) {
        return Err(format!("interface name `{iface}`: {why}"));
    }
    let mut addrs = Vec::new();
    for w in words {
        let net: Ipv4Net = w.parse().map_err(|_| match w.parse::<Ipv4Addr>() {
            Ok(_) => format!("`{w}` has no prefix length; write it as `{w}/LEN`, e.g. `{w}/24`"),
            Err(_) => {
                format!("`{w}` is not an IPv4 address with a prefix length (e.g. 10.37.1.253/24)")
            }
        })?;
        if let Some(why) = addr_problem(&net) {
            return Err(why);
        }
        if net.prefix_len() < 31 && (net.addr() == net.network() || net.addr() == net.broadcast()) {
            return Err(format!(
                "`{w}` is the network or broadcast address of its subnet"
            ));
        }
        addrs.push(net);
    }
    Ok(End {
        node: node.to_string(),
        iface: iface.to_string(),
        addrs,
        mac: [0; 6],
    })
}

fn check_sysctl(key: &str, ifaces: &[&End]) -> Result<(), String> {
    if !key.starts_with("net.")
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err("only `net.…` sysctls belong to a network namespace".into());
    }
    hostsafe::sysctl_key(key).map_err(|m| format!("it is {m}"))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() >= 5 && (parts[1] == "ipv4" || parts[1] == "ipv6") && parts[2] == "conf" {
        let dev = parts[3];
        if !["all", "default", "lo"].contains(&dev) && !ifaces.iter().any(|e| e.iface == dev) {
            let have: Vec<&str> = ifaces.iter().map(|e| e.iface.as_str()).collect();
            return Err(format!(
                "no interface `{dev}` on this node (it has {})",
                have.join(", ")
            ));
        }
    }
    Ok(())
}

/// `DST [via GW] [dev IF] [table N] [metric N]`, as `ip route add` takes it.
pub fn parse_route(text: &str) -> Result<Route, String> {
    let mut w = text.split_whitespace();
    let dst = match w.next() {
        None => return Err("empty route".into()),
        Some("default") => Ipv4Net::default(),
        Some(d) => match d.parse::<Ipv4Net>() {
            Ok(n) => n.trunc(),
            Err(_) => d
                .parse::<Ipv4Addr>()
                .map(|a| Ipv4Net::new(a, 32).expect("/32"))
                .map_err(|_| format!("`{d}` is not `default` or an IPv4 prefix"))?,
        },
    };
    let mut r = Route {
        dst,
        via: None,
        dev: None,
        table: None,
        metric: None,
        text: text.to_string(),
    };
    while let Some(word) = w.next() {
        let arg = w.next().ok_or_else(|| format!("`{word}` needs a value"))?;
        match word {
            "via" => {
                r.via = Some(
                    arg.parse()
                        .map_err(|_| format!("gateway `{arg}` is not an IPv4 address"))?,
                )
            }
            "dev" => r.dev = Some(arg.to_string()),
            "table" => {
                r.table = Some(
                    arg.parse()
                        .map_err(|_| format!("table `{arg}`: use a number here"))?,
                )
            }
            "metric" | "preference" | "priority" => {
                r.metric = Some(
                    arg.parse()
                        .map_err(|_| format!("metric `{arg}` is not a number"))?,
                )
            }
            _ => {
                return Err(format!(
                "unknown word `{word}`: a route is `DST [via GW] [dev IF] [table N] [metric N]`"
            ))
            }
        }
    }
    if r.via.is_none() && r.dev.is_none() {
        return Err("give a gateway (`via GW`) or an interface (`dev IF`)".into());
    }
    Ok(r)
}

/// `[pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] ACTION`, as `ip rule add`
/// takes it; ACTION is `lookup N|main|local|default` (or `table …`), `blackhole`, `prohibit`
/// or `unreachable`. As in `ip rule`, `not` inverts the whole selector, not just `from`.
pub fn parse_rule(text: &str) -> Result<PolicyRule, String> {
    let num = |s: &str| -> Result<u32, String> {
        match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16),
            None => s.parse(),
        }
        .map_err(|_| format!("`{s}` is not a number"))
    };
    let prefix = |s: &str| -> Result<Ipv4Net, String> {
        if s == "all" {
            return Ok(Ipv4Net::default());
        }
        s.parse::<Ipv4Net>()
            .map(|n| n.trunc())
            .or_else(|_| {
                s.parse::<Ipv4Addr>()
                    .map(|a| Ipv4Net::new(a, 32).expect("/32"))
            })
            .map_err(|_| format!("`{s}` is not an IPv4 prefix"))
    };
    let mut r = PolicyRule {
        pref: None,
        not: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        action: RuleAction::Unreachable,
        text: text.to_string(),
    };
    let mut action = None;
    let mut w = text.split_whitespace();
    while let Some(word) = w.next() {
        match word {
            "not" => r.not = true,
            "blackhole" => action = Some(RuleAction::Blackhole),
            "prohibit" => action = Some(RuleAction::Prohibit),
            "unreachable" => action = Some(RuleAction::Unreachable),
            _ => {
                let arg = w.next().ok_or_else(|| format!("`{word}` needs a value"))?;
                match word {
                    "pref" | "priority" | "preference" => r.pref = Some(num(arg)?),
                    "from" => r.from = Some(prefix(arg)?),
                    "to" => r.to = Some(prefix(arg)?),
                    "iif" => r.iif = Some(arg.to_string()),
                    "oif" => r.oif = Some(arg.to_string()),
                    "fwmark" => {
                        r.fwmark = Some(match arg.split_once('/') {
                            Some((m, k)) => (num(m)?, Some(num(k)?)),
                            None => (num(arg)?, None),
                        })
                    }
                    "lookup" | "table" => {
                        let id = match arg {
                            "main" => 254,
                            "local" => 255,
                            "default" => 253,
                            n => num(n)?,
                        };
                        action = Some(RuleAction::Table(id))
                    }
                    _ => return Err(format!("unknown word `{word}`: a rule is `[pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] (lookup N | blackhole | prohibit | unreachable)`")),
                }
            }
        }
    }
    r.action = action
        .ok_or("say what the rule does: `lookup N`, `blackhole`, `prohibit` or `unreachable`")?;
    Ok(r)
}

/// `1s`, `500ms`, `2.5s`
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0 && v < 3600.0).then(|| Duration::from_secs_f64(v * scale))
}

fn node_rules(
    doc: &Doc,
    dir: &Path,
    topo: &Topology,
    raw: raw::Ordered<raw::NodeRulesDef>,
) -> Result<Vec<NodeRules>, SpecError> {
    let mut out = Vec::new();
    for (node, def) in raw.0 {
        let path = format!("rules.{node}");
        if topo.node(&node).is_none() {
            let have: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(doc.err_key(
                &path,
                unknown_name("node", &node, &have, "the topology has"),
            ));
        }
        let mut tables = Vec::new();
        for (name, id) in def.tables.0 {
            let tpath = format!("{path}.tables.{name}");
            if !valid_name(&name) || ["local", "main", "default", "unspec"].contains(&name.as_str())
            {
                return Err(doc.err_key(&tpath, format!("table name `{name}`: use letters, digits, `-`, `_`; `local`, `main`, `default` are taken")));
            }
            if id == 0 || (253..=255).contains(&id) {
                return Err(doc.err(&tpath, format!("table `{name}` = {id}: 0 and 253 to 255 are the kernel's own tables; pick 1 to 252 or 256 to {MAX_TABLE}")));
            }
            if id > MAX_TABLE {
                return Err(doc.err(&tpath, format!("table `{name}` = {id}: tools do not all read ids above {MAX_TABLE} alike (`ip route show table 4294967295` lists nothing); pick 1 to 252 or 256 to {MAX_TABLE}")));
            }
            if let Some((other, _)) = tables.iter().find(|(_, i)| *i == id) {
                return Err(doc.err(&tpath, format!("table `{name}` = {id}: `{other}` is table {id} already; give each name its own number")));
            }
            tables.push((name, id));
        }
        let mut files = Vec::new();
        for (i, f) in def.files.into_iter().enumerate() {
            let fpath = format!("{path}.files[{i}]");
            if let Some(line) = f.generate {
                let kind = match f.as_kind.as_deref() {
                    None => None,
                    Some(k) => Some(RuleKind::from_name(k).ok_or_else(|| {
                        doc.err(
                            &format!("{fpath}.as"),
                            format!("`as: {k}`: one of iptables, nft, ip, ipset, sysctl"),
                        )
                    })?),
                };
                if f.iptables.is_some()
                    || f.nft.is_some()
                    || f.ip.is_some()
                    || f.ipset.is_some()
                    || f.sysctl.is_some()
                {
                    return Err(doc.err(&fpath, "an entry is either a file or `generate: COMMAND`"));
                }
                // `harness run x.yaml`: the folder is ``, where no command can start.
                let cwd = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                files.push(RuleSource::Command {
                    line,
                    cwd: cwd.to_path_buf(),
                    kind,
                });
                continue;
            }
            if f.as_kind.is_some() {
                return Err(doc.err(&format!("{fpath}.as"), "`as:` goes with `generate:`"));
            }
            let mut given: Vec<(RuleKind, String)> = [
                (RuleKind::Iptables, f.iptables),
                (RuleKind::Nft, f.nft),
                (RuleKind::Ip, f.ip),
                (RuleKind::Ipset, f.ipset),
                (RuleKind::Sysctl, f.sysctl),
            ]
            .into_iter()
            .filter_map(|(k, p)| p.map(|p| (k, p)))
            .collect();
            if given.len() != 1 {
                return Err(doc.err(&fpath, "each entry names one file: `- iptables: FILE` (iptables-restore), `- nft: FILE` (nft -f), `- ip: FILE` (ip -batch) or `- ipset: FILE` (ipset restore) or `- sysctl: FILE` (sysctl -p)"));
            }
            let (kind, rel) = given.pop().expect("one");
            let full = dir.join(&rel);
            match std::fs::metadata(&full) {
                Err(_) => {
                    return Err(doc.err(
                        &fpath,
                        format!(
                        "rule file `{}` does not exist; paths are relative to the scenario file",
                        full.display()
                    ),
                    ))
                }
                Ok(m) => {
                    if let Some(what) = limits::kind_of(&m.file_type()) {
                        return Err(doc.err(
                            &fpath,
                            format!(
                                "rule file `{}` is {what}, not a regular file; name the file {} loads",
                                full.display(),
                                kind.tool()
                            ),
                        ));
                    }
                    if m.len() > plan::MAX_BUNDLE_BYTES {
                        return Err(doc.err(
                            &fpath,
                            format!(
                                "rule file `{}` is larger than {} MiB; is it the right file?",
                                full.display(),
                                plan::MAX_BUNDLE_BYTES >> 20
                            ),
                        ));
                    }
                }
            }
            files.push(RuleSource::File { kind, path: full });
        }
        out.push(NodeRules {
            node,
            tables,
            sources: files,
        });
    }
    Ok(out)
}

fn flows(
    doc: &Doc,
    topo: &Topology,
    traffic: &[raw::TrafficDef],
) -> Result<Vec<FlowSpec>, SpecError> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, t) in traffic.iter().enumerate() {
        let path = format!("traffic[{i}]");
        let group = t
            .name
            .clone()
            .unwrap_or_else(|| format!("traffic{}", i + 1));
        if !valid_name(&group) || ["all", "tcp", "udp"].contains(&group.as_str()) {
            return Err(doc.err(&format!("{path}.name"), format!("traffic name `{group}`: use letters, digits, `-`, `_` (not `all`, `tcp`, `udp`)")));
        }
        if !names.insert(group.clone()) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!("traffic name `{group}` is used twice"),
            ));
        }
        let addr_of = |key: &str, node: &str| -> Result<Ipv4Addr, SpecError> {
            if topo.node(node).is_none() {
                let have: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
                return Err(doc.err(
                    &format!("{path}.{key}"),
                    unknown_name("node", node, &have, "the topology has"),
                ));
            }
            topo.primary_addr(node).ok_or_else(|| {
                doc.err(
                    &format!("{path}.{key}"),
                    format!("node `{node}` has no address to use"),
                )
            })
        };
        let mut client = addr_of("from", &t.from)?;
        let mut server = addr_of("to", &t.to)?;
        // An address of the node, chosen by `key` (or `any` where allowed).
        let own =
            |key: &str, node: &str, text: &str, any_ok: bool| -> Result<Ipv4Addr, SpecError> {
                let p = format!("{path}.{key}");
                if any_ok && text == "any" {
                    return Ok(Ipv4Addr::UNSPECIFIED);
                }
                let a: Ipv4Addr = text.parse().map_err(|_| {
                    doc.err(
                        &p,
                        format!(
                            "`{text}` is not an IPv4 address{}",
                            if any_ok { " (or `any`)" } else { "" }
                        ),
                    )
                })?;
                let mine: Vec<String> = topo
                    .ends_of(node)
                    .flat_map(|e| e.addrs.iter())
                    .map(|n| n.addr().to_string())
                    .collect();
                if !mine.contains(&a.to_string()) {
                    return Err(doc.err(
                        &p,
                        format!(
                            "{a} is not an address of `{node}` (it has {})",
                            mine.join(", ")
                        ),
                    ));
                }
                Ok(a)
            };
        if let Some(a) = &t.address {
            server = own("address", &t.to, a, false)?;
        }
        if let Some(a) = &t.from_address {
            client = own("from_address", &t.from, a, true)?;
        }
        let dial = match &t.dial {
            None => SocketAddrV4::new(server, t.port),
            Some(d) => d
                .parse::<SocketAddrV4>()
                .or_else(|_| d.parse::<Ipv4Addr>().map(|a| SocketAddrV4::new(a, t.port)))
                .map_err(|_| {
                    doc.err(
                        &format!("{path}.dial"),
                        format!("`{d}` is not `ADDRESS` or `ADDRESS:PORT`"),
                    )
                })?,
        };
        if let Some(what) = not_unicast(*dial.ip()) {
            return Err(doc.err(
                &format!("{path}.dial"),
                format!("`dial: {}`: {} is {what}; dial an address of the lab (a node's, or one the router forwards)", dial, dial.ip()),
            ));
        }
        if dial.port() == 0 {
            return Err(doc.err(
                &format!("{path}.dial"),
                format!("`dial: {dial}`: port 0 cannot be dialled; pick 1 to 65535"),
            ));
        }
        if t.from == t.to {
            return Err(doc.err(
                &format!("{path}.to"),
                "a flow goes from one node to another",
            ));
        }
        if t.port == 0 {
            return Err(doc.err(
                &format!("{path}.port"),
                "port 0 cannot be served; pick 1 to 65535",
            ));
        }
        if t.flows == 0 {
            return Err(doc.err(&format!("{path}.flows"), "`flows` starts at 1"));
        }
        if t.round_trips == 0 || t.round_trips > MAX_ROUND_TRIPS {
            return Err(doc.err(
                &format!("{path}.round_trips"),
                format!(
                    "`round_trips: {}`: a flow makes 1 to {MAX_ROUND_TRIPS} round trips",
                    t.round_trips
                ),
            ));
        }
        let timeout = match &t.timeout {
            None => DEFAULT_TIMEOUT,
            Some(s) => parse_duration(s).ok_or_else(|| {
                doc.err(
                    &format!("{path}.timeout"),
                    format!("timeout `{s}`: write e.g. `1s` or `500ms`"),
                )
            })?,
        };
        let proto = match t.proto {
            raw::ProtoDef::Tcp => Proto::Tcp,
            raw::ProtoDef::Udp => Proto::Udp,
        };
        if t.related_probe && proto != Proto::Udp {
            return Err(doc.err(&format!("{path}.related_probe"), "a RELATED probe (a late datagram answered by ICMP port unreachable) is for UDP traffic"));
        }
        for _ in 0..t.flows {
            let id = out.len() as u32 + 1;
            if id > MAX_FLOWS {
                return Err(doc.err(
                    &format!("{path}.flows"),
                    format!("at most {MAX_FLOWS} flows per scenario"),
                ));
            }
            out.push(FlowSpec {
                id,
                group: group.clone(),
                proto,
                client_node: t.from.clone(),
                client: SocketAddrV4::new(client, client_port(id)),
                server_node: t.to.clone(),
                server: SocketAddrV4::new(server, t.port),
                dial,
                round_trips: t.round_trips,
                timeout,
                related_probe: t.related_probe,
                craft: None,
            });
        }
    }
    Ok(out)
}

fn events(
    doc: &Doc,
    topo: &Topology,
    flows: &[FlowSpec],
    raw: &[raw::EventDef],
) -> Result<Vec<Event>, SpecError> {
    let mut out = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        let path = format!("events[{i}]");
        let (link_name, up) = match (&e.down, &e.up) {
            (Some(l), None) => (l, false),
            (None, Some(l)) => (l, true),
            _ => return Err(doc.err(&path, "an event is `down: LINK` or `up: LINK`")),
        };
        let Some(link) = topo.link(link_name) else {
            let have: Vec<&str> = topo.links.iter().map(|l| l.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.{}", if up { "up" } else { "down" }),
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
        if !flows
            .iter()
            .any(|f| f.group == e.before && f.craft.is_none())
        {
            let groups: BTreeSet<&str> = flows.iter().map(|f| f.group.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.before"),
                format!(
                    "`{}` is not a traffic name (there are: {})",
                    e.before,
                    groups.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let peer = if std::ptr::eq(end, &link.a) {
            &link.b
        } else {
            &link.a
        };
        out.push(Event {
            before_group: e.before.clone(),
            link: link_name.clone(),
            node: end.node.clone(),
            iface: end.iface.clone(),
            peer_node: peer.node.clone(),
            peer_iface: peer.iface.clone(),
            up,
        });
    }
    Ok(out)
}

/// Crafted packets become flows after the traffic's, one per `count`.
fn crafted(
    doc: &Doc,
    topo: &Topology,
    raw: &[raw::CraftDef],
    flows: &mut Vec<FlowSpec>,
) -> Result<(), SpecError> {
    for (i, c) in raw.iter().enumerate() {
        let path = format!("craft[{i}]");
        let group = c.name.clone().unwrap_or_else(|| format!("craft{}", i + 1));
        if !valid_name(&group) || flows.iter().any(|f| f.group == group) {
            return Err(doc.err(
                &format!("{path}.name"),
                format!(
                    "name `{group}`: letters, digits, `-`, `_`, not used by another traffic entry"
                ),
            ));
        }
        let kind = match c.packet.as_str() {
            "echo-reply" => CraftKind::EchoReply,
            other => {
                return Err(doc.err(
                    &format!("{path}.packet"),
                    format!("unknown packet `{other}`; the harness crafts: echo-reply"),
                ))
            }
        };
        let Some(link) = topo.link(&c.link) else {
            let have: Vec<&str> = topo.links.iter().map(|l| l.name.as_str()).collect();
            return Err(doc.err(
                &format!("{path}.link"),
                unknown_name("link", &c.link, &have, "links:"),
            ));
        };
        if link.a.node != c.from && link.b.node != c.from {
            return Err(doc.err(
                &format!("{path}.from"),
                format!(
                    "`{}` is not an end of link `{}` ({} and {})",
                    c.from, c.link, link.a.node, link.b.node
                ),
            ));
        }
        let addr = |key: &str, text: &str| -> Result<Ipv4Addr, SpecError> {
            text.parse().map_err(|_| {
                doc.err(
                    &format!("{path}.{key}"),
                    format!("`{text}` is not an IPv4 address"),
                )
            })
        };
        let (src, dst) = (addr("src", &c.src)?, addr("dst", &c.dst)?);
        // The node that owns the destination, if any, is where the packet is delivered.
        let to_node = topo
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .find(|e| e.addrs.iter().any(|a| a.addr() == dst))
            .map_or_else(|| "none".to_string(), |e| e.node.clone());
        if c.count == 0 {
            return Err(doc.err(&format!("{path}.count"), "`count` starts at 1"));
        }
        if u64::from(c.count) + flows.len() as u64 > u64::from(MAX_FLOWS) {
            return Err(doc.err(
                &format!("{path}.count"),
                format!("at most {MAX_FLOWS} flows per scenario, crafted packets included"),
            ));
        }
        for _ in 0..c.count {
            let id = flows.len() as u32 + 1;
            flows.push(FlowSpec {
                id,
                group: group.clone(),
                proto: Proto::Icmp,
                client_node: c.from.clone(),
                client: SocketAddrV4::new(src, id as u16),
                server_node: to_node.clone(),
                server: SocketAddrV4::new(dst, 0),
                dial: SocketAddrV4::new(dst, 0),
                round_trips: 1,
                timeout: DEFAULT_TIMEOUT,
                related_probe: false,
                craft: Some(Craft {
                    kind,
                    link: c.link.clone(),
                    from: c.from.clone(),
                }),
            });
        }
    }
    Ok(())
}

fn expectations(
    doc: &Doc,
    topo: &Topology,
    flows: &[FlowSpec],
    raw: Vec<raw::ExpectDef>,
) -> Result<Vec<Expectation>, SpecError> {
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
                let a: Ipv4Addr = a
                    .parse()
                    .map_err(|_| doc.err(&p, format!("`{a}` is not an IPv4 address")))?;
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
            checks.push(Check::Split(w));
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
        let check = match checks.len() {
            1 => checks.pop().expect("one"),
            0 => return Err(doc.err(
                &path,
                "an expectation states one of: via, sequence, source, mark, one_uplink, completes, split, leaves_via",
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
        let (selector, ids): (String, Vec<u32>) = match e.flows {
            None => ("all".into(), flows.iter().map(|f| f.id).collect()),
            Some(raw::SelectorDef::Name(n)) => {
                let ids: Vec<u32> = flows
                    .iter()
                    .filter(|f| match n.as_str() {
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
                        &format!("{path}.flows"),
                        format!(
                            "`{n}` selects no flow: use all, tcp, udp or a traffic name ({})",
                            groups.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                (n, ids)
            }
            Some(raw::SelectorDef::Ids(ids)) => {
                for (k, id) in ids.iter().enumerate() {
                    if !flows.iter().any(|f| f.id == *id) {
                        return Err(doc.err(
                            &format!("{path}.flows[{k}]"),
                            format!(
                                "there is no flow {id} (flows are numbered 1 to {})",
                                flows.len()
                            ),
                        ));
                    }
                }
                (format!("{ids:?}"), ids)
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
        if let Check::Mark(_) | Check::Source(_) = &check {
            let mine: BTreeSet<u32> = ids.iter().copied().collect();
            for other in &out {
                let differ = match (&check, &other.check) {
                    (Check::Mark(a), Check::Mark(b)) => a
                        .iter()
                        .find(|(l, v)| b.get(*l).is_some_and(|w| w != *v))
                        .map(|(l, v)| (l.clone(), v.to_string(), b[l].to_string())),
                    (Check::Source(a), Check::Source(b)) => a
                        .iter()
                        .find(|(l, v)| b.get(*l).is_some_and(|w| w != *v))
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
        if let Some(k) = exclusive_kind(&check) {
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

fn expected_failure(
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

/// Looks up a file relative to the crate's repository root (for tests and benches).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[cfg(test)]
mod name_tests {
    use super::{addr_problem, iface_problem};
    use ipnet::Ipv4Net;
    use rstest::rstest;

    #[rstest]
    #[case::plain("eth0", None)]
    #[case::fifteen("abcdefghijklmno", None)]
    #[case::sixteen("abcdefghijklmnop", Some("1 to 15"))]
    #[case::empty("", Some("1 to 15"))]
    #[case::dot(".", Some("`.` and `..`"))]
    #[case::dotdot("..", Some("`.` and `..`"))]
    #[case::slash("a/b", Some("no `/`"))]
    #[case::blank("a b", Some("no `/`"))]
    #[case::lo("lo", Some("loopback"))]
    #[case::all("all", Some("sysctl folders"))]
    #[case::default("default", Some("sysctl folders"))]
    fn iface(#[case] name: &str, #[case] says: Option<&str>) {
        match (iface_problem(name), says) {
            (None, None) => {}
            (Some(m), Some(s)) => assert!(m.contains(s), "{m}"),
            (got, _) => panic!("`{name}`: {got:?}"),
        }
    }

    #[rstest]
    #[case::private("10.0.0.1/24", None)]
    #[case::point_to_point("10.0.0.0/31", None)]
    #[case::loopback("127.0.0.2/8", Some("loopback"))]
    #[case::multicast("224.0.0.5/24", Some("multicast"))]
    #[case::multicast_top("239.255.255.250/24", Some("multicast"))]
    #[case::limited_broadcast("255.255.255.255/32", Some("limited broadcast"))]
    #[case::zero("0.0.0.0/32", Some("0.0.0.0/8"))]
    #[case::zero_net("0.1.2.3/8", Some("0.0.0.0/8"))]
    #[case::prefix_0("192.168.1.2/0", Some("/0 prefix"))]
    fn address(#[case] net: &str, #[case] says: Option<&str>) {
        let net: Ipv4Net = net.parse().expect("a prefix");
        match (addr_problem(&net), says) {
            (None, None) => {}
            (Some(m), Some(s)) => assert!(m.contains(s), "{m}"),
            (got, _) => panic!("`{net}`: {got:?}"),
        }
    }
}

#[cfg(test)]
mod rule_tests {
    use super::{parse_rule, RuleAction};
    use rstest::rstest;

    #[rstest]
    #[case::acl(
        "pref 100 iif cust from 10.37.1.0/24 lookup main",
        Some(100),
        false,
        Some("10.37.1.0/24"),
        Some("cust"),
        None,
        RuleAction::Table(254)
    )]
    #[case::blackhole(
        "pref 101 iif cust blackhole",
        Some(101),
        false,
        None,
        Some("cust"),
        None,
        RuleAction::Blackhole
    )]
    #[case::masked_mark("fwmark 0x2/0xf lookup 252", None, false, None, None, Some((2, Some(15))), RuleAction::Table(252))]
    #[case::inverted(
        "not from 10.0.0.0/8 prohibit",
        None,
        true,
        Some("10.0.0.0/8"),
        None,
        None,
        RuleAction::Prohibit
    )]
    fn parses(
        #[case] text: &str,
        #[case] pref: Option<u32>,
        #[case] not: bool,
        #[case] from: Option<&str>,
        #[case] iif: Option<&str>,
        #[case] fwmark: Option<(u32, Option<u32>)>,
        #[case] action: RuleAction,
    ) {
        let r = parse_rule(text).expect("parses");
        assert_eq!(
            (
                r.pref,
                r.not,
                r.from.map(|f| f.to_string()),
                r.iif.as_deref(),
                r.fwmark,
                r.action
            ),
            (pref, not, from.map(String::from), iif, fwmark, action)
        );
    }

    #[rstest]
    #[case::no_action("iif cust", "say what the rule does")]
    #[case::unknown_word("iff cust blackhole", "unknown word `iff`")]
    #[case::bad_prefix("from 10.37.1.300/24 blackhole", "is not an IPv4 prefix")]
    fn refuses(#[case] text: &str, #[case] says: &str) {
        let e = parse_rule(text).expect_err("refused");
        assert!(e.contains(says), "{e}");
    }
}

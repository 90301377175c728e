//! The topology: nodes, links and their ends, the router and its uplinks; each node's
//! routes, policy rules and sysctls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::doc::{parse, stem, unknown_name, valid_name, Doc};
use super::iproute::{parse_route, parse_rule};
use super::locate::YamlIndex;
use super::{hostsafe, raw, End, Link, Node, Router, SpecError, Topology};

/// A traffic entry that starts behind one of the router's uplinks and ends behind another:
/// its flows would cross two uplinks, and every `via` or `one_uplink` would fail for a
/// mistake in the topology (typically the LAN link listed in `router.uplinks`). "Behind a
/// link": reachable from its far end without passing through the router.
pub(super) fn crossing_uplinks(
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
/// Why an IPv6 address cannot be given to a veth end, if it cannot.
fn addr6_problem(net: &Ipv6Net) -> Option<String> {
    let a = net.addr();
    let seg = a.segments();
    let what = if a.is_loopback() {
        "the loopback address ::1: the kernel keeps it for `lo`"
    } else if a.is_unspecified() {
        "the unspecified address ::"
    } else if a.is_multicast() {
        "a multicast address (ff00::/8): a host address cannot be one"
    } else if seg[0] & 0xffc0 == 0xfe80 {
        "link-local (fe80::/10): the kernel gives every IPv6 interface its own already"
    } else if a.to_ipv4_mapped().is_some() {
        "an IPv4-mapped address (::ffff:0:0/96): write the IPv4 address itself"
    } else if net.prefix_len() == 0 {
        return Some(format!(
            "`{net}`: a /0 prefix makes every address a neighbour on this link; give the subnet's length, e.g. `{a}/64`"
        ));
    } else {
        return None;
    };
    Some(format!(
        "`{net}` is {what}; use a global or unique-local address such as 2001:db8:1::1/64"
    ))
}
/// Reads and validates a topology file (`text` is its contents).
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
    let mut seen_addrs: BTreeMap<IpAddr, String> = BTreeMap::new();
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
        if let Some(mtu) = def.mtu {
            let v6 = a.v6().next().is_some() || b.v6().next().is_some();
            let least = if v6 { 1280 } else { 576 };
            if !(least..=65535).contains(&mtu) {
                return Err(doc.err(
                    &format!("links.{name}.mtu"),
                    format!(
                        "link `{name}`: `mtu: {mtu}` is out of range: {least} to 65535{}",
                        if v6 { " (IPv6 needs at least 1280; the kernel turns IPv6 off on a smaller link)" } else { "" }
                    ),
                ));
            }
        }
        links.push(Link {
            name: name.clone(),
            a,
            b,
            mtu: def.mtu,
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
        let has_v6 = ifaces.iter().any(|e| e.v6().next().is_some());
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
            let v6 = r.dst.addr().is_ipv6();
            if v6 && !has_v6 {
                return Err(doc.err(&path, format!("node `{name}`: route `{text}` is IPv6, but no link end of `{name}` has an IPv6 address, so IPv6 is off in it; give one of its ends an address such as 2001:db8:1::1/64")));
            }
            if let Some(gw) = r.via {
                let subnets: Vec<IpNet> = ifaces
                    .iter()
                    .flat_map(|e| &e.addrs)
                    .filter(|a| a.addr().is_ipv6() == v6)
                    .copied()
                    .collect();
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
                    return Err(doc.err(&path, format!("node `{name}`: route `{text}`: gateway {gw} is in none of this node's {}subnets ({}); a gateway must be a neighbour on one of its links", if v6 { "IPv6 " } else { "" }, list.join(", "))));
                }
            }
            routes.push(r);
        }
        let mut rules = Vec::new();
        for (i, text) in def.rules.iter().enumerate() {
            let path = format!("nodes.{name}.rules[{i}]");
            let r = parse_rule(text)
                .map_err(|m| doc.err(&path, format!("node `{name}`: rule `{text}`: {m}")))?;
            if r.family == super::IpFamily::V6 && !has_v6 {
                return Err(doc.err(&path, format!("node `{name}`: rule `{text}` is IPv6, but no link end of `{name}` has an IPv6 address, so IPv6 is off in it; give one of its ends an address such as 2001:db8:1::1/64")));
            }
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

/// `jupiter:eth1 10.37.1.253/24 [more addresses, IPv4 or IPv6: 2001:db8:1::253/64]`
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
        let net = if w.contains(':') {
            let net: Ipv6Net = w
                .parse()
                .map_err(|_| match w.parse::<std::net::Ipv6Addr>() {
                    Ok(_) => {
                        format!("`{w}` has no prefix length; write it as `{w}/LEN`, e.g. `{w}/64`")
                    }
                    Err(_) => format!(
                    "`{w}` is not an IPv6 address with a prefix length (e.g. 2001:db8:1::253/64)"
                ),
                })?;
            if let Some(why) = addr6_problem(&net) {
                return Err(why);
            }
            if net.prefix_len() < 127 && net.addr() == net.network() {
                return Err(format!(
                    "`{w}` is the subnet-router anycast address of its prefix (all host bits zero); pick another, e.g. `{}/{}`",
                    std::net::Ipv6Addr::from(u128::from(net.network()) + 1),
                    net.prefix_len()
                ));
            }
            IpNet::V6(net)
        } else {
            let net: Ipv4Net = w.parse().map_err(|_| match w.parse::<Ipv4Addr>() {
                Ok(_) => {
                    format!("`{w}` has no prefix length; write it as `{w}/LEN`, e.g. `{w}/24`")
                }
                Err(_) => format!(
                    "`{w}` is not an IPv4 address with a prefix length (e.g. 10.37.1.253/24), nor an IPv6 one (2001:db8:1::253/64)"
                ),
            })?;
            if let Some(why) = addr_problem(&net) {
                return Err(why);
            }
            if net.prefix_len() < 31
                && (net.addr() == net.network() || net.addr() == net.broadcast())
            {
                return Err(format!(
                    "`{w}` is the network or broadcast address of its subnet"
                ));
            }
            IpNet::V4(net)
        };
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

#[cfg(test)]
mod name_tests {
    use super::{addr6_problem, addr_problem, iface_problem, parse_end};
    use ipnet::{Ipv4Net, Ipv6Net};
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

    #[rstest]
    #[case::global("2001:db8:1::253/64", None)]
    #[case::ula("fd00::1/64", None)]
    #[case::loopback("::1/128", Some("loopback"))]
    #[case::unspecified("::/128", Some("unspecified"))]
    #[case::multicast("ff02::1/64", Some("multicast"))]
    #[case::link_local("fe80::1/64", Some("link-local"))]
    #[case::mapped("::ffff:10.0.0.1/120", Some("IPv4-mapped"))]
    #[case::prefix_0("2001:db8::1/0", Some("/0 prefix"))]
    fn address6(#[case] net: &str, #[case] says: Option<&str>) {
        let net: Ipv6Net = net.parse().expect("a prefix");
        match (addr6_problem(&net), says) {
            (None, None) => {}
            (Some(m), Some(s)) => assert!(m.contains(s), "{m}"),
            (got, _) => panic!("`{net}`: {got:?}"),
        }
    }

    #[rstest]
    #[case::v4_only("jupiter:eth1 10.37.1.253/24", 1, 0)]
    #[case::dual("jupiter:eth1 10.37.1.253/24 2001:db8:1::253/64", 1, 1)]
    #[case::v6_only("jupiter:eth1 2001:db8:1::253/64", 0, 1)]
    #[case::v6_first("jupiter:eth1 2001:db8:1::253/64 10.37.1.253/24 10.37.9.1/24", 2, 1)]
    fn ends(#[case] text: &str, #[case] v4: usize, #[case] v6: usize) {
        let e = parse_end(text).expect("parses");
        assert_eq!((e.v4().count(), e.v6().count()), (v4, v6));
    }

    #[rstest]
    #[case::bad_v6("a:e 2001:db8::g1/64", "is not an IPv6 address with a prefix length")]
    #[case::no_len("a:e 2001:db8::1", "has no prefix length")]
    #[case::anycast("a:e 2001:db8:1::/64", "subnet-router anycast")]
    #[case::bad_v4("a:e 10.0.0.300/24", "is not an IPv4 address with a prefix length")]
    fn bad_ends(#[case] text: &str, #[case] says: &str) {
        let e = parse_end(text).expect_err("refused");
        assert!(e.contains(says), "{e}");
    }
}

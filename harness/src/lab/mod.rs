//! The live lab: one namespace per node, one veth pair per link, addresses, routes and
//! sysctls set through netlink and /proc/sys from a thread inside each node. Dropping the
//! [`Lab`] closes the namespaces' fds; the kernel removes everything with them.

pub mod faults;
pub mod keep;
mod netns;
pub mod spawn;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use thiserror::Error;

pub use netns::{can_create_netns, Netns};

use crate::model::{IpFamily, Plan, PolicyRule, Route, RuleAction};

/// What stopped the lab from being built or changed. Each names the node, and carries the
/// kernel's reason in its message (so none has a `source`, which would print it twice).
#[derive(Debug, Error)]
pub enum LabError {
    /// The kernel refused a new network namespace (no root or CAP_SYS_ADMIN, most often).
    #[error("creating the network namespace for node `{node}`: {error} (creating namespaces needs root or CAP_SYS_ADMIN: run as root)")]
    Netns { node: String, error: io::Error },
    /// A netlink request in the node failed (`what` it was: adding a route, creating a
    /// link…), with the kernel's reason.
    #[error("node `{node}`: {what}: {msg}")]
    Netlink {
        node: String,
        what: String,
        msg: String,
    },
    /// A sysctl could not be written in the node (an unknown key, a value out of range).
    #[error("node `{node}`: sysctl `{key}` = `{value}`: {error} (does the key exist on this kernel? `sysctl -a | grep` it)")]
    Sysctl {
        node: String,
        key: String,
        value: String,
        error: io::Error,
    },
    /// A part of the lab that did not come up in time: the lab's fault, not the rules'.
    /// `timeout` says what, how long it waited, and what to try.
    #[error("node `{node}`: {timeout}")]
    NotReady {
        node: String,
        timeout: crate::wait::Timeout,
    },
    /// A thread could not be started in the node, entered it, or panicked there.
    #[error("node `{node}`: {error}")]
    Thread { node: String, error: io::Error },
}

/// Opens once the lab is wired (its addresses, links up and routes in place) or its wiring
/// failed: work started on the created lab waits here for what needs the wiring.
#[derive(Clone)]
pub struct Gate(Arc<(Mutex<Option<bool>>, Condvar)>);

/// The one who opens a [`Gate`]; dropped unopened, it opens it as failed, so that nothing
/// waits forever.
pub struct GateKeeper(Gate);

impl Gate {
    pub fn new() -> (GateKeeper, Gate) {
        let gate = Gate(Arc::new((Mutex::new(None), Condvar::new())));
        (GateKeeper(gate.clone()), gate)
    }

    /// Waits until the gate opens: whether the lab was wired.
    pub fn wait(&self) -> bool {
        let (state, opened) = &*self.0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(wired) = *s {
                return wired;
            }
            s = opened.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl GateKeeper {
    pub fn open(self, wired: bool) {
        self.set(wired);
    }

    fn set(&self, wired: bool) {
        let (state, opened) = &*(self.0).0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.get_or_insert(wired);
        opened.notify_all();
    }
}

impl Drop for GateKeeper {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// A built lab. Holds the namespaces; dropping it tears the lab down.
pub struct Lab {
    pub nodes: BTreeMap<String, Netns>,
}

impl Lab {
    pub fn ns(&self, node: &str) -> &Netns {
        &self.nodes[node]
    }

    /// The nodes and the links between them: namespaces, node-wide sysctls, veth pairs (down,
    /// with no addresses). Work that needs no addresses or routes (loading netfilter rules,
    /// setting up capture rings) can start on them while [`Lab::wire`] runs. (Not earlier: a
    /// device that registers in a node while an nf_tables tool is at work there waits, holding
    /// the whole kernel's rtnl lock, for the tool's commit cleanup.)
    pub fn create(plan: &Plan) -> Result<Lab, LabError> {
        let topo = &plan.topology;
        // The namespaces, created at once (a thread each).
        let made: Vec<_> = topo
            .nodes
            .iter()
            .map(|n| (n.name.clone(), Netns::start(&n.name)))
            .collect();
        let mut nodes = BTreeMap::new();
        for (name, pending) in made {
            let ns = pending
                .and_then(|p| p.finish())
                .map_err(|error| LabError::Netns {
                    node: name.clone(),
                    error,
                })?;
            nodes.insert(name, ns);
        }
        let lab = Lab { nodes };
        // Each step runs in every node at once (a thread each); the steps run in order.
        // 1. Node-wide sysctls first: `default` values are copied into interfaces created later.
        lab.in_nodes(
            topo.nodes
                .iter()
                .map(|n| {
                    let mut sysctls = baseline_sysctls(topo.uses_ipv6(&n.name));
                    sysctls.extend(
                        n.sysctls
                            .iter()
                            .filter(|(k, _)| !is_iface_sysctl(k))
                            .cloned(),
                    );
                    (n.name.clone(), move |node: &str| {
                        set_sysctls(node, &sysctls)
                    })
                })
                .collect(),
        )?;
        // 2. Veth pairs, created in the `a` node with the peer placed straight into the `b` node.
        let peers: BTreeMap<String, i32> = lab
            .nodes
            .iter()
            .map(|(k, v)| (k.clone(), v.raw_fd()))
            .collect();
        lab.netlink_all(
            lab.nodes
                .keys()
                .filter_map(|node| {
                    let links: Vec<_> = topo
                        .links
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.a.node == *node)
                        .map(|(i, l)| (end_index(i, false), end_index(i, true), l.clone()))
                        .collect();
                    let peers = peers.clone();
                    (!links.is_empty()).then(|| {
                        (node.clone(), move |h: rtnetlink::Handle| async move {
                            for (a_index, b_index, l) in links {
                                let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
                                    .index(b_index)
                                    .name(l.b.iface.clone())
                                    .address(l.b.mac.to_vec())
                                    .setns_by_fd(peers[&l.b.node]);
                                let mut msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(
                                    InfoKind::Veth,
                                )
                                .index(a_index)
                                .name(l.a.iface.clone())
                                .address(l.a.mac.to_vec());
                                if let Some(mtu) = l.mtu {
                                    peer = peer.mtu(mtu);
                                    msg = msg.mtu(mtu);
                                }
                                let msg = msg
                                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
                                    .build();
                                h.link().add(msg).execute().await.map_err(|e| {
                                    (
                                        format!(
                                            "creating link `{}` ({}:{} ↔ {}:{})",
                                            l.name, l.a.node, l.a.iface, l.b.node, l.b.iface
                                        ),
                                        e,
                                    )
                                })?;
                            }
                            Ok(())
                        })
                    })
                })
                .collect(),
        )?;
        Ok(lab)
    }

    /// The rest of the nodes' insides: addresses, links up, per-interface sysctls, routes and
    /// policy rules.
    pub fn wire(&self, plan: &Plan) -> Result<(), LabError> {
        let (lab, topo) = (self, &plan.topology);
        // 3. Addresses and links up, then per-interface sysctls.
        lab.in_nodes(
            topo.nodes
                .iter()
                .map(|n| {
                    let ends: Vec<_> = topo.ends_of(&n.name).cloned().collect();
                    let sysctls: Vec<_> = n
                        .sysctls
                        .iter()
                        .filter(|(k, _)| is_iface_sysctl(k))
                        .cloned()
                        .collect();
                    (n.name.clone(), move |node: &str| {
                        netlink_session(node, |h| async move {
                            let lo = index_of(&h, "lo").await?;
                            up(&h, lo, "lo").await?;
                            for e in ends {
                                let idx = index_of(&h, &e.iface).await?;
                                for a in &e.addrs {
                                    let mut req = h.address().add(idx, a.addr(), a.prefix_len());
                                    if a.addr().is_ipv6() {
                                        // Usable at once, whatever accept_dad says.
                                        req.message_mut()
                                            .attributes
                                            .push(AddressAttribute::Flags(AddressFlags::Nodad));
                                    }
                                    req.execute().await.map_err(|err| {
                                        (format!("adding {a} to `{}`", e.iface), err)
                                    })?;
                                }
                                up(&h, idx, &e.iface).await?;
                            }
                            Ok(())
                        })?;
                        set_sysctls(node, &sysctls)
                    })
                })
                .collect(),
        )?;
        // 4. Routes and policy rules, once every address is in place; then 5. every link
        // end operationally up.
        lab.in_nodes(
            topo.nodes
                .iter()
                .map(|n| {
                    let (routes, rules) = (n.routes.clone(), n.rules.clone());
                    let ends: Vec<String> =
                        topo.ends_of(&n.name).map(|e| e.iface.clone()).collect();
                    (n.name.clone(), move |node: &str| {
                        netlink_session(node, |h| async move {
                            for r in routes {
                                add_route(&h, &r).await?;
                            }
                            for r in rules {
                                add_rule(&h, &r).await?;
                            }
                            Ok(())
                        })?;
                        wait_links(node, &ends, true, deadline())
                    })
                })
                .collect(),
        )
    }

    /// Sets `iface` of `node` up or down; same as `ip link set dev IFACE up|down` there.
    pub fn set_link(&self, node: &str, iface: &str, on: bool) -> Result<(), LabError> {
        let name = iface.to_string();
        self.netlink(node, move |h| async move {
            let idx = index_of(&h, &name).await?;
            let msg = if on {
                LinkUnspec::new_with_index(idx).up().build()
            } else {
                LinkUnspec::new_with_index(idx).down().build()
            };
            h.link().set(msg).execute().await.map_err(|e| {
                (
                    format!("setting `{name}` {}", if on { "up" } else { "down" }),
                    e,
                )
            })
        })
    }

    /// Makes `change` at `node`'s end `iface` (a blackhole, loss, deafness, healing them, or
    /// the carrier): see [`faults::apply`].
    pub fn fault(
        &self,
        node: &str,
        iface: &str,
        change: crate::model::Change,
    ) -> Result<(), LabError> {
        faults::apply(self, node, iface, change)
    }

    /// Adds `routes` to `node` again where they are missing: a link end set down loses the
    /// routes through it, and setting it up brings back only its connected ones (a modem that
    /// comes back comes back configured).
    ///
    /// # Errors
    /// [`LabError::Netlink`] when a route cannot be added for another reason than its being
    /// there already.
    pub fn restore_routes(&self, node: &str, routes: &[Route]) -> Result<(), LabError> {
        let routes = routes.to_vec();
        self.netlink(node, move |h| async move {
            for r in &routes {
                match add_route(&h, r).await {
                    Err((_, rtnetlink::Error::NetlinkError(m)))
                        if m.code.is_some_and(|c| -c.get() == libc::EEXIST) => {}
                    other => other?,
                }
            }
            Ok(())
        })
    }

    /// Waits until `iface` of `node` is operationally up (or not), as the kernel's link watch
    /// reports it: routes through a link learn of a carrier change only then, asynchronously.
    ///
    /// # Errors
    /// [`LabError::NotReady`] when it is not by `deadline`.
    pub fn wait_oper(
        &self,
        node: &str,
        iface: &str,
        up: bool,
        deadline: std::time::Instant,
    ) -> Result<(), LabError> {
        let iface = [iface.to_string()];
        self.ns(node)
            .run({
                let node = node.to_string();
                move || wait_links(&node, &iface, up, deadline)
            })
            .map_err(|error| LabError::Thread {
                node: node.to_string(),
                error,
            })?
    }

    /// Runs each job's `f(node)` inside its node, all at once (a thread each), and waits for
    /// all; the first error in job order is returned.
    fn in_nodes<F>(&self, jobs: Vec<(String, F)>) -> Result<(), LabError>
    where
        F: FnOnce(&str) -> Result<(), LabError> + Send + 'static,
    {
        let mut handles = Vec::with_capacity(jobs.len());
        for (node, f) in jobs {
            let name = node.clone();
            let h = self
                .ns(&node)
                .spawn("lab", move || f(&name))
                .map_err(|error| LabError::Thread {
                    node: node.clone(),
                    error,
                })?;
            handles.push((node, h));
        }
        let mut first = Ok(());
        for (node, h) in handles {
            let r = match h.join() {
                Ok(Ok(r)) => r,
                Ok(Err(error)) => Err(LabError::Thread { node, error }),
                Err(_) => Err(LabError::Thread {
                    node,
                    error: io::Error::other("thread panicked"),
                }),
            };
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// An rtnetlink session inside each of `nodes`, all at once.
    fn netlink_all<F, Fut>(&self, jobs: Vec<(String, F)>) -> Result<(), LabError>
    where
        F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), (String, rtnetlink::Error)>>,
    {
        self.in_nodes(
            jobs.into_iter()
                .map(|(node, f)| (node, move |n: &str| netlink_session(n, f)))
                .collect(),
        )
    }

    /// Runs an rtnetlink session inside `node`.
    fn netlink<F, Fut>(&self, node: &str, f: F) -> Result<(), LabError>
    where
        F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), (String, rtnetlink::Error)>>,
    {
        self.netlink_all(vec![(node.to_string(), f)])
    }
}

/// The interface index of link `i`'s `a` end (or `b` end), the same in every lab: the two
/// ends of a pair never share one. A veth end whose index equals its peer's (each node counts
/// from 2, so two ends in two nodes often would) has its carrier events handled by the
/// kernel's link watch at most once a second, not at once: a lab waiting for its links to be
/// up would take a second to build.
fn end_index(i: usize, b_end: bool) -> u32 {
    1000 + 2 * i as u32 + u32::from(b_end)
}

/// The deadline for the lab's own parts to come up, from now.
fn deadline() -> std::time::Instant {
    std::time::Instant::now() + crate::wait::lab_patience()
}

/// Waits, on a thread inside `node`, until each of `ifaces` is operationally up (or, with
/// `up` false, not up). A veth end brought up before its peer gets its carrier, its operstate
/// and its transmit queue (until then the `noop` queue, which drops every packet) from the
/// kernel's link watch, which runs later, under the rtnl lock, and is held back for seconds
/// while other labs are built and torn down: a packet sent before then vanishes without a
/// trace. No flow starts before every end is up.
fn wait_links(
    node: &str,
    ifaces: &[String],
    up: bool,
    deadline: std::time::Instant,
) -> Result<(), LabError> {
    use netlink_packet_route::link::{LinkAttribute, State};
    if ifaces.is_empty() {
        return Ok(());
    }
    let (rt, handle) = netlink_connect(node)?;
    // Each poll: the interfaces not yet in the wanted state, with the state they are in.
    let pending = || -> Vec<(String, String)> {
        rt.block_on(async {
            let mut states: BTreeMap<String, Option<State>> = BTreeMap::new();
            let mut links = handle.link().get().execute();
            while let Ok(Some(m)) = links.try_next().await {
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                let state = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::OperState(s) => Some(*s),
                    _ => None,
                });
                if let Some(n) = name {
                    states.insert(n, state);
                }
            }
            ifaces
                .iter()
                .filter_map(|i| {
                    let s = states.get(i).copied().flatten();
                    (s.is_some_and(|s| s == State::Up) != up).then(|| {
                        (
                            i.clone(),
                            s.map_or("missing".into(), |s| format!("{s:?}").to_lowercase()),
                        )
                    })
                })
                .collect()
        })
    };
    crate::wait::wait_until(
        deadline,
        || {
            let p = pending();
            if p.is_empty() {
                Ok(())
            } else {
                Err(p)
            }
        },
        |last| {
            let names: Vec<String> = last
                .iter()
                .map(|(i, s)| format!("`{i}` (now {s})"))
                .collect();
            format!(
                "{} {} going {}",
                if names.len() == 1 {
                    "interface"
                } else {
                    "interfaces"
                },
                names.join(", "),
                if up { "operationally up" } else { "down" }
            )
        },
    )
    .map_err(|timeout| LabError::NotReady {
        node: node.to_string(),
        timeout,
    })
}

/// An rtnetlink session on the calling thread (which is inside `node`).
fn netlink_session<F, Fut>(node: &str, f: F) -> Result<(), LabError>
where
    F: FnOnce(rtnetlink::Handle) -> Fut,
    Fut: std::future::Future<Output = Result<(), (String, rtnetlink::Error)>>,
{
    let (rt, handle) = netlink_connect(node)?;
    rt.block_on(f(handle))
        .map_err(|(what, e)| LabError::Netlink {
            node: node.to_string(),
            what,
            msg: netlink_msg(&e),
        })
}

/// An rtnetlink connection on the calling thread (which is inside `node`), driven by the
/// runtime handed back with it: each `block_on` of that runtime moves it on.
fn netlink_connect(node: &str) -> Result<(tokio::runtime::Runtime, rtnetlink::Handle), LabError> {
    let err = |what: &str, e: io::Error| LabError::Netlink {
        node: node.to_string(),
        what: what.into(),
        msg: e.to_string(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err("starting netlink", e))?;
    let handle = rt
        .block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, io::Error>(handle)
        })
        .map_err(|e| err("opening a netlink socket", e))?;
    Ok((rt, handle))
}

fn netlink_msg(e: &rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.code {
            Some(c) => io::Error::from_raw_os_error(-c.get()).to_string(),
            None => format!("{m:?}"),
        },
        other => other.to_string(),
    }
}

async fn index_of(h: &rtnetlink::Handle, name: &str) -> Result<u32, (String, rtnetlink::Error)> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(m.header.index),
        Ok(None) => Err((
            format!("finding interface `{name}`"),
            rtnetlink::Error::RequestFailed,
        )),
        Err(e) => Err((format!("finding interface `{name}`"), e)),
    }
}

async fn up(h: &rtnetlink::Handle, idx: u32, name: &str) -> Result<(), (String, rtnetlink::Error)> {
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| (format!("setting `{name}` up"), e))
}

/// Same as `ip route add DST [via GW] [dev IF] [from P] [table N] [metric N]` (`ip -6 route
/// add` for an IPv6 one).
async fn add_route(h: &rtnetlink::Handle, r: &Route) -> Result<(), (String, rtnetlink::Error)> {
    let what = || format!("adding route `{}`", r.text);
    // The parser gives a route one family: `dst` and `via` agree.
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.dst.addr(), r.dst.prefix_len())
        .map_err(|e| (what(), rtnetlink::Error::InvalidNla(e.to_string())))?;
    if let Some(from) = r.from {
        b = b
            .source_prefix(from.addr(), from.prefix_len())
            .map_err(|e| (what(), rtnetlink::Error::InvalidNla(e.to_string())))?;
    }
    if let Some(gw) = r.via {
        b = b
            .gateway(gw)
            .map_err(|e| (what(), rtnetlink::Error::InvalidNla(e.to_string())))?;
    }
    if let Some(dev) = &r.dev {
        b = b.output_interface(index_of(h, dev).await?);
    }
    if let Some(t) = r.table {
        b = b.table_id(t);
    }
    if let Some(m) = r.metric {
        b = b.priority(m);
    }
    h.route()
        .add(b.build())
        .execute()
        .await
        .map_err(|e| (what(), e))
}

/// Same as `ip rule add …` (`ip -6 rule add …` for an IPv6 one).
async fn add_rule(h: &rtnetlink::Handle, r: &PolicyRule) -> Result<(), (String, rtnetlink::Error)> {
    use netlink_packet_route::rule::{RuleAction as Act, RuleAttribute, RuleFlags};
    let mut req = h.rule().add();
    if let Some(p) = r.pref {
        req = req.priority(p);
    }
    if let Some(i) = &r.iif {
        req = req.input_interface(i.clone());
    }
    if let Some(o) = &r.oif {
        req = req.output_interface(o.clone());
    }
    if let Some((mark, mask)) = r.fwmark {
        req = req.fw_mark(mark);
        if let Some(m) = mask {
            req.message_mut().attributes.push(RuleAttribute::FwMask(m));
        }
    }
    req = match r.action {
        RuleAction::Table(t) => req.table_id(t).action(Act::ToTable),
        RuleAction::Blackhole => req.action(Act::Blackhole),
        RuleAction::Prohibit => req.action(Act::Prohibit),
        RuleAction::Unreachable => req.action(Act::Unreachable),
    };
    if r.not {
        req.message_mut().header.flags |= RuleFlags::Invert;
    }
    // The parser gives `from` and `to` the rule's family.
    let done = match r.family {
        IpFamily::V4 => {
            let mut req = req.v4();
            if let Some(IpNet::V4(f)) = r.from {
                req = req.source_prefix(f.addr(), f.prefix_len());
            }
            if let Some(IpNet::V4(t)) = r.to {
                req = req.destination_prefix(t.addr(), t.prefix_len());
            }
            req.execute().await
        }
        IpFamily::V6 => {
            let mut req = req.v6();
            if let Some(IpNet::V6(f)) = r.from {
                req = req.source_prefix(f.addr(), f.prefix_len());
            }
            if let Some(IpNet::V6(t)) = r.to {
                req = req.destination_prefix(t.addr(), t.prefix_len());
            }
            req.execute().await
        }
    };
    done.map_err(|e| (format!("adding rule `{}`", r.text), e))
}

fn is_iface_sysctl(key: &str) -> bool {
    let p: Vec<&str> = key.split('.').collect();
    p.len() >= 5 && p[2] == "conf" && !["all", "default"].contains(&p[3])
}

/// What every node starts from, whatever the host's /etc/sysctl.conf says: new namespaces
/// copy some IPv4 settings (rp_filter among them) from the host's, which would make a lab
/// behave differently from one machine to the next. ICMP errors are not rate limited, so every
/// probe gets its answer.
///
/// IPv6 is off in a node with no IPv6 address (`ipv6` false): its router solicitations would
/// only add noise to the captures. In a node with one it is on, with duplicate address
/// detection off (addresses usable at once; they are also added with NODAD), no router
/// advertisements accepted nor solicited (the routes are the topology's), and ICMPv6 errors
/// not rate limited either. Neighbour discovery works as ARP does.
fn baseline_sysctls(ipv6: bool) -> Vec<(String, String)> {
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut v = vec![
        kv("net.ipv4.conf.all.rp_filter", "0"),
        kv("net.ipv4.conf.default.rp_filter", "0"),
        kv("net.ipv4.ip_forward", "0"),
    ];
    if ipv6 {
        for scope in ["all", "default"] {
            for (k, val) in [
                ("accept_dad", "0"),
                ("dad_transmits", "0"),
                ("accept_ra", "0"),
                ("router_solicitations", "0"),
                ("forwarding", "0"),
                ("disable_ipv6", "0"),
            ] {
                v.push(kv(&format!("net.ipv6.conf.{scope}.{k}"), val));
            }
        }
        v.push(kv("net.ipv6.icmp.ratelimit", "0"));
        // A link end set down and up keeps its IPv6 addresses, as it keeps its IPv4 ones
        // (the kernel's default drops them for good: a failover event would unconfigure it).
        for scope in ["all", "default"] {
            v.push(kv(&format!("net.ipv6.conf.{scope}.keep_addr_on_down"), "1"));
        }
    } else {
        v.push(kv("net.ipv6.conf.all.disable_ipv6", "1"));
        v.push(kv("net.ipv6.conf.default.disable_ipv6", "1"));
    }
    // Every ICMP error is sent: a RELATED probe must not be lost to rate limiting.
    v.push(kv("net.ipv4.icmp_ratelimit", "0"));
    v.push(kv("net.ipv4.icmp_msgs_per_sec", "1000000"));
    v.push(kv("net.ipv4.icmp_msgs_burst", "1000000"));
    v
}

/// Writes sysctls from a thread inside the node: /proc/sys/net follows the thread's namespace.
fn set_sysctls(node: &str, sysctls: &[(String, String)]) -> Result<(), LabError> {
    for (k, v) in sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|error| LabError::Sysctl {
            node: node.to_string(),
            key: k.clone(),
            value: v.clone(),
            error,
        })?;
    }
    Ok(())
}

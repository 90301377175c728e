//! The YAML files as written. Unknown keys are errors everywhere.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A YAML mapping that keeps its order and refuses duplicate keys.
#[derive(Debug)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names (`name: value`)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(de::Error::custom(format!("`{k}` is declared twice")));
                    }
                    let v = m.next_value()?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A sysctl value: YAML `1` or `"1"` alike.
#[derive(Debug)]
pub enum Scalar {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sysctl value: a number or a string, e.g. `1`")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a topology: a mapping with `nodes:`, `links:` and `router:`"
)]
pub struct Topology {
    /// The lab's name (default: the file's name).
    pub name: Option<String>,
    /// The network namespaces, by name.
    pub nodes: Ordered<NodeDef>,
    /// One veth pair each, by name: `{ a: NODE:IFACE ADDRESS/LEN, b: NODE:IFACE ADDRESS/LEN }`;
    /// each end takes IPv4 and IPv6 addresses (`10.37.1.253/24 2001:db8:1::253/64`).
    pub links: Ordered<LinkDef>,
    /// The node whose rules are judged, and its uplinks.
    pub router: RouterDef,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a node: a mapping with `sysctls:`, `routes:` and `rules:`, or `{}` for none"
)]
pub struct NodeDef {
    /// `net.*` keys set inside the node, e.g. `net.ipv4.ip_forward: 1` or
    /// `net.ipv6.conf.all.forwarding: 1`; only keys each network namespace has its own copy of.
    #[serde(default)]
    pub sysctls: Ordered<Scalar>,
    /// Routes as `ip route add` takes them: `[-6] DST [via GW] [dev IF] [table N] [metric N]`;
    /// IPv6 when DST or GW is (`default via 2001:db8:1::254`) or with `-6` first.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Policy rules as `ip rule add` takes them: `[-6] [pref N] [not] [from P] [to P] [iif IF]
    /// [oif IF] [fwmark N[/M]]` then `lookup N|main`, `blackhole`, `prohibit` or `unreachable`;
    /// `ip -6 rule` ones when `from`/`to` are IPv6 or with `-6` first.
    #[serde(default)]
    pub rules: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a link: `{ a: NODE:IFACE ADDRESS/LEN, b: NODE:IFACE ADDRESS/LEN }`"
)]
pub struct LinkDef {
    /// One end: `NODE:IFACE` and zero or more `ADDRESS/LEN`, IPv4 or IPv6.
    pub a: String,
    /// The other end: `NODE:IFACE` and zero or more `ADDRESS/LEN`, IPv4 or IPv6.
    pub b: String,
    /// Both ends' MTU (default 1500): a smaller one on a path makes packets that do not fit
    /// draw ICMP "fragmentation needed" / ICMPv6 Packet Too Big.
    #[serde(default)]
    pub mtu: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "the router: a mapping with `node:` and `uplinks:`"
)]
pub struct RouterDef {
    /// The router under test: conntrack is read on this node.
    pub node: String,
    /// The links its balancing chooses between.
    pub uplinks: Vec<String>,
    /// Each uplink's weight, given to rule generators (default 1).
    #[serde(default)]
    pub weights: Ordered<u32>,
}

/// `topology:` in a scenario.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "`topology:` is a topology file name or `{ uplinks: N }` (the generated lab with N ISPs)"
)]
pub enum TopologyDef {
    File(String),
    Generated(GeneratedTopology),
}

/// `topology: { uplinks: N }`: saturn, jupiter with uplinks wan1…wanN, isp1…ispN, internet,
/// neptune.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratedTopology {
    /// How many ISPs (1 to 250).
    // Any integer is read, so that `-1` or `1000` is refused with the range, not serde's
    // "did not match any variant" (`untagged` hides what went wrong).
    #[schemars(with = "u32")]
    pub uplinks: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a scenario: a mapping with `topology:`, `rules:`, `traffic:` and `expect:`"
)]
pub struct Scenario {
    /// The topology file, relative to this file; or `{ uplinks: N }`, the generated lab of
    /// seed 002 with N ISPs.
    pub topology: TopologyDef,
    #[serde(default)]
    pub description: Option<String>,
    /// The rules to install, by node.
    #[serde(default)]
    pub rules: Ordered<NodeRulesDef>,
    /// The flows to drive; they are numbered from 1 across all entries, in order.
    #[serde(default)]
    pub traffic: Vec<TrafficDef>,
    /// Packets the harness builds and injects on a link.
    #[serde(default)]
    pub craft: Vec<CraftDef>,
    /// Links going down or up between traffic groups.
    #[serde(default)]
    pub events: Vec<EventDef>,
    /// What must hold: each has a `name`, a `flows` selector and one property.
    pub expect: Vec<ExpectDef>,
    /// Declares the rule set broken on purpose: which expectations must break.
    #[serde(default)]
    pub expect_failure: Option<ExpectFailureDef>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a node's rules: a mapping with `tables:` and `files:`"
)]
pub struct NodeRulesDef {
    /// Names for routing tables the rule files use, e.g. `rt_link1: 251`.
    #[serde(default)]
    pub tables: Ordered<u32>,
    /// Rule files, loaded in this order.
    pub files: Vec<RuleFileDef>,
}

/// `- iptables: FILE`, `- ip6tables: FILE`, `- nft: FILE`, `- ip: FILE`, `- ipset: FILE`,
/// `- sysctl: FILE` or `- generate: COMMAND` (with `as: KIND`) or `- install: COMMAND` or
/// `- daemon: COMMAND`: one file, generator, installer or daemon per entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule file: `iptables: FILE`, `ip6tables: FILE`, `nft: FILE`, `ip: FILE`, `ipset: FILE` or `sysctl: FILE`; or `generate: COMMAND`, `install: COMMAND`, `daemon: COMMAND`"
)]
pub struct RuleFileDef {
    /// An `iptables-restore` file.
    pub iptables: Option<String>,
    /// An `ip6tables-restore` file.
    pub ip6tables: Option<String>,
    /// An `nft -f` script.
    pub nft: Option<String>,
    /// `ip -batch` lines.
    pub ip: Option<String>,
    /// An `ipset restore` file.
    pub ipset: Option<String>,
    /// A sysctl.conf for `sysctl -p`.
    pub sysctl: Option<String>,
    /// A bundle: one file of sections headed `### iptables`, `### ip6tables`, `### nft`,
    /// `### ip`, `### ipset`, `### sysctl`, `### rt_tables`, each loaded by its tool in order.
    pub bundle: Option<String>,
    /// A generator command; `as:` says what it prints (default: a bundle with `### KIND` headers).
    pub generate: Option<String>,
    /// An installer command: run inside the node like a generator, it loads the rules itself
    /// (iptables-restore, ip6tables-restore, nft, ip, ipset, sysctl); the harness then reads
    /// back what it loaded.
    pub install: Option<String>,
    /// A daemon (a monitor): a command started inside the node once all of the node's rules
    /// are loaded and the lab is wired, given the facts as a generator is, and left running
    /// through the traffic; it is stopped (its whole process group) when the run ends.
    pub daemon: Option<String>,
    /// What the generator prints: `iptables`, `ip6tables`, `nft`, `ip`, `ipset` or `sysctl`.
    #[serde(rename = "as")]
    pub as_kind: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtoDef {
    Tcp,
    Udp,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a traffic entry: a mapping with `proto:`, `from:`, `to:`, `port:`"
)]
pub struct TrafficDef {
    /// A name expectations can select the flows by.
    pub name: Option<String>,
    /// `tcp`: one connection per flow; `udp`: one exchange per flow.
    pub proto: ProtoDef,
    /// The client's node.
    pub from: String,
    /// The server's node.
    pub to: String,
    /// The server's port.
    pub port: u16,
    /// The server's address, when the node has several (default: its first), or `each`: the
    /// flows take the node's addresses in turn.
    #[serde(default)]
    pub address: Option<String>,
    /// What the client connects to, when not the server's address (a WAN address that the
    /// router forwards): `ADDR` or `ADDR:PORT`.
    #[serde(default)]
    pub dial: Option<String>,
    /// The client's source address: one of its node's, `any` to let the kernel choose, or
    /// `each`: the flows take the node's addresses in turn (with `address: each`, every
    /// client/server pair once before any twice).
    #[serde(default)]
    pub from_address: Option<String>,
    /// How many flows.
    #[serde(default = "one")]
    pub flows: u32,
    /// Request/response pairs per flow.
    #[serde(default = "one")]
    pub round_trips: u32,
    /// The time a flow has for all its round trips, e.g. `1s` or `500ms` (default 1s).
    #[serde(default)]
    pub timeout: Option<String>,
    /// UDP: once done and closed, a late datagram from the server, answered by ICMP port
    /// unreachable: a RELATED packet of the flow.
    #[serde(default)]
    pub related_probe: bool,
    /// A pause between a flow's round trips, e.g. `50ms`: long-lived connections and streams
    /// (the default timeout then grows to cover them).
    #[serde(default)]
    pub interval: Option<String>,
    /// Start one flow every this long, e.g. `20ms` (default: each as soon as the previous
    /// one's first packet is out): new connections that keep coming across an event.
    #[serde(default)]
    pub pace: Option<String>,
    /// `ipv4` or `ipv6`: which of the nodes' addresses the flows use. Default: the family of
    /// the addresses written in `address`, `from_address` or `dial`, else `ipv4`.
    #[serde(default)]
    pub family: Option<FamilyDef>,
    /// TCP: bytes of padding in each request (default none). More than a link's MTU makes
    /// segments that do not fit: path MTU discovery (ICMP "fragmentation needed", ICMPv6
    /// Packet Too Big) must reach the client for the flow to complete.
    #[serde(default)]
    pub size: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum FamilyDef {
    Ipv4,
    Ipv6,
}

fn one() -> u32 {
    1
}

/// `flows:` in an expectation: `all`, `tcp`, `udp`, a traffic name, or a list of flow ids and
/// traffic names.
#[derive(Debug)]
pub enum SelectorDef {
    Name(String),
    List(Vec<SelectorItem>),
}

/// One item of a `flows:` list: a flow id, or a traffic name (its flows).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a flow number or a traffic name")]
pub enum SelectorItem {
    Id(u32),
    Name(String),
}

impl<'de> Deserialize<'de> for SelectorDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SelectorDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "`all`, `tcp`, `udp`, a traffic name, or a list of flow numbers and traffic names such as [1, 3] or [web, dns]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SelectorDef, E> {
                Ok(SelectorDef::Name(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<SelectorDef, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = s.next_element()? {
                    items.push(item);
                }
                Ok(SelectorDef::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an expectation: a mapping with `flows:` and one property such as `via:`"
)]
pub struct ExpectDef {
    /// The expectation's name (default: its property).
    pub name: Option<String>,
    /// Which flows (default `all`).
    pub flows: Option<SelectorDef>,
    /// `LINK`: every packet left on LINK and every reply came back on it; `none`: no packet
    /// crossed an uplink.
    pub via: Option<String>,
    /// The n-th selected flow left on `L(n mod len)` (nth balancing).
    pub sequence: Option<Vec<String>>,
    /// The source the server saw, by the uplink the flow left on: `{ LINK: ADDR }`, or
    /// `{ LINK: PREFIX }` for any address in it (NETMAP, NPTv6).
    pub source: Option<Ordered<String>>,
    /// The router's conntrack mark, by the uplink the flow left on: `{ LINK: N }`.
    pub mark: Option<Ordered<u32>>,
    /// All the flow's packets, both ways, crossed one and the same uplink.
    pub one_uplink: Option<bool>,
    /// The router itself sent the flow's packets out on LINK and no other uplink (or `none`).
    pub leaves_via: Option<String>,
    /// The selected flows split by these weights, by the uplink they left on: `{ L1: w1 }`.
    pub split: Option<Ordered<u32>>,
    /// What a `split` counts: `flow` (default), each flow by its uplink; `client`, each client
    /// address once, by the uplink its first selected flow left on (for sticky clients, whose
    /// later flows follow their first).
    pub per: Option<PerDef>,
    /// Every selected flow of one client (its source address on the LAN) left on one uplink.
    pub sticky: Option<bool>,
    /// Every round trip got its answer (`true`) or not (`false`).
    pub completes: Option<bool>,
    /// What became of each selected connection: `survives` (every round trip answered),
    /// `reset` (the client's connection was reset) or `dies` (it hung until its timeout).
    pub fate: Option<FateDef>,
    /// Only the selected flows that started after (or before) an event: `{ after: EVENT }`,
    /// `{ after: EVENT, later_than: 1s }` (at least that long after), `{ before: EVENT }`.
    pub started: Option<StartedDef>,
    /// Only the selected flows that were running when the event happened (started before
    /// it, ended after it).
    pub spanning: Option<String>,
}

/// `fate:` in an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FateDef {
    Survives,
    Reset,
    Dies,
}

/// `started:` in an expectation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "`{ after: EVENT }`, `{ after: EVENT, later_than: DURATION }` or `{ before: EVENT }`"
)]
pub struct StartedDef {
    pub after: Option<String>,
    pub before: Option<String>,
    /// With `after:`: at least this long after the event, e.g. `1s`.
    pub later_than: Option<String>,
}

/// `per:` in a split expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PerDef {
    Flow,
    Client,
}

/// `{ before: TRAFFIC, down: LINK }`, or during traffic: `{ name: wan1_dies, during: TRAFFIC,
/// at: 300ms, blackhole: wan1 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an event: `before: TRAFFIC` (or `during: TRAFFIC` with `at:` or `after_flows:`) and one change such as `down: LINK`"
)]
pub struct EventDef {
    /// A name expectations can refer to (`started: { after: NAME }`); default `event1`, ….
    pub name: Option<String>,
    /// The traffic entry the event comes before, once every earlier flow is done.
    pub before: Option<String>,
    /// The traffic entry during which the event happens: `at:` after it starts, or once
    /// `after_flows:` of its flows have started.
    pub during: Option<String>,
    /// With `during:`, the time after the traffic entry's first flow starts, e.g. `300ms`.
    pub at: Option<String>,
    /// With `during:`, the number of the entry's flows started before the event.
    pub after_flows: Option<u32>,
    /// The link to take down (its carrier).
    pub down: Option<String>,
    /// The link to bring up.
    pub up: Option<String>,
    /// A silent failure on this link: its end drops everything, carrier up.
    pub blackhole: Option<String>,
    /// Packet loss on this link, at its end: `percent:` of the packets, each way.
    pub loss: Option<String>,
    /// With `loss:`, the share of packets dropped, 1 to 99.
    pub percent: Option<u8>,
    /// The end of this link stops answering ARP and neighbour solicitations.
    pub deaf: Option<String>,
    /// The end of this link's blackhole, loss or deafness undone.
    pub heal: Option<String>,
    /// The end of the link that changes (default: the far end from the router).
    pub end: Option<String>,
}

/// `{ name, packet: echo-reply, link: wan2, from: isp2, src: ADDR, dst: ADDR, count: N }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a crafted packet: `packet:`, `link:`, `from:`, `src:`, `dst:`"
)]
pub struct CraftDef {
    pub name: Option<String>,
    /// The kind of packet: `echo-reply` (an ICMP echo reply no request went out for).
    pub packet: String,
    /// The link it is injected on.
    pub link: String,
    /// The end of the link it is sent from.
    pub from: String,
    /// Its source address.
    pub src: String,
    /// Its destination address.
    pub dst: String,
    /// How many.
    #[serde(default = "one")]
    pub count: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `reason:` and `breaks:`"
)]
pub struct ExpectFailureDef {
    /// Why the rule set is broken.
    pub reason: String,
    /// Exactly the expectations that must break.
    pub breaks: Vec<BreakDef>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a broken expectation: a mapping with `expectation:` and `flows:`"
)]
pub struct BreakDef {
    /// The expectation's name.
    pub expectation: String,
    /// Exactly the flows it must break for (default: some flows).
    #[serde(default)]
    pub flows: Option<Vec<u32>>,
}

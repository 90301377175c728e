//! The YAML files as written. Unknown keys are errors everywhere.

use std::fmt;
use std::marker::PhantomData;

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

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a topology: a mapping with `nodes:`, `links:` and `router:`"
)]
pub struct Topology {
    pub name: Option<String>,
    pub nodes: Ordered<NodeDef>,
    pub links: Ordered<LinkDef>,
    pub router: RouterDef,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a node: a mapping with `sysctls:`, `routes:` and `rules:`, or `{}` for none"
)]
pub struct NodeDef {
    #[serde(default)]
    pub sysctls: Ordered<Scalar>,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a link: `{ a: NODE:IFACE ADDRESS/LEN, b: NODE:IFACE ADDRESS/LEN }`"
)]
pub struct LinkDef {
    pub a: String,
    pub b: String,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "the router: a mapping with `node:` and `uplinks:`"
)]
pub struct RouterDef {
    pub node: String,
    pub uplinks: Vec<String>,
    #[serde(default)]
    pub weights: Ordered<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a scenario: a mapping with `topology:`, `rules:`, `traffic:` and `expect:`"
)]
pub struct Scenario {
    pub topology: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Ordered<NodeRulesDef>,
    #[serde(default)]
    pub traffic: Vec<TrafficDef>,
    /// Packets the harness builds and injects on a link.
    #[serde(default)]
    pub craft: Vec<CraftDef>,
    /// Links going down or up between traffic groups.
    #[serde(default)]
    pub events: Vec<EventDef>,
    pub expect: Vec<ExpectDef>,
    #[serde(default)]
    pub expect_failure: Option<ExpectFailureDef>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a node's rules: a mapping with `tables:` and `files:`"
)]
pub struct NodeRulesDef {
    #[serde(default)]
    pub tables: Ordered<u32>,
    pub files: Vec<RuleFileDef>,
}

/// `- iptables: FILE`, `- nft: FILE`, `- ip: FILE` or `- ipset: FILE`: exactly one key.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule file: `iptables: FILE`, `nft: FILE`, `ip: FILE`, `ipset: FILE` or `sysctl: FILE`"
)]
pub struct RuleFileDef {
    pub iptables: Option<String>,
    pub nft: Option<String>,
    pub ip: Option<String>,
    pub ipset: Option<String>,
    pub sysctl: Option<String>,
    /// A generator command; `as:` says what it prints (default: a bundle with `### KIND` headers).
    pub generate: Option<String>,
    #[serde(rename = "as")]
    pub as_kind: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoDef {
    Tcp,
    Udp,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a traffic entry: a mapping with `proto:`, `from:`, `to:`, `port:`"
)]
pub struct TrafficDef {
    pub name: Option<String>,
    pub proto: ProtoDef,
    pub from: String,
    pub to: String,
    pub port: u16,
    /// The server's address, when the node has several (default: its first).
    #[serde(default)]
    pub address: Option<String>,
    /// What the client connects to, when not the server's address (a WAN address that the
    /// router forwards): `ADDR` or `ADDR:PORT`.
    #[serde(default)]
    pub dial: Option<String>,
    /// The client's source address: one of its node's, or `any` to let the kernel choose.
    #[serde(default)]
    pub from_address: Option<String>,
    #[serde(default = "one")]
    pub flows: u32,
    #[serde(default = "one")]
    pub round_trips: u32,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub related_probe: bool,
}

fn one() -> u32 {
    1
}

/// `flows:` in an expectation: `all`, `tcp`, `udp`, a traffic name, or a list of flow ids.
#[derive(Debug)]
pub enum SelectorDef {
    Name(String),
    Ids(Vec<u32>),
}

impl<'de> Deserialize<'de> for SelectorDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SelectorDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "`all`, `tcp`, `udp`, a traffic name, or a list of flow numbers such as [1, 3]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SelectorDef, E> {
                Ok(SelectorDef::Name(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<SelectorDef, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = s.next_element()? {
                    ids.push(id);
                }
                Ok(SelectorDef::Ids(ids))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an expectation: a mapping with `flows:` and one property such as `via:`"
)]
pub struct ExpectDef {
    pub name: Option<String>,
    pub flows: Option<SelectorDef>,
    pub via: Option<String>,
    pub sequence: Option<Vec<String>>,
    pub source: Option<Ordered<String>>,
    pub mark: Option<Ordered<u32>>,
    pub one_uplink: Option<bool>,
    pub leaves_via: Option<String>,
    pub split: Option<Ordered<u32>>,
    pub completes: Option<bool>,
}

/// `{ before: TRAFFIC, down: LINK, end: NODE }` or `{ before: TRAFFIC, up: LINK, end: NODE }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an event: `before: TRAFFIC` and `down: LINK` or `up: LINK`"
)]
pub struct EventDef {
    pub before: String,
    pub down: Option<String>,
    pub up: Option<String>,
    pub end: Option<String>,
}

/// `{ name, packet: echo-reply, link: wan2, from: isp2, src: ADDR, dst: ADDR, count: N }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a crafted packet: `packet:`, `link:`, `from:`, `src:`, `dst:`"
)]
pub struct CraftDef {
    pub name: Option<String>,
    pub packet: String,
    pub link: String,
    pub from: String,
    pub src: String,
    pub dst: String,
    #[serde(default = "one")]
    pub count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `reason:` and `breaks:`"
)]
pub struct ExpectFailureDef {
    pub reason: String,
    pub breaks: Vec<BreakDef>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a broken expectation: a mapping with `expectation:` and `flows:`"
)]
pub struct BreakDef {
    pub expectation: String,
    #[serde(default)]
    pub flows: Option<Vec<u32>>,
}

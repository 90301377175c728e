//! Observations → each flow's path → expectations checked → [`Verdict`]. Pure, and wordless:
//! what was expected and what was seen, as data; `report` says it in words.
//!
//! * [`paths`]: a packet is recognised on every link by its flow's tuples (the client's own,
//!   the NAT mapping from the router's conntrack, and any tuple whose payload carries the flow
//!   id), and matched across links by its IP id, TCP sequence numbers, flags and length (NAT
//!   changes none of these). Where it died is where its last sighting led: the receiving node
//!   of a sighting that no other sighting of it leaves from. Each flow's hops are computed
//!   once, into its [`FlowPath`] and, when asked for, its [`PacketTrace`]s.
//! * [`checks`]: each expectation against each flow's path: a [`Finding`] per flow that broke it.
//! * [`declared`]: the one place that decides whether a declared-broken scenario broke as
//!   declared, expectation by expectation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use smol_str::SmolStr;

use crate::model::{ExpectedFailure, Fate, Plan, Proto};
use crate::observe::Observations;

pub mod checks;
pub mod compare;
pub mod declared;
pub mod paths;
pub mod stats;
#[cfg(test)]
mod tests;

pub use paths::Traces;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// client → server
    Out,
    /// server → client
    Back,
}

impl Dir {
    /// The other way.
    fn reversed(self) -> Dir {
        match self {
            Dir::Out => Dir::Back,
            Dir::Back => Dir::Out,
        }
    }
}

/// Where packets of a flow died, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DropSite {
    pub dir: Dir,
    /// The node that received them and sent them nowhere.
    pub node: String,
    /// The link they were last seen on.
    pub after_link: String,
    pub count: u32,
}

/// How a run of similar packets of a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// They reached the flow's other end: this node.
    Reached(SmolStr),
    /// They died at `node`, last seen on `link`.
    Died { node: SmolStr, link: SmolStr },
}

/// One line of a flow's story: packets that went the same way and met the same fate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub struct Step {
    pub dir: Dir,
    /// How many packets.
    pub count: u32,
    /// Their kinds (`SYN`, `data`, `ICMP port unreachable` …), in the order first seen.
    pub kinds: Vec<&'static str>,
    /// The uplink they crossed first, and the source address they had on it.
    pub uplink: Option<SmolStr>,
    pub source: Option<IpAddr>,
    pub end: End,
}

/// A flow's path through the lab, as observed.
///
/// Names are [`SmolStr`]s and story steps are shared ([`Arc`]) between the flows that take
/// them, so a hundred thousand paths stay small.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FlowPath {
    pub id: u32,
    pub group: SmolStr,
    pub proto: Proto,
    #[schemars(with = "String")]
    pub client: SocketAddr,
    /// Uplinks its packets left the router on, in order of first use.
    pub out: Vec<SmolStr>,
    /// Uplinks its replies came back on, in order of first use.
    pub back: Vec<SmolStr>,
    /// The source address the flow's first packet had on its uplink.
    pub first_out_source: Option<IpAddr>,
    /// Uplinks the router itself sent the flow's packets out on, either way.
    pub router_out: Vec<SmolStr>,
    /// The uplink its first packet left on: the router's choice for the flow.
    pub first_out: Option<SmolStr>,
    /// The source address the harness's server saw.
    pub source_seen: Option<IpAddr>,
    /// The router's conntrack mark for it.
    pub mark: Option<u32>,
    pub completed: bool,
    /// Why its client stopped, when it did not complete: `connect: no answer within 1s`.
    pub client_error: Option<String>,
    /// Whether its connection was refused or reset.
    pub reset: bool,
    /// A UDP stream whose answers stopped for a while but came back by its end.
    pub recovered: bool,
    /// When its first packet was sent and when its client was done, in ms since the captures
    /// started (flows the harness drove).
    pub started_ms: Option<f64>,
    pub ended_ms: Option<f64>,
    /// With a RELATED probe: whether an ICMP error of the flow was seen.
    pub related_seen: Option<bool>,
    /// Distinct packets seen, both ways (retransmissions count).
    pub packets: u32,
    pub drops: Vec<DropSite>,
    /// What its packets did, a step per run of similar packets.
    pub story: Vec<Arc<Step>>,
    /// Its packets hop by hop, when the run kept them ([`Traces`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<PacketTrace>>,
}

impl FlowPath {
    /// The uplink its first packet left on, or `no uplink`: what [`split_counts`] are keyed by.
    pub fn first_uplink(&self) -> &str {
        self.first_out.as_deref().unwrap_or("no uplink")
    }
    /// What became of it: every round trip answered (or, for a UDP stream, its last answered
    /// after a gap), reset, or hung until its client gave up.
    pub fn fate(&self) -> Fate {
        if self.completed || self.recovered {
            Fate::Survives
        } else if self.reset {
            Fate::Reset
        } else {
            Fate::Dies
        }
    }
}

/// One link a packet was seen on, with its addresses there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HopTrace {
    pub link: SmolStr,
    /// The node that sent it on the link, and the one it went to.
    pub from: SmolStr,
    pub to: SmolStr,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// Nanoseconds since the capture started (approximate across links).
    pub t_ns: u64,
}

/// One packet of a flow, hop by hop, as the captures saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PacketTrace {
    pub dir: Dir,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    /// `SYN`, `SYN-ACK`, `ACK`, `data`, `FIN`, `RST`, `datagram`, `ICMP port unreachable` …
    pub kind: &'static str,
    /// TCP flags as letters, `S`, `SA`, `PA`, `FA`, `R` (empty for UDP and ICMP).
    pub flags: String,
    pub payload_len: u16,
    /// Its sightings in path order: from the flow's end it left, each next one sent by the node
    /// the previous one reached.
    pub hops: Vec<HopTrace>,
    /// Where it died, when it did not reach the flow's other end: the node, and the link it
    /// was last seen on.
    pub died: Option<(SmolStr, SmolStr)>,
}

/// What a flow did instead of what an expectation wanted. Each says what was expected and
/// what was seen; `report::words` says it in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// `via: none`: its packets crossed uplinks.
    CrossedUplinks {
        out: Vec<SmolStr>,
        back: Vec<SmolStr>,
    },
    /// `via`: it left on other uplinks than the one expected (or on none).
    LeftVia {
        expected: SmolStr,
        out: Vec<SmolStr>,
    },
    /// `via`: it left on the uplink expected, but its replies came back on others.
    CameBackVia {
        expected: SmolStr,
        back: Vec<SmolStr>,
    },
    /// `sequence`: the n-th flow (1-based `position`) did not leave on the n-th uplink.
    OutOfSequence {
        expected: SmolStr,
        out: Option<SmolStr>,
        position: usize,
        sequence: Vec<String>,
    },
    /// `source` or `mark`: it left on no uplink, so there is nothing to compare.
    LeftOnNoUplink,
    /// `source` or `mark`: the expectation names no value for the uplink it left on.
    Unlisted { uplink: SmolStr, what: Listed },
    /// `source`: the server saw another source address.
    WrongSource {
        uplink: SmolStr,
        seen: IpAddr,
        expected: crate::model::Within,
    },
    /// `source`: the server saw nothing of it (it left with `sent`, when seen on the uplink).
    SourceUnseen {
        uplink: SmolStr,
        sent: Option<IpAddr>,
        expected: crate::model::Within,
    },
    /// `mark`: its conntrack entry had another mark.
    WrongMark {
        uplink: SmolStr,
        seen: u32,
        expected: u32,
    },
    /// `mark`: the router has no conntrack entry for it.
    NoConntrack { uplink: SmolStr, router: String },
    /// `one_uplink`: its RELATED probe drew no ICMP error on any link.
    RelatedUnanswered,
    /// `one_uplink`: its packets and replies crossed more than one uplink.
    SplitUplinks {
        out: Vec<SmolStr>,
        back: Vec<SmolStr>,
    },
    /// `one_uplink`: it crossed no uplink at all.
    CrossedNoUplink,
    /// `completes`: it did not complete; its client's error, when it recorded one.
    DidNotComplete { error: Option<String> },
    /// `completes: false`: it completed.
    Completed,
    /// `fate`: it became something else (with why its client stopped, if it did).
    WrongFate {
        expected: Fate,
        seen: Fate,
        error: Option<String>,
    },
    /// `leaves_via`: the router sent it out on other uplinks (`expected` none: on no uplink).
    RouterSentVia {
        router: String,
        out: Vec<SmolStr>,
        expected: Option<SmolStr>,
    },
    /// `sticky`: this flow of `client` left on `uplink`, not on the uplink its first selected
    /// flow (`first`) left on; `uplinks`: every uplink the client's selected flows left on,
    /// in order of first use, with those flows.
    ClientMoved {
        #[schemars(with = "String")]
        client: IpAddr,
        uplink: SmolStr,
        first: u32,
        first_uplink: SmolStr,
        uplinks: Vec<(SmolStr, Vec<u32>)>,
    },
}

/// What an expectation maps uplinks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Listed {
    Source,
    Mark,
}

/// One flow that broke an expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FlowFailure {
    pub flow: u32,
    #[serde(flatten)]
    pub finding: Finding,
    /// Where its packets died, when that explains the failure.
    pub drops: Vec<DropSite>,
}

/// How many flows left on one uplink, against what its weight gives.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SplitCount {
    /// The uplink (`no uplink` for flows that left on none).
    pub uplink: String,
    pub count: u64,
    /// The mean its weight gives, and the binomial interval the count must fall in; `None`:
    /// an uplink the expectation gives no weight, which must carry no flow.
    pub expected: Option<Bound>,
    pub inside: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Bound {
    pub mean: f64,
    pub low: u64,
    pub high: u64,
}

/// The flows of a `split` expectation, counted by the uplink each left on (with `per:
/// client`, the clients, by the uplink each one's first flow left on).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Split {
    pub flows: u64,
    /// With `per: client`: how many clients the counts count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<u64>,
    /// The weighted uplinks in the order written, then any other uplink flows took.
    pub counts: Vec<SplitCount>,
}

impl Split {
    pub fn held(&self) -> bool {
        self.counts.iter().all(|c| c.inside)
    }
}

/// Whether an expectation broke, and how that stands against the scenario's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Declared {
    /// The scenario declares nothing about it (or is not declared broken).
    No,
    /// Declared to break, and it broke as declared.
    BrokeAsDeclared,
    /// Declared to break, and it did not break as declared (it held, or broke for other flows).
    NotAsDeclared,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExpResult {
    pub name: String,
    /// The expectation as written: `sequence wan1, wan2, …`.
    pub check: String,
    pub selector: String,
    pub flows: Vec<u32>,
    pub failures: Vec<FlowFailure>,
    /// For an expectation on the flows together (a split): what was counted.
    pub split: Option<Split>,
    /// Whether the flows together broke it: a split outside its bound, or (`sticky`) a client
    /// whose flows took several uplinks (which of its flows moved depends on which went
    /// first, so the expectation broke as a whole; `failures` still name them), or (`vacant`)
    /// it had nothing to judge.
    pub broke_overall: bool,
    /// For an expectation on the flows that ran so against an event (`started:`,
    /// `spanning:`): why none was left to judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vacant: Option<Vacant>,
    /// Decided once, in [`declared`]: what its breaking means for the scenario.
    pub declared: Declared,
}

impl ExpResult {
    pub fn failed_flows(&self) -> Vec<u32> {
        self.failures.iter().map(|f| f.flow).collect()
    }
    pub fn broke(&self) -> bool {
        self.broke_overall || !self.failures.is_empty()
    }
    /// Whether this expectation judges its flows together, by statistics.
    pub fn statistical(&self) -> bool {
        self.split.is_some()
    }
}

/// Why an expectation on the flows that ran so against an event had none to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Vacant {
    /// The event never happened (the run ended first, or failed before it).
    EventMissed { event: String },
    /// No selected flow ran so (`started`: as the expectation says).
    NoFlow { started: String },
}

/// An event of the run and the figures around it: when it happened, and what became of the
/// connections running then, and of the new ones on the event's link after it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EventFigures {
    pub name: String,
    /// The link it changed.
    pub link: String,
    /// Whether it brought the link back (`up:`, `heal:`) rather than failing it.
    pub restores: bool,
    /// When the change was made, ms since the captures started.
    pub at_ms: f64,
    /// Connections running when it happened, by fate.
    pub spanning: FateCounts,
    /// Of the flows started after it: how many, and when the last one that left by the
    /// event's link started (ms after the event): how long new connections still used it.
    pub started_after: u32,
    pub last_on_link_ms: Option<f64>,
    /// When the first flow started after it that left by the event's link (ms after it): for
    /// a link brought back, how long until new connections used it again.
    pub first_on_link_ms: Option<f64>,
    /// When the first flow started after it that left by another uplink (ms after the event).
    pub first_elsewhere_ms: Option<f64>,
}

/// Connections by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FateCounts {
    pub survived: u32,
    pub reset: u32,
    pub died: u32,
}

/// Why a declared-broken scenario did not break as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// An expectation the declaration does not name broke (for `flows`; none: taken together).
    Undeclared {
        expectation: String,
        flows: Vec<u32>,
    },
    /// An expectation declared to break held.
    Held { expectation: String },
    /// An expectation declared to break for `declared` flows broke for `broke`.
    OtherFlows {
        expectation: String,
        declared: Vec<u32>,
        broke: Vec<u32>,
    },
}

impl Problem {
    /// The expectation it is about.
    pub fn expectation(&self) -> &str {
        match self {
            Problem::Undeclared { expectation, .. }
            | Problem::Held { expectation }
            | Problem::OtherFlows { expectation, .. } => expectation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "state", content = "problems", rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// Some expectation broke, and the scenario is not declared broken.
    Fail,
    /// A declared-broken scenario broke exactly as declared.
    BrokenAsDeclared,
    /// A declared-broken scenario did not break as declared: what differed.
    NotAsDeclared(Vec<Problem>),
}

impl Outcome {
    /// 0 when the scenario says what it should, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Pass | Outcome::BrokenAsDeclared => 0,
            Outcome::Fail | Outcome::NotAsDeclared(_) => 1,
        }
    }
    pub fn ok(&self) -> bool {
        self.exit_code() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Verdict {
    pub scenario: String,
    pub router: String,
    /// The events that happened during the run, when (ms since the captures started), and
    /// what became of the flows around them.
    pub events: Vec<EventFigures>,
    /// Whether an event was set to happen during traffic (`during:`), not only between groups.
    pub timed: bool,
    pub flows: Vec<FlowPath>,
    pub results: Vec<ExpResult>,
    pub declared: Option<ExpectedFailure>,
    pub outcome: Outcome,
}

impl Verdict {
    /// Flows whose row depends on when they ran against an event during traffic: every flow
    /// of the run once an event happened during a traffic group (its flows, and those running
    /// alongside, met the change at a time that varies from run to run).
    pub fn timed_flows(&self) -> BTreeSet<u32> {
        if self.events.is_empty() || !self.timed {
            return BTreeSet::new();
        }
        self.flows.iter().map(|f| f.id).collect()
    }

    /// Flows judged together by a statistical expectation: which uplink each took varies from
    /// run to run, only their split counts.
    pub fn statistical_flows(&self) -> BTreeSet<u32> {
        self.results
            .iter()
            .filter(|r| r.statistical())
            .flat_map(|r| r.flows.iter().copied())
            .collect()
    }

    /// The path of flow `id`.
    pub fn flow(&self, id: u32) -> Option<&FlowPath> {
        match self.flows.binary_search_by_key(&id, |f| f.id) {
            Ok(k) => Some(&self.flows[k]),
            Err(_) => self.flows.iter().find(|f| f.id == id),
        }
    }

    /// The expectations flow `id` broke.
    pub fn broken_by(&self, id: u32) -> impl Iterator<Item = &ExpResult> {
        self.results
            .iter()
            .filter(move |r| r.failures.iter().any(|x| x.flow == id))
    }

    /// Whether every expectation flow `id` broke broke as declared (and it broke one).
    pub fn broken_as_declared(&self, id: u32) -> bool {
        let mut broke = self.broken_by(id).peekable();
        broke.peek().is_some() && broke.all(|r| r.declared == Declared::BrokeAsDeclared)
    }
}

/// Judges a run.
pub fn judge(plan: &Plan, obs: &Observations) -> Verdict {
    judge_with(plan, obs, &Traces::None)
}

/// Judges a run, keeping the hop-by-hop packets of the flows `traces` names.
pub fn judge_with(plan: &Plan, obs: &Observations, traces: &Traces) -> Verdict {
    let flows = paths::paths(plan, obs, traces);
    let by_id: BTreeMap<u32, &FlowPath> = flows.iter().map(|f| (f.id, f)).collect();
    let mut results: Vec<ExpResult> = plan
        .expectations
        .iter()
        .map(|e| checks::check(e, &by_id, &plan.topology.router.node, &obs.events))
        .collect();
    let events = checks::event_figures(plan, &flows, &obs.events);
    let outcome = declared::decide(&mut results, plan.expected_failure.as_ref());
    Verdict {
        scenario: plan.name.clone(),
        router: plan.topology.router.node.clone(),
        events,
        timed: plan
            .events
            .iter()
            .any(|e| !matches!(e.when, crate::model::When::Before(_))),
        flows,
        results,
        declared: plan.expected_failure.clone(),
        outcome,
    }
}

/// Flows that gave up waiting (`gave_up`) though the captures saw none of their packets, not
/// even on the client's own link: the client's kernel sent them, so the lab lost them before
/// the rules could act (a client on the router itself is left out: its own rules can keep its
/// packets in). A verdict on such a flow would rest on nothing seen.
pub fn unseen(plan: &Plan, verdict: &Verdict, gave_up: &BTreeSet<u32>) -> Vec<u32> {
    let clients: BTreeMap<u32, &str> = plan
        .flows
        .iter()
        .map(|f| (f.id, f.client_node.as_str()))
        .collect();
    verdict
        .flows
        .iter()
        .filter(|p| p.packets == 0 && gave_up.contains(&p.id))
        .filter(|p| clients.get(&p.id).is_some_and(|c| *c != verdict.router))
        .map(|p| p.id)
        .collect()
}

/// How many of `flows` left on each uplink (`no uplink` for those that left on none).
pub fn split_counts<'a>(flows: impl IntoIterator<Item = &'a FlowPath>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry(f.first_uplink().to_string()).or_insert(0) += 1;
    }
    m
}

//! The judge on synthetic observations over the real Jupiter topology (no privileges).

use std::net::{Ipv4Addr, SocketAddrV4};

use rstest::rstest;

use super::*;
use crate::model::{self, repo_path, Break, Check, ExpectedFailure};
use crate::observe::packet::{ACK, SYN};
use crate::observe::{ClientOutcome, CtEntry, Observations, Packet, Sighting, Tuple};
use crate::report::words;

fn plan() -> Plan {
    model::load(&repo_path("scenarios/dual-isp.yaml")).expect("dual-isp.yaml is valid")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const SATURN: &str = "192.168.157.3";
const NEPTUNE: &str = "172.16.1.100";

/// Builds the sightings of packets crossing named links.
struct Obs<'a> {
    plan: &'a Plan,
    obs: Observations,
    /// Sightings in the order they were made up, packed into `obs` by [`Obs::observed`].
    seen: Vec<Sighting>,
    t: u64,
}

impl<'a> Obs<'a> {
    fn new(plan: &'a Plan) -> Self {
        Obs {
            plan,
            obs: Observations::default(),
            seen: Vec::new(),
            t: 0,
        }
    }

    /// What the judge gets: everything made up so far.
    fn observed(&self) -> Observations {
        Observations {
            sightings: self.seen.clone().into(),
            ..self.obs.clone()
        }
    }

    /// One packet crossing `links` in order; `towards_b` per link says which end sent it.
    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        links: &[(&str, bool)],
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        ip_id: u16,
        flags: u8,
        len: u16,
    ) {
        // Beyond the LAN, Saturn's packets carry the source NAT of the uplink they took.
        let nat = if links.iter().any(|(l, _)| *l == "wan2" || *l == "peer2") {
            "10.37.2.253"
        } else {
            "10.37.1.253"
        };
        for (name, towards_b) in links {
            let i = self
                .plan
                .topology
                .links
                .iter()
                .position(|l| l.name == *name)
                .expect("link");
            let src = if src == SATURN && *name != "lan" {
                nat
            } else {
                src
            };
            self.t += 1;
            let pkt = Packet {
                src: ip(src).into(),
                dst: ip(dst).into(),
                proto: 6,
                sport,
                dport,
                ip_id,
                seq: 100,
                ack: 0,
                flags,
                payload_len: len,
                // Data carries the flow id, as the harness's payloads do.
                tag: (len > 0 && sport > 40000).then(|| crate::observe::packet::Tag {
                    flow: (sport - 40000) as u32,
                    request: true,
                }),
                icmp: None,
                inner: None,
            };
            self.seen.push(Sighting {
                link: i,
                seq: self.t as u32,
                t_ns: self.t,
                from_a: *towards_b,
                pkt,
            });
        }
    }

    /// Flow `id` from Saturn to Neptune:80 through `uplink`, answered and completed.
    fn good_flow(&mut self, id: u32, uplink: &str, mark: u32) {
        let port = model::client_port(id);
        let (wan, peer, nat) = if uplink == "wan1" {
            ("wan1", "peer1", "10.37.1.253")
        } else {
            ("wan2", "peer2", "10.37.2.253")
        };
        let out = [("lan", true), (wan, true), (peer, true), ("dc", true)];
        let back = [("dc", false), (peer, false), (wan, false), ("lan", false)];
        self.packet(&out, SATURN, port, NEPTUNE, 80, 1, SYN, 0);
        // Replies go to the NAT address beyond the router and to Saturn on the LAN.
        for (name, towards_b) in back {
            let dst = if name == "lan" { SATURN } else { nat };
            self.packet(
                &[(name, towards_b)],
                NEPTUNE,
                80,
                dst,
                port,
                0,
                SYN | ACK,
                0,
            );
        }
        self.packet(&out, SATURN, port, NEPTUNE, 80, 2, ACK, 8);
        self.ct(id, nat, mark);
        self.obs.clients.insert(
            id,
            ClientOutcome {
                round_trips_done: 5,
                completed: true,
                error: None,
                reset: false,
                recovered: false,
            },
        );
        self.obs.server_saw.insert(id, ip(nat).into());
    }

    fn ct(&mut self, id: u32, nat: &str, mark: u32) {
        let port = model::client_port(id);
        self.obs.conntrack.push(CtEntry {
            orig: Tuple {
                proto: 6,
                src: ip(SATURN).into(),
                sport: port,
                dst: ip(NEPTUNE).into(),
                dport: 80,
            },
            reply: Tuple {
                proto: 6,
                src: ip(NEPTUNE).into(),
                sport: 80,
                dst: ip(nat).into(),
                dport: port,
            },
            mark,
        });
    }
}

/// Only the TCP flows of the plan, so tests need not invent the UDP ones.
fn tcp_plan() -> Plan {
    let mut p = plan();
    p.flows.retain(|f| f.proto == Proto::Tcp);
    p.expectations.retain(|e| e.name != "udp_default");
    for e in &mut p.expectations {
        e.flows.retain(|id| *id <= 8);
    }
    p
}

fn alternating(p: &Plan) -> Obs<'_> {
    let mut o = Obs::new(p);
    for id in 1..=8 {
        let (l, m) = if id % 2 == 1 {
            ("wan1", 1)
        } else {
            ("wan2", 2)
        };
        o.good_flow(id, l, m);
    }
    o
}

#[test]
fn a_clean_run_passes_with_paths_marks_and_sources() {
    let p = tcp_plan();
    let v = judge(&p, &alternating(&p).observed());
    assert_eq!(v.outcome, Outcome::Pass, "{:#?}", v.results);
    let f2 = &v.flows[1];
    assert_eq!(
        (f2.out.clone(), f2.back.clone(), f2.first_out.as_deref()),
        (
            vec![SmolStr::from("wan2")],
            vec![SmolStr::from("wan2")],
            Some("wan2")
        )
    );
    assert_eq!(
        (f2.mark, f2.source_seen, f2.packets),
        (Some(2), Some(ip("10.37.2.253").into()), 3)
    );
    assert!(f2.drops.is_empty());
}

#[test]
fn a_flow_whose_later_packets_stray_is_split_and_dies_at_the_isp() {
    let p = tcp_plan();
    // Flow 2: its ACK leaves via wan1 with the wan2 source and dies at isp1. Its capture
    // thread stamped it before the SYN's sighting on wan2: the judge must still see the SYN
    // first, by the order on the LAN link where both started.
    let mut o = stray_ack(&p);
    o.obs.clients.insert(
        2,
        ClientOutcome {
            round_trips_done: 0,
            completed: false,
            error: Some("round trip 1 of 5: no answer within 1s".into()),
            reset: false,
            recovered: false,
        },
    );
    o.obs.server_saw.remove(&2);

    let v = judge(&p, &o.observed());
    let f2 = &v.flows[1];
    assert_eq!(f2.out, ["wan2", "wan1"], "{:#?}", f2.story);
    assert_eq!(f2.first_out.as_deref(), Some("wan2"));
    assert_eq!(
        f2.drops,
        [DropSite {
            dir: Dir::Out,
            node: "isp1".into(),
            after_link: "wan1".into(),
            count: 1
        }]
    );
    let broke: Vec<(&str, Vec<u32>)> = v
        .results
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| (r.name.as_str(), r.failed_flows()))
        .collect();
    assert_eq!(
        broke,
        [
            ("one_uplink", vec![2]),
            ("snat", vec![2]),
            ("completes", vec![2])
        ]
    );
    let msg = &words::finding(
        &v,
        &v.results
            .iter()
            .find(|r| r.name == "one_uplink")
            .unwrap()
            .failures[0],
    );
    assert!(
        msg.contains("left via wan1 with source 10.37.2.253, died at isp1"),
        "{msg}"
    );
    assert_eq!(v.outcome, Outcome::Fail);
}

#[test]
fn a_translated_syn_is_its_flows_when_the_kernel_deleted_the_conntrack_entry() {
    let p = tcp_plan();
    // Flow 2 masqueraded via wan2; then its ACK, unmarked, is routed to wan1: MASQUERADE
    // drops it and deletes the conntrack entry, and the data starts a new entry, masqueraded
    // via wan1. The table read at the end holds neither, and the wan2 SYN has no payload:
    // it is still flow 2's, by its client port and what it dials.
    let mut o = alternating(&p);
    let port = model::client_port(2);
    o.seen
        .retain(|s| !(s.pkt.sport == port && s.pkt.flags == ACK));
    o.obs.conntrack.retain(|c| c.orig.sport != port);
    o.packet(
        &[("lan", true), ("wan1", true), ("peer1", true), ("dc", true)],
        SATURN,
        port,
        NEPTUNE,
        80,
        2,
        ACK,
        8,
    );
    let v = judge(&p, &o.observed());
    let f2 = v.flow(2).unwrap();
    assert_eq!(f2.out, ["wan2", "wan1"], "{:#?}", f2.story);
    assert_eq!(f2.back, ["wan2"], "{:#?}", f2.story);
    assert_eq!(f2.first_out.as_deref(), Some("wan2"));
    assert_eq!(f2.mark, None);
    // The other flows keep what was theirs.
    assert_eq!(v.flow(4).unwrap().out, ["wan2"]);
    assert_eq!(v.flow(3).unwrap().out, ["wan1"]);
}

#[test]
fn a_flow_translated_statelessly_before_any_data_is_followed_by_its_ports() {
    let p = tcp_plan();
    // Flow 2: a translation conntrack does not show (stateless, as NPTv6) gives its SYN the
    // wan2 source beyond the LAN; the SYN-ACK comes back to that address and dies at Jupiter.
    // No entry, no data: only the server's end and the client's port name the flow.
    let mut o = Obs::new(&p);
    for id in [1, 3, 4, 5, 6, 7, 8] {
        let (l, m) = if id % 2 == 1 {
            ("wan1", 1)
        } else {
            ("wan2", 2)
        };
        o.good_flow(id, l, m);
    }
    let port = model::client_port(2);
    let out = [("lan", true), ("wan2", true), ("peer2", true), ("dc", true)];
    o.packet(&out, SATURN, port, NEPTUNE, 80, 1, SYN, 0);
    for (name, towards_b) in [("dc", false), ("peer2", false), ("wan2", false)] {
        o.packet(
            &[(name, towards_b)],
            NEPTUNE,
            80,
            "10.37.2.253",
            port,
            0,
            SYN | ACK,
            0,
        );
    }
    o.obs.clients.insert(
        2,
        ClientOutcome {
            round_trips_done: 0,
            completed: false,
            error: Some("connect: no answer within 1s".into()),
            reset: false,
            recovered: false,
        },
    );
    let v = judge(&p, &o.observed());
    let f2 = &v.flows[1];
    assert_eq!(f2.out, ["wan2"], "{:#?}", f2.story);
    assert_eq!(f2.back, ["wan2"], "{:#?}", f2.story);
    assert_eq!(f2.first_out_source, Some(ip("10.37.2.253").into()));
    assert_eq!(
        f2.drops,
        [DropSite {
            dir: Dir::Back,
            node: "jupiter".into(),
            after_link: "wan2".into(),
            count: 1
        }]
    );
    // Its two packets, SYN and SYN-ACK; the other flows keep their own three.
    assert_eq!(f2.packets, 2);
    assert!(v.flows.iter().filter(|f| f.id != 2).all(|f| f.packets == 3));
}

/// Flow 2 of `alternating` with its ACK sent out via wan1 (wan2's source), dying at isp1.
fn stray_ack(p: &Plan) -> Obs<'_> {
    let mut o = alternating(p);
    let port = model::client_port(2);
    o.seen
        .retain(|s| !(s.pkt.sport == port && s.pkt.flags == ACK));
    o.packet(&[("lan", true)], SATURN, port, NEPTUNE, 80, 2, ACK, 8);
    let i = p
        .topology
        .links
        .iter()
        .position(|l| l.name == "wan1")
        .unwrap();
    let mut stray = o.seen.last().unwrap().clone();
    stray.link = i;
    stray.from_a = true;
    stray.pkt.src = ip("10.37.2.253").into();
    stray.t_ns = 0;
    o.seen.push(stray);
    o
}

#[test]
fn traces_give_each_packet_hop_by_hop_with_its_addresses_and_where_it_died() {
    let p = tcp_plan();
    let o = stray_ack(&p);
    let v = judge_with(&p, &o.observed(), &Traces::All);
    assert_eq!(v.flows.iter().filter(|f| f.trace.is_some()).count(), 8);
    let t = v.flow(2).unwrap().trace.as_ref().unwrap();
    let only = judge_with(&p, &o.observed(), &Traces::Only([2].into()));
    assert_eq!(
        only.flows
            .iter()
            .filter_map(|f| f.trace.as_ref().map(|t| (f.id, t)))
            .collect::<Vec<_>>(),
        [(2, t)],
        "a flow's trace is the same however many are kept"
    );
    let hops = |k: usize| -> Vec<(&str, &str, &str, String)> {
        t[k].hops
            .iter()
            .map(|h| {
                (
                    h.link.as_str(),
                    h.from.as_str(),
                    h.to.as_str(),
                    format!("{}:{} > {}:{}", h.src, h.sport, h.dst, h.dport),
                )
            })
            .collect()
    };
    // The SYN, in path order from Saturn, NATed beyond the router.
    assert_eq!(
        (t[0].dir, t[0].kind, t[0].flags.as_str()),
        (Dir::Out, "SYN", "S")
    );
    assert_eq!(
        hops(0),
        [
            (
                "lan",
                "saturn",
                "jupiter",
                "192.168.157.3:40002 > 172.16.1.100:80".into()
            ),
            (
                "wan2",
                "jupiter",
                "isp2",
                "10.37.2.253:40002 > 172.16.1.100:80".into()
            ),
            (
                "peer2",
                "isp2",
                "internet",
                "10.37.2.253:40002 > 172.16.1.100:80".into()
            ),
            (
                "dc",
                "internet",
                "neptune",
                "10.37.2.253:40002 > 172.16.1.100:80".into()
            ),
        ]
    );
    assert_eq!(t[0].died, None);
    assert_eq!((t[1].dir, t[1].kind), (Dir::Back, "SYN-ACK"));
    assert_eq!(hops(1)[0].0, "dc");
    // The stray ACK: seen on lan, then on wan1 with wan2's source, and no further.
    assert_eq!((t[2].kind, t[2].payload_len), ("data", 8));
    assert_eq!(
        hops(2),
        [
            (
                "lan",
                "saturn",
                "jupiter",
                "192.168.157.3:40002 > 172.16.1.100:80".into()
            ),
            (
                "wan1",
                "jupiter",
                "isp1",
                "10.37.2.253:40002 > 172.16.1.100:80".into()
            ),
        ]
    );
    assert_eq!(t[2].died, Some(("isp1".into(), "wan1".into())));
    // The same reading of the captures as the judge's.
    let v = judge(&p, &o.observed());
    assert_eq!(v.flows[1].packets as usize, t.len());
}

#[test]
fn the_sequence_names_the_position_and_the_link_taken() {
    let p = tcp_plan();
    let mut o = Obs::new(&p);
    for id in 1..=8 {
        o.good_flow(
            id,
            if id == 3 {
                "wan2"
            } else if id % 2 == 1 {
                "wan1"
            } else {
                "wan2"
            },
            if id % 2 == 1 && id != 3 { 1 } else { 2 },
        );
    }
    let v = judge(&p, &o.observed());
    let seq = v.results.iter().find(|r| r.name == "alternates").unwrap();
    assert_eq!(seq.failed_flows(), [3]);
    assert_eq!(
        words::finding(&v, &seq.failures[0]),
        "left via wan2, expected wan1 (it is number 3 in the sequence wan1, wan2, …)"
    );
    let marks = v.results.iter().find(|r| r.name == "marks").unwrap();
    assert!(
        marks.failures.is_empty(),
        "a wan2 flow with mark 2 meets `marks`"
    );
}

#[test]
fn a_wrong_mark_and_a_missing_conntrack_entry_are_named() {
    let p = tcp_plan();
    let mut o = alternating(&p);
    o.obs
        .conntrack
        .retain(|c| c.orig.sport != model::client_port(1));
    o.obs
        .conntrack
        .iter_mut()
        .find(|c| c.orig.sport == model::client_port(2))
        .unwrap()
        .mark = 0;
    let v = judge(&p, &o.observed());
    let marks = v.results.iter().find(|r| r.name == "marks").unwrap();
    let msgs: Vec<String> = marks
        .failures
        .iter()
        .map(|f| words::finding(&v, f))
        .collect();
    assert_eq!(
        msgs,
        [
            "left via wan1, but jupiter has no conntrack entry for it",
            "left via wan2 with conntrack mark 0, expected 2"
        ]
    );
}

fn result(name: &str, failed: &[u32]) -> ExpResult {
    ExpResult {
        name: name.into(),
        check: String::new(),
        selector: "all".into(),
        flows: (1..=8).collect(),
        failures: failed
            .iter()
            .map(|f| FlowFailure {
                flow: *f,
                finding: Finding::Completed,
                drops: Vec::new(),
            })
            .collect(),
        split: None,
        broke_overall: false,
        declared: Declared::No,
        vacant: None,
    }
}

/// (expectation, flows it must break for)
type Decl<'a> = &'a [(&'a str, Option<&'a [u32]>)];

fn declared(breaks: Decl) -> ExpectedFailure {
    ExpectedFailure {
        reason: "test".into(),
        breaks: breaks
            .iter()
            .map(|(e, f)| Break {
                expectation: e.to_string(),
                flows: f.map(|f| f.to_vec()),
            })
            .collect(),
    }
}

#[rstest]
#[case::held(&[], None, true)]
#[case::broke(&[2], None, false)]
#[case::broke_as_declared(&[2, 4], Some(&[("one_uplink", Some(&[2u32, 4][..]))][..]), true)]
#[case::any_flows_allowed(&[2, 4], Some(&[("one_uplink", None)][..]), true)]
#[case::declared_but_held(&[], Some(&[("one_uplink", None)][..]), false)]
#[case::other_flows_broke(&[2], Some(&[("one_uplink", Some(&[2u32, 4][..]))][..]), false)]
#[case::undeclared_expectation_broke(&[2], Some(&[("completes", None)][..]), false)]
fn outcomes(#[case] failed: &[u32], #[case] decl: Option<Decl>, #[case] ok: bool) {
    let mut results = vec![result("one_uplink", failed), result("completes", &[])];
    let decl = decl.map(declared);
    let o = declared::decide(&mut results, decl.as_ref());
    assert_eq!(o.ok(), ok, "{o:?}");
}

/// A flow whose client gave up with not one of its packets seen, not even on the LAN, rests
/// on nothing seen: the lab's fault (exit 2), never a verdict. A flow whose packets were seen
/// and died is a verdict; so is one whose client got an error at once (it never gave up).
#[test]
fn a_flow_seen_nowhere_is_the_labs_fault_not_a_verdict() {
    let p = tcp_plan();
    let o = alternating(&p);
    // Every flow seen: none is the lab's fault, whoever gave up.
    let v_all = judge(&p, &o.observed());
    assert!(
        unseen(&p, &v_all, &BTreeSet::from([3])).is_empty(),
        "flow 3 was seen"
    );
    let mut bare = Obs::new(&p);
    for id in [1, 2, 4, 5, 6, 7, 8] {
        let (l, m) = if id % 2 == 1 {
            ("wan1", 1)
        } else {
            ("wan2", 2)
        };
        bare.good_flow(id, l, m);
    }
    bare.obs.clients.insert(
        3,
        ClientOutcome {
            round_trips_done: 0,
            completed: false,
            error: Some("connect: no answer within 1s".into()),
            reset: false,
            recovered: false,
        },
    );
    let v = judge(&p, &bare.observed());
    assert_eq!(
        v.outcome,
        Outcome::Fail,
        "judged alone, flow 3 breaks expectations"
    );
    let gave_up = BTreeSet::from([3]);
    assert_eq!(unseen(&p, &v, &gave_up), [3]);
    // The same flow with an error at once (EPERM from its own rules, say) did not give up.
    assert!(unseen(&p, &v, &BTreeSet::new()).is_empty());
    // A flow that was seen and died is judged.
    let stray = stray_ack(&p);
    let v = judge(&p, &stray.observed());
    assert!(unseen(&p, &v, &BTreeSet::from([2])).is_empty());
}

/// A flow from `client` (port by flow id) that left and came back on `uplink`.
fn path_from(id: u32, client: &str, uplink: &str) -> FlowPath {
    FlowPath {
        id,
        group: "web".into(),
        proto: Proto::Tcp,
        client: SocketAddrV4::new(ip(client), model::client_port(id)).into(),
        out: vec![uplink.into()],
        back: vec![uplink.into()],
        first_out_source: None,
        router_out: Vec::new(),
        first_out: Some(uplink.into()),
        source_seen: None,
        mark: None,
        completed: true,
        client_error: None,
        related_seen: None,
        packets: 4,
        drops: Vec::new(),
        story: Vec::new(),
        trace: None,
        reset: false,
        recovered: false,
        started_ms: None,
        ended_ms: None,
    }
}

/// Checks `check` on `paths` (flows 1…n) and words the result as a verdict would.
fn judge_paths(check: Check, paths: Vec<FlowPath>) -> Verdict {
    let e = model::Expectation {
        name: "sticky".into(),
        selector: "all".into(),
        flows: paths.iter().map(|p| p.id).collect(),
        check,
        started: None,
    };
    let by_id: BTreeMap<u32, &FlowPath> = paths.iter().map(|p| (p.id, p)).collect();
    let mut results = vec![checks::check(&e, &by_id, "jupiter", &[])];
    let outcome = declared::decide(&mut results, None);
    Verdict {
        scenario: "sticky".into(),
        router: "jupiter".into(),
        flows: paths,
        results,
        declared: None,
        outcome,
        events: Vec::new(),
        timed: false,
    }
}

const A: &str = "192.168.157.100";
const B: &str = "192.168.157.101";

/// Two clients, their flows interleaved as `from_address: each` starts them: A on wan1, B on
/// wan2, every flow of each on its first's uplink.
fn sticky_paths() -> Vec<FlowPath> {
    (1..=6)
        .map(|id| {
            if id % 2 == 1 {
                path_from(id, A, "wan1")
            } else {
                path_from(id, B, "wan2")
            }
        })
        .collect()
}

#[test]
fn sticky_holds_when_each_client_keeps_one_uplink_whichever_it_is() {
    let v = judge_paths(Check::Sticky, sticky_paths());
    assert_eq!(v.outcome, Outcome::Pass, "{:#?}", v.results);
    assert_eq!(words::observed(&v, "sticky"), "");
}

#[test]
fn sticky_names_each_flow_that_left_the_uplink_of_its_clients_first_flow() {
    let mut paths = sticky_paths();
    // Client B's flow 4 on wan1; client A's flow 5 on wan2: the flows that moved, not the
    // client's first (which took the uplink the others should have followed).
    paths[3] = path_from(4, B, "wan1");
    paths[4] = path_from(5, A, "wan2");
    let v = judge_paths(Check::Sticky, paths);
    assert_eq!(v.outcome, Outcome::Fail);
    let r = &v.results[0];
    assert!(r.broke_overall, "judged on the flows together");
    assert_eq!(r.failed_flows(), [4, 5]);
    assert_eq!(
        r.failures[0].finding,
        Finding::ClientMoved {
            client: ip(B).into(),
            uplink: "wan1".into(),
            first: 2,
            first_uplink: "wan2".into(),
            uplinks: vec![("wan2".into(), vec![2, 6]), ("wan1".into(), vec![4])],
        }
    );
    let msg = words::finding(&v, &r.failures[1]);
    assert!(
        msg.starts_with(
            "left via wan2, but client 192.168.157.100's first flow, 1, left via wan1 (its flows: wan1 2: 1, 3; wan2 1: 5)"
        ),
        "{msg}"
    );
    assert!(
        words::observed(&v, "sticky")
            .starts_with("2 of 2 clients moved between uplinks (192.168.157.100, 192.168.157.101): a sticky rule"),
        "{}",
        words::observed(&v, "sticky")
    );
    assert_eq!(
        crate::report::snapshot(&v)
            .lines()
            .find(|l| l.starts_with("sticky:")),
        Some("sticky: each client's flows on one uplink (sticky) [flows all]: BROKE"),
        "the snapshot does not name flows that vary from run to run"
    );
}

#[test]
fn sticky_counts_a_flow_on_no_uplink_as_a_move() {
    let mut paths = sticky_paths();
    paths[2].first_out = None;
    let v = judge_paths(Check::Sticky, paths);
    assert_eq!(v.results[0].failed_flows(), [3]);
    assert!(words::finding(&v, &v.results[0].failures[0]).starts_with("left via no uplink, but"));
}

/// `per: client` counts each client once, by its first flow's uplink: ten clients with five
/// flows each on wan1 against ten clients with one flow each on wan2 is 10 : 10, not 50 : 10.
#[test]
fn a_split_per_client_counts_clients_by_their_first_uplink() {
    let mut paths = Vec::new();
    let mut id = 0;
    for c in 0..20u32 {
        let client = format!("192.168.157.{}", 100 + c);
        let (uplink, n) = if c < 10 { ("wan1", 5) } else { ("wan2", 1) };
        for _ in 0..n {
            id += 1;
            paths.push(path_from(id, &client, uplink));
        }
    }
    let w = vec![("wan1".to_string(), 1), ("wan2".to_string(), 1)];
    let per_flow = judge_paths(Check::Split(w.clone()), paths.clone());
    assert!(per_flow.results[0].broke_overall, "60 flows, 50 : 10");
    let v = judge_paths(Check::SplitPerClient(w), paths);
    let s = v.results[0].split.as_ref().unwrap();
    assert_eq!((s.flows, s.clients), (60, Some(20)));
    assert_eq!(
        s.counts.iter().map(|c| c.count).collect::<Vec<_>>(),
        [10, 10]
    );
    assert_eq!(v.outcome, Outcome::Pass);
    assert!(
        words::split(s).starts_with(
            "20 clients (60 flows), each by the uplink its first flow left on: wan1 10 (expected 10, "
        ),
        "{}",
        words::split(s)
    );
}

/// `harness diff` on a split per client compares the clients' first uplinks: 20 clients on
/// the same uplinks both times, whose later flows (which follow the first) number 5 on wan1
/// one time and 5 on wan2 the other, did not change; a flow split over the same flows did.
#[test]
fn diff_compares_a_split_per_client_by_clients() {
    let run = |heavy: &str| {
        let mut paths = Vec::new();
        let mut id = 0;
        for c in 0..20u32 {
            let client = format!("192.168.157.{}", 100 + c);
            let uplink = if c < 10 { "wan1" } else { "wan2" };
            let n = if uplink == heavy { 5 } else { 1 };
            for _ in 0..n {
                id += 1;
                paths.push(path_from(id, &client, uplink));
            }
        }
        paths
    };
    let w = vec![("wan1".to_string(), 1), ("wan2".to_string(), 1)];
    let (a, b) = (run("wan1"), run("wan2"));
    let per_client = compare::compare(
        &judge_paths(Check::SplitPerClient(w.clone()), a.clone()),
        &judge_paths(Check::SplitPerClient(w.clone()), b.clone()),
    );
    assert!(per_client.splits.is_empty(), "{:?}", per_client.splits);
    let per_flow = compare::compare(
        &judge_paths(Check::Split(w.clone()), a),
        &judge_paths(Check::Split(w), b),
    );
    assert_eq!(per_flow.splits.len(), 1, "50 : 10 against 10 : 50 flows");
}

/// `started:` and `spanning:` judge only the flows that ran so against the event; `fate:`
/// tells survived, reset and died apart; an event that never happened, or no flow left to
/// judge, breaks the expectation and says why; the figures count the running connections by
/// fate and say when new flows last used the event's link.
#[test]
fn expectations_tied_to_an_event_judge_the_flows_that_ran_so() {
    let mut p = tcp_plan();
    p.events = vec![model::Event {
        name: "dies".into(),
        when: model::When::At("web".into(), std::time::Duration::from_millis(100)),
        change: model::Change::Blackhole,
        link: "wan1".into(),
        node: "isp1".into(),
        iface: "cust".into(),
        peer_node: "jupiter".into(),
        peer_iface: "eth1".into(),
    }];
    let exp = |name: &str, check: Check, started: model::Started| model::Expectation {
        name: name.into(),
        selector: "web".into(),
        flows: (1..=8).collect(),
        check,
        started: Some(started),
    };
    p.expectations = vec![
        exp(
            "after_via_wan2",
            Check::Via(Some("wan2".into())),
            model::Started::After("dies".into(), std::time::Duration::from_millis(20)),
        ),
        exp(
            "spanning_survive",
            Check::Fate(model::Fate::Survives),
            model::Started::Spanning("dies".into()),
        ),
        exp(
            "before_all",
            Check::Completes(true),
            model::Started::Before("never".into()),
        ),
    ];
    let mut o = alternating(&p);
    // Flows 1–4 from 0 ms, each 200 ms long (running at 100 ms); 5–8 start at 110, 130,
    // 150, 170 ms. Flow 5 (wan1) started 10 ms after the event: not judged by `after_via_wan2`
    // (20 ms or more after), flow 7 (wan1, 50 ms after) is, and breaks it.
    let t = |ms: u64| ms * 1_000_000;
    for id in 1..=4u32 {
        o.obs.times.insert(
            id,
            crate::observe::FlowTimes {
                started_ns: t(u64::from(id)),
                ended_ns: t(200),
            },
        );
    }
    for (id, at) in [(5u32, 110u64), (6, 130), (7, 150), (8, 170)] {
        o.obs.times.insert(
            id,
            crate::observe::FlowTimes {
                started_ns: t(at),
                ended_ns: t(at + 5),
            },
        );
    }
    // Asked for at 95 ms, in force at 100 ms.
    o.obs.events.push(crate::observe::EventSeen {
        name: "dies".into(),
        asked_ns: t(95),
        t_ns: t(100),
    });
    // Flow 3 was reset, flow 1 died (its client gave up).
    for (id, reset) in [(1u32, false), (3, true)] {
        o.obs.clients.insert(
            id,
            ClientOutcome {
                round_trips_done: 1,
                completed: false,
                error: Some(if reset {
                    "round trip 2 of 5: connection reset by peer".into()
                } else {
                    "round trip 2 of 5: no answer within 1s".into()
                }),
                reset,
                recovered: false,
            },
        );
    }
    let v = judge(&p, &o.observed());
    let r = |n: &str| v.results.iter().find(|r| r.name == n).unwrap();
    assert_eq!(r("after_via_wan2").flows, [6, 7, 8]);
    assert_eq!(r("after_via_wan2").failed_flows(), [7]);
    assert_eq!(r("spanning_survive").flows, [1, 2, 3, 4]);
    assert_eq!(r("spanning_survive").failed_flows(), [1, 3]);
    let said = words::finding(&v, &r("spanning_survive").failures[1]);
    assert!(
        said.starts_with(
            "it was reset (round trip 2 of 5: connection reset by peer), expected it to survive"
        ),
        "{said}"
    );
    assert_eq!(
        r("before_all").vacant,
        Some(Vacant::EventMissed {
            event: "never".into()
        })
    );
    assert!(r("before_all").broke());
    assert!(words::observed(&v, "before_all").contains("event `never` never happened"));
    let f = &v.events[0];
    assert_eq!((f.at_ms, f.started_after), (100.0, 4));
    assert_eq!(
        f.spanning,
        FateCounts {
            survived: 2,
            reset: 1,
            died: 1
        }
    );
    assert_eq!(
        (f.last_on_link_ms, f.first_elsewhere_ms),
        (Some(50.0), Some(30.0))
    );
    assert!(
        words::event(f).contains("of 4 connections running then 2 survived, 1 was reset, 1 died"),
        "{}",
        words::event(f)
    );
    assert!(v.timed_flows().len() == 8);
}

/// A UDP stream whose answers stopped for a while but came back by its end survived; one that
/// did not complete and did not come back died; a reset one was reset.
#[test]
fn a_stream_that_came_back_survived() {
    let p = plan();
    let v = judge(&p, &Observations::default());
    let mut f = v.flows[0].clone();
    f.completed = false;
    f.recovered = true;
    assert_eq!(f.fate(), model::Fate::Survives);
    f.recovered = false;
    assert_eq!(f.fate(), model::Fate::Dies);
    f.reset = true;
    assert_eq!(f.fate(), model::Fate::Reset);
}

//! The pipeline: plan → lab → rules → capture → traffic → observations → verdict. One run
//! reads as four stages (see `run_once`): bring up (the lab wired while its rules load and the
//! captures open, overlapping: see `bring_up`), drive, collect, judge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::install;
use crate::install::Backend;
use crate::lab::{Gate, Lab, Netns};
use crate::model::{Plan, RuleKind, RuleSource};
use crate::observe::counters::RuleHit;
use crate::observe::daemons::DaemonRun;
use crate::observe::losses::LossCounters;
use crate::observe::{self, CtEntry, EventSeen, FlowTimes, Frame, Observations, Sightings};
use crate::traffic;
use crate::verdict::{self, Verdict};
use crate::watch::{self, capture, capture::Capture};

/// Wall time of each phase of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub build: Duration,
    pub install: Duration,
    pub capture_start: Duration,
    pub traffic: Duration,
    /// Stopping the daemons, waiting for the links to go quiet, stopping the captures,
    /// reading conntrack.
    pub collect: Duration,
    pub judge: Duration,
    /// Closing the namespaces' fds (the kernel frees them asynchronously).
    pub teardown: Duration,
}

impl Timings {
    /// Each phase with its name, in pipeline order: build (the lab), rules (installed),
    /// capture (started), drive (the flows), collect (quiet links, captures stopped,
    /// conntrack read), judge, teardown.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("build", self.build),
            ("rules", self.install),
            ("capture", self.capture_start),
            ("drive", self.traffic),
            ("collect", self.collect),
            ("judge", self.judge),
            ("teardown", self.teardown),
        ]
    }

    pub fn total(&self) -> Duration {
        self.phases().iter().map(|(_, d)| *d).sum()
    }
}

/// What one run saw and how it was judged: pure data (the lab, when kept, comes beside it:
/// [`run_keeping`]).
pub struct RunResult {
    pub verdict: Verdict,
    /// With `Options::keep_frames`: every frame captured, and when the captures started.
    pub frames: Vec<Frame>,
    pub capture_started: SystemTime,
    /// With `Options::coverage`: every iptables rule and its packet counter.
    pub coverage: Option<Vec<RuleHit>>,
    pub observations: Observations,
    pub timings: Timings,
    /// Each daemon of the run (`- daemon: COMMAND`): how it ended (stopped once the traffic
    /// was done, or by itself before that) and the last of what it printed.
    pub daemons: Vec<DaemonRun>,
}

/// Checks, before anything is built, that the tools the rule files need are installed and
/// that namespaces can be created.
pub fn preflight(plan: &Plan, backend: Backend) -> Result<(), Error> {
    // Rule files given on the command line, and mutants, were not seen by `model::load`.
    crate::model::hostsafe::check_plan(plan)?;
    let sources = plan.rules.iter().flat_map(|r| &r.sources);
    if sources
        .clone()
        .any(|s| matches!(s, RuleSource::Command { .. }))
    {
        install::generator::Limits::current().map_err(|msg| install::InstallError::Source {
            shown: "the environment".into(),
            msg,
        })?;
    }
    // Rule files whose kind is known before they are generated.
    for kind in RuleKind::ALL {
        let users: Vec<String> = plan
            .rules
            .iter()
            .flat_map(|r| r.sources.iter())
            .filter(|s| matches!(s, RuleSource::File { kind: k, .. } if *k == kind))
            .map(RuleSource::describe)
            .collect();
        let tool = install::tool(kind, backend);
        if !users.is_empty() && crate::model::find_in_path(tool).is_none() {
            return Err(Error::MissingTool {
                tool,
                package: kind.package(),
                why: users.join(", "),
            });
        }
    }
    Netns::new("probe")
        .map(drop)
        .map_err(|e| Error::Privilege(e.to_string()))
}

/// Loads a scenario file and runs it.
pub fn run_file(path: &Path) -> Result<RunResult, Error> {
    let plan = crate::model::load(path)?;
    run(&plan)
}

/// Runs a validated plan. Whatever happens, the lab is gone when this returns.
pub fn run(plan: &Plan) -> Result<RunResult, Error> {
    run_with(plan, Options::default())
}

/// How to run: which iptables implementation loads `iptables:` rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub backend: Backend,
    /// Read every iptables rule's packet counter after the traffic.
    pub coverage: bool,
    /// Keep every captured frame (for pcap files).
    pub keep_frames: bool,
    /// Keep every flow's packets hop by hop in the verdict ([`verdict::FlowPath::trace`]),
    /// for the JSON and HTML results.
    pub traces: bool,
}

/// How late an event during traffic may come into force (its carrier seen by the router, its
/// fault's rules committed) before the run is the lab's failure, not a verdict: a few ms
/// on an idle machine.
const EVENT_SLACK: Duration = Duration::from_millis(250);

/// How long the router's conntrack surely keeps a finished flow's entry: a UDP exchange's, the
/// shortest, lives 30 s after its last packet (`nf_conntrack_udp_timeout`), less a margin.
const CONNTRACK_KEEPS: Duration = Duration::from_secs(25);

/// How many times a run whose lab itself failed ([`Error::LabFault`]: a machine too busy for
/// it) is tried in all before the harness gives up (exit 2). `HARNESS_LAB_ATTEMPTS` overrides.
pub fn lab_attempts() -> usize {
    std::env::var("HARNESS_LAB_ATTEMPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| (1..=100).contains(n))
        .unwrap_or(3)
}

/// Runs a validated plan with `opts`. A run whose lab itself failed judged nothing: it is run
/// again in a new lab, up to [`lab_attempts`] times in all, each retry said on stderr; the
/// verdict rests on one whole run. Whatever happens, the lab is gone when this returns.
pub fn run_with(plan: &Plan, opts: Options) -> Result<RunResult, Error> {
    retrying(plan, || run_once(plan, opts, drop)).map(|(result, ())| result)
}

/// Runs like [`run_with`], and hands the lab of the run that was judged back beside its
/// result, still up (`--keep`). A lab whose run failed is gone.
pub fn run_keeping(plan: &Plan, opts: Options) -> Result<(RunResult, Lab), Error> {
    retrying(plan, || run_once(plan, opts, std::convert::identity))
}

/// Runs `once` until it does not fail for the lab's fault, or [`lab_attempts`] runs did.
fn retrying<T>(plan: &Plan, once: impl Fn() -> Result<T, Error>) -> Result<T, Error> {
    let attempts = lab_attempts();
    let mut attempt = 1;
    loop {
        match once() {
            Err(e) if e.is_lab_fault() && attempt < attempts => {
                let why = e.to_string();
                eprintln!(
                    "harness: `{}`: {}; running it again in a new lab ({} of {attempts})",
                    plan.name,
                    why.lines()
                        .take(2)
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" "),
                    attempt + 1
                );
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One run of a validated plan, in a lab of its own: bring up, drive, collect, judge. `keep`
/// ends the lab once the counters are read (`drop`) or hands it back ([`run_keeping`]).
fn run_once<K>(plan: &Plan, opts: Options, keep: fn(Lab) -> K) -> Result<(RunResult, K), Error> {
    preflight(plan, opts.backend)?;
    let mut t = Timings::default();
    let BroughtUp {
        lab,
        capture,
        mut installed,
    } = bring_up(plan, opts, &mut t)?;
    // Running from now until the traffic is done; stopped whatever ends the run (`Drop`).
    let daemons = std::mem::take(&mut installed.daemons);

    // Links the scenario's events take down drop what they are given: not a loss of the lab's.
    let evented: Vec<(&str, &str)> = plan
        .events
        .iter()
        .flat_map(|e| [(&*e.node, &*e.iface), (&*e.peer_node, &*e.peer_iface)])
        .collect();
    let losses_before = read_losses(&lab, &evented)?;
    let driving = Instant::now();
    let driven = drive(&lab, plan)?;
    t.traffic = driving.elapsed();
    // A tool that exited with an error after its commits (none is known to) voids the run.
    installed.settle()?;

    let clock = Instant::now();
    // The traffic is done: so is their work. (A kept lab is handed over without them.)
    let daemons = daemons.stop();
    let Collected {
        sightings,
        frames,
        started,
        conntrack,
        mut faults,
    } = collect(
        plan,
        &lab,
        capture,
        driven.probes_answered,
        &evented,
        &losses_before,
    )?;
    let conntrack_late = driving.elapsed() > CONNTRACK_KEEPS;
    t.collect = clock.elapsed();

    let coverage = if opts.coverage {
        Some(watch::coverage::read(
            &lab,
            &installed.loaded,
            opts.backend,
        )?)
    } else {
        None
    };
    let clock = Instant::now();
    let kept = keep(lab);
    t.teardown = clock.elapsed();

    // The flows' and the events' times on the captures' clock.
    let since = |at: SystemTime| {
        at.duration_since(started)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let observations = Observations {
        sightings,
        conntrack,
        clients: driven.clients,
        server_saw: driven.server_saw,
        times: driven
            .times
            .iter()
            .map(|(id, (from, to))| {
                (
                    *id,
                    FlowTimes {
                        started_ns: since(*from),
                        ended_ns: since(*to),
                    },
                )
            })
            .collect(),
        events: driven
            .events
            .iter()
            .map(|e| EventSeen {
                name: e.name.clone(),
                asked_ns: since(e.asked),
                t_ns: since(e.done),
            })
            .collect(),
    };
    // Flows whose client gave up with nothing to explain it: their packets, hop by hop, say
    // whether the answer was still on its way ([`lab_faults`]).
    let explained: BTreeSet<u32> = driven.lagged.iter().map(|(id, _)| *id).collect();
    let unexplained: BTreeSet<u32> = driven
        .gave_up
        .keys()
        .filter(|id| !explained.contains(id))
        .copied()
        .collect();
    let traces = if opts.traces {
        verdict::Traces::All
    } else {
        verdict::Traces::Only(unexplained)
    };
    let clock = Instant::now();
    let mut verdict = verdict::judge_with(plan, &observations, &traces);
    t.judge = clock.elapsed();
    // On a machine so slow that the traffic took longer than the router's conntrack keeps a
    // finished flow's entry, an entry missing is no evidence.
    if conntrack_late {
        let missing: Vec<String> = verdict
            .flows
            .iter()
            .filter(|p| p.mark.is_none() && !p.router_out.is_empty())
            .map(|p| p.id.to_string())
            .collect();
        if !missing.is_empty() {
            faults.push(format!(
                "the traffic took {} s, longer than the router's conntrack keeps a finished flow's entry ({} s), and flows {} have none",
                driving.elapsed().as_secs(),
                CONNTRACK_KEEPS.as_secs(),
                missing.join(", ")
            ));
        }
    }
    faults.extend(lab_faults(
        plan,
        &verdict,
        &driven.gave_up,
        &driven.lagged,
        started,
    ));
    // An expectation tied to an event that had nothing to judge (the event never came, or no
    // selected flow ran so against it): nothing was seen of the rules, and on a busy machine
    // the timing is what moved.
    faults.extend(
        verdict
            .results
            .iter()
            .filter(|r| r.vacant.is_some())
            .map(|r| {
                format!(
                    "expectation `{}`: {}",
                    r.name,
                    crate::report::words::observed(&verdict, &r.name)
                )
            }),
    );
    // An event made far behind its time: the flows it was meant to meet ran against another
    // moment, so a verdict on them would not be the scenario's.
    faults.extend(driven.events.iter().filter(|e| e.late > EVENT_SLACK).map(|e| {
        format!(
            "event `{}` came into force {} ms after its time (the machine was too busy to keep the scenario's timing)",
            e.name,
            e.late.as_millis()
        )
    }));
    if !faults.is_empty() {
        return Err(Error::LabFault(brief(faults)));
    }
    if !opts.traces {
        for p in &mut verdict.flows {
            p.trace = None;
        }
    }
    let result = RunResult {
        frames,
        capture_started: started,
        coverage,
        verdict,
        observations,
        timings: t,
        daemons,
    };
    Ok((result, kept))
}

/// A lab brought up: wired, its rules loaded, a capture on every link.
struct BroughtUp {
    lab: Lab,
    capture: Capture,
    installed: install::Installed,
}

/// Brings the lab up, its rules in and its captures open; times build, install and
/// capture_start in `t`.
///
/// On the created lab (nodes and veths), while it is wired (addresses, links up, routes):
/// netfilter rules load and the captures' rings are set up. Both wait out RCU grace periods in
/// the kernel (an nf_tables commit's clean-up, a ring's set-up), which then overlap each other
/// and the wiring. What needs the wiring (the rules of other kinds, generators, the rings'
/// readers) waits for it at a [`Gate`].
fn bring_up(plan: &Plan, opts: Options, t: &mut Timings) -> Result<BroughtUp, Error> {
    let clock = Instant::now();
    let lab = Lab::create(plan)?;

    // The clients' links, where each RELATED probe's ICMP error must show up.
    let probed: Vec<&crate::model::FlowSpec> =
        plan.flows.iter().filter(|f| f.related_probe).collect();
    let watch: Vec<usize> = (0..plan.topology.links.len())
        .filter(|i| {
            let l = &plan.topology.links[*i];
            probed
                .iter()
                .any(|f| l.a.node == f.client_node || l.b.node == f.client_node)
        })
        .collect();
    let starting = |source| Error::Io {
        what: "starting the captures".into(),
        source,
    };
    let (keeper, wired) = Gate::new();
    let (built, opening, installed) = std::thread::scope(|s| {
        // The rules first (their commits' clean-up is the longest wait): this returns once
        // their tools run, before the rest compete for the CPUs.
        let installing = install::start(s, &lab, plan, opts.backend, &wired);
        let frames = capture::frames_bound(&plan.flows);
        let opening = Capture::open(
            &lab,
            &plan.topology,
            &watch,
            opts.keep_frames,
            frames,
            &wired,
        );
        let built = lab.wire(plan);
        keeper.open(built.is_ok());
        t.build = clock.elapsed();
        let clock = Instant::now();
        let installed = installing.finish();
        t.install = clock.elapsed();
        (built, opening, installed)
    });
    built?;
    let opening = opening.map_err(starting)?;
    let installed = installed?;

    // What is left of opening the captures once the rules are in.
    let clock = Instant::now();
    let capture = opening.ready(&plan.topology).map_err(starting)?;
    t.capture_start = clock.elapsed();
    Ok(BroughtUp {
        lab,
        capture,
        installed,
    })
}

/// Every node's loss counters, but for the interfaces in `except`.
fn read_losses(lab: &Lab, except: &[(&str, &str)]) -> Result<LossCounters, Error> {
    watch::losses::read(lab, except).map_err(|source| Error::Io {
        what: "reading the lab's loss counters".into(),
        source,
    })
}

/// Drives every flow to its end, then injects the crafted packets.
fn drive(lab: &Lab, plan: &Plan) -> Result<traffic::TrafficResult, Error> {
    let mut driven =
        traffic::drive(lab, &plan.topology, &plan.flows, &plan.events).map_err(driving_error)?;
    let crafted =
        traffic::craft::inject(lab, &plan.topology, &plan.flows).map_err(|source| Error::Io {
            what: "injecting crafted packets".into(),
            source,
        })?;
    driven.clients.extend(crafted);
    Ok(driven)
}

/// What the lab showed once the traffic was done.
struct Collected {
    sightings: Sightings,
    /// When kept ([`Options::keep_frames`]), every frame.
    frames: Vec<Frame>,
    /// When the captures started: the frames' and sightings' times count from it.
    started: SystemTime,
    /// The router's conntrack table.
    conntrack: Vec<CtEntry>,
    /// What went wrong on the lab's side, not the rules': a capture that waited in vain,
    /// packets the kernel lost.
    faults: Vec<String>,
}

/// Waits for the links to go quiet, stops the captures, reads which loss counters grew since
/// `losses_before` (but for the links in `evented`) and the router's conntrack table. A capture whose kernel dropped
/// packets voids the run ([`Error::CaptureLost`]).
fn collect(
    plan: &Plan,
    lab: &Lab,
    capture: Capture,
    probes_answered: u64,
    evented: &[(&str, &str)],
    losses_before: &LossCounters,
) -> Result<Collected, Error> {
    let clock = Instant::now();
    let mut faults = Vec::new();
    // A busy machine can hold a packet back longer than the quiet wait: wait for the ICMP
    // errors the probes caused (one per probe its client's kernel answered, on the client's
    // link). Seeing fewer than the clients' kernels sent is the capture's failing, not the
    // rules'.
    if let Err(t) = capture.wait_icmp_errors(probes_answered, clock + Duration::from_secs(5)) {
        faults.push(t.to_string());
    }
    // Packets of finished flows have crossed every link by now (a veth hands a packet on
    // within the sender's system call); the quiet window covers any still queued on another CPU.
    if let Err(t) = capture.wait_quiet(
        Duration::from_millis(10),
        Instant::now() + crate::wait::lab_patience(),
    ) {
        faults.push(t.to_string());
    }
    let started = capture.started;
    let (sightings, losses, frames) = capture.stop();
    if !losses.is_empty() {
        let links: Vec<String> = losses
            .iter()
            .map(|(links, n)| {
                let names: Vec<String> = links
                    .iter()
                    .map(|i| format!("`{}`", plan.topology.links[*i].name))
                    .collect();
                format!("{n} on {}", names.join("/"))
            })
            .collect();
        return Err(Error::CaptureLost(links.join(", ")));
    }
    let losses_after = read_losses(lab, evented)?;
    faults.extend(
        observe::losses::grown(losses_before, &losses_after)
            .into_iter()
            .map(|l| format!("the kernel lost packets of the lab's own: {l}")),
    );
    let router = &plan.topology.router.node;
    let conntrack = watch::conntrack::read(lab, router).map_err(|source| Error::Io {
        what: format!("reading the conntrack table of `{router}`"),
        source,
    })?;
    Ok(Collected {
        sightings,
        frames,
        started,
        conntrack,
        faults,
    })
}

/// What the verdict shows was the lab's doing, not the rules': flows that gave up with none of
/// their packets seen ([`verdict::unseen`]), a flow of which the network lost nothing that
/// the harness kept waiting (`lagged`), and one whose answer was still on its way when its
/// client gave up (`gave_up`, when; the captures started at `started`).
fn lab_faults(
    plan: &Plan,
    verdict: &Verdict,
    gave_up: &BTreeMap<u32, SystemTime>,
    lagged: &[(u32, String)],
    started: SystemTime,
) -> Vec<String> {
    let mut faults = Vec::new();
    let gave_up_ids: BTreeSet<u32> = gave_up.keys().copied().collect();
    faults.extend(verdict::unseen(plan, verdict, &gave_up_ids).into_iter().map(|id| {
        format!("flow {id}: its client sent it, but the captures saw none of its packets, not even on the client's own link")
    }));
    // A flow the harness itself kept waiting, of which the network lost nothing.
    let lost: BTreeSet<u32> = verdict
        .flows
        .iter()
        .filter(|p| !p.drops.is_empty())
        .map(|p| p.id)
        .collect();
    faults.extend(
        lagged
            .iter()
            .filter(|(id, _)| !lost.contains(id))
            .map(|(_, why)| why.clone()),
    );
    // A flow of which nothing was lost, whose answer was still on its way when its client gave
    // up: the machine was slow, the network did not fail it. (Only answers that carry data:
    // the closing packets that follow giving up are the client's own doing.)
    let explained: BTreeSet<u32> = lagged.iter().map(|(id, _)| *id).collect();
    let slow: Vec<(u32, SystemTime)> = gave_up
        .iter()
        .filter(|(id, _)| !lost.contains(id) && !explained.contains(id))
        .map(|(id, at)| (*id, *at))
        .collect();
    if !slow.is_empty() {
        for (id, at) in slow {
            let late = verdict
                .flow(id)
                .and_then(|p| p.trace.as_ref())
                .into_iter()
                .flatten()
                .filter(|p| p.dir == verdict::Dir::Back && p.payload_len > 0)
                .flat_map(|p| p.hops.iter())
                .map(|h| started + Duration::from_nanos(h.t_ns))
                .filter_map(|t| t.duration_since(at).ok())
                .max();
            if let Some(after) = late {
                faults.push(format!(
                    "flow {id}: its answer was still crossing the lab {} ms after its client gave up waiting",
                    after.as_millis()
                ));
            }
        }
    }
    faults
}

/// What stopped the traffic: the lab's own error when it carries one (a link an event changed
/// that did not follow in time is the lab's fault, and retried), else the I/O error.
fn driving_error(source: std::io::Error) -> Error {
    use crate::lab::LabError;
    let io = |source| Error::Io {
        what: "driving traffic".into(),
        source,
    };
    if !source.get_ref().is_some_and(|e| e.is::<LabError>()) {
        return io(source);
    }
    match source.into_inner().map(|e| e.downcast::<LabError>()) {
        Some(Ok(lab)) => Error::Lab(*lab),
        Some(Err(other)) => io(std::io::Error::other(other)),
        None => io(std::io::Error::other("driving traffic failed")),
    }
}

/// At most a few lines of what went wrong, and how many more there were like them.
fn brief(mut lines: Vec<String>) -> Vec<String> {
    const SHOWN: usize = 6;
    if lines.len() > SHOWN {
        let more = lines.len() - (SHOWN - 1);
        lines.truncate(SHOWN - 1);
        lines.push(format!("… and {more} more like these"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabError;

    /// A link an event changed that did not follow in time is the lab's fault (retried in a
    /// new lab); any other error while driving stays what it is.
    #[test]
    fn a_link_slow_to_follow_an_event_is_the_labs_fault() {
        let slow = LabError::NotReady {
            node: "jupiter".into(),
            timeout: crate::wait::Timeout {
                what: "interface `eth1` (now up) going down".into(),
                waited: Duration::from_secs(30),
            },
        };
        let e = driving_error(std::io::Error::other(slow));
        assert!(matches!(e, Error::Lab(LabError::NotReady { .. })), "{e:?}");
        assert!(e.is_lab_fault());
        let e = driving_error(std::io::Error::other("no buffer space"));
        assert!(matches!(e, Error::Io { .. }) && !e.is_lab_fault(), "{e:?}");
    }

    #[test]
    fn a_long_list_of_faults_is_cut_short_with_a_count() {
        let lines: Vec<String> = (1..=9).map(|i| format!("flow {i}")).collect();
        let b = brief(lines);
        assert_eq!(b.len(), 6);
        assert_eq!(b[5], "… and 4 more like these");
        assert_eq!(brief(vec!["a".into()]), ["a"]);
    }
}

//! Scheduling: every node's rule set at once, within a node netfilter and the rest in two
//! lanes, generators once everything before them is in, and what waits for the wiring.

use super::commits::{self, CommitWatch};
use super::daemon::{Daemon, Daemons};
use super::load::{run_tool, Settling};
use super::sources::materialize;
use super::{Backend, InstallError, Loadable};
use crate::lab::spawn::rt_tables;
use crate::lab::{Gate, Lab};
use crate::model::{Plan, RuleKind, RuleSource};

/// What [`start`] loaded where, the daemons it started, and the tools still exiting after
/// their rules committed.
pub struct Installed {
    pub loaded: Vec<(String, Loadable)>,
    /// The nodes' daemons, running (see [`super::daemon`]); stopped when dropped.
    pub daemons: Daemons,
    settling: Vec<Settling>,
}

impl Installed {
    /// Waits for the tools that were still exiting; the first that failed is the error.
    pub fn settle(&mut self) -> Result<(), InstallError> {
        self.settling.drain(..).try_for_each(Settling::finish)
    }
}

/// Rule sets being installed (see [`start`]).
pub struct Installing<'scope> {
    nodes: Vec<std::thread::ScopedJoinHandle<'scope, Result<Installed, InstallError>>>,
}

/// Starts installing every node's rule set: each node's files in order, the nodes at once (a
/// thread each, in scope `s`). Netfilter rules (iptables, nft, ipset) load at once, on the
/// lab as [`Lab::create`] left it; the rest, and generators (which may look at the lab), once
/// `wired` opens. Returns once every node's first tool has started (or the node waits for
/// the wiring), so that the tools get the machine's CPUs before the wiring does.
///
/// An nf_tables tool is left to exit on its own once the kernel has announced its commits
/// (see [`commits`]): [`Installed::settle`] checks how it ended.
pub fn start<'scope, 'env>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    lab: &'env Lab,
    plan: &'env Plan,
    backend: Backend,
    wired: &'env Gate,
) -> Installing<'scope> {
    let (going, started) = std::sync::mpsc::channel::<()>();
    let nodes = plan
        .rules
        .iter()
        .map(|rules| {
            let going = going.clone();
            s.spawn(move || install_node(lab, plan, rules, backend, wired, going))
        })
        .collect();
    drop(going);
    // Every sender is gone once each node has its first tool running or waits.
    let _ = started.recv();
    Installing { nodes }
}

impl Installing<'_> {
    /// Waits until every node's rules are in: what was loaded where, or the first failure in
    /// the plan's order. When the wiring failed, what was not yet loaded is left out (the
    /// wiring's error is the one to report).
    pub fn finish(self) -> Result<Installed, InstallError> {
        let mut done = Installed {
            loaded: Vec::new(),
            daemons: Daemons::default(),
            settling: Vec::new(),
        };
        // On a failure, the daemons started so far are dropped, so stopped, with `done`, and
        // those of nodes not yet joined with their results.
        for t in self.nodes {
            let node = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            done.loaded.extend(node.loaded);
            done.daemons.0.extend(node.daemons.0);
            done.settling.extend(node.settling);
        }
        Ok(done)
    }
}

/// Whether rules of `kind` go into netfilter (iptables, ip6tables, nft and ipset files depend on each
/// other: a set before the rule that matches it, a `flush ruleset` wiping iptables-nft's
/// tables). The rest (`ip`, `sysctl`) touch only routing and the kernel's settings: a tool of
/// one group loads while a tool of the other is still at work, each group in file order.
///
/// Netfilter rules also load the same before the lab is wired (its devices there, down, with
/// no addresses or routes): they name devices and addresses only to match packets. (`ip`
/// files need the addresses and routes; `sysctl` files would be overridden by the topology's
/// per-interface sysctls, set while wiring.)
fn into_netfilter(kind: RuleKind) -> bool {
    matches!(
        kind,
        RuleKind::Iptables | RuleKind::Ip6tables | RuleKind::Nft | RuleKind::Ipset
    )
}

/// One node's rule files (see [`start`]): in file order within netfilter and within the rest,
/// the two at once; a generator runs once everything before it is in. `going` is dropped once
/// the node's first tool runs, or before the node first waits.
fn install_node(
    lab: &Lab,
    plan: &Plan,
    rules: &crate::model::NodeRules,
    backend: Backend,
    wired: &Gate,
    going: std::sync::mpsc::Sender<()>,
) -> Result<Installed, InstallError> {
    // The node's table names: the scenario's, then those bundles name (`### rt_tables`).
    let mut names = rules.tables.clone();
    let mut tables = (!names.is_empty()).then(|| rt_tables(&names));
    let mut node = NodeInstall {
        going: Some(going),
        watch: None,
        busy: [None, None],
        done: Installed {
            loaded: Vec::new(),
            daemons: Daemons::default(),
            settling: Vec::new(),
        },
    };
    // The node's daemons, started once everything else is in.
    let mut daemons = Vec::new();
    // Each text's place in file order, counted from 1.
    let mut at = 0;
    let mut load = || -> Result<(), Failure> {
        for source in &rules.sources {
            if let RuleSource::Daemon { line, cwd } = source {
                daemons.push((line, cwd));
                continue;
            }
            if let RuleSource::Install { line, cwd } = source {
                // It may load anything: everything before it is in, and the lab is wired.
                node.settle(NETFILTER)?;
                node.settle(REST)?;
                if !node.wired(wired) {
                    return Ok(());
                }
                at += 1;
                let snapshot = super::snapshot::install(
                    lab,
                    plan,
                    &rules.node,
                    line,
                    cwd,
                    tables.as_deref(),
                    backend,
                )
                .map_err(|e| (at, Box::new(e)))?;
                let loaded = snapshot.into_iter().map(|l| (rules.node.clone(), l));
                node.done.loaded.extend(loaded);
                continue;
            }
            if matches!(source, RuleSource::Command { .. }) {
                node.settle(NETFILTER)?;
                node.settle(REST)?;
                if !node.wired(wired) {
                    return Ok(());
                }
            }
            let texts = materialize(lab, plan, &rules.node, source, &mut names, &mut tables)
                .map_err(|e| (at + 1, Box::new(e)))?;
            for l in texts {
                at += 1;
                if !into_netfilter(l.kind) && !node.wired(wired) {
                    return Ok(());
                }
                let lane = if into_netfilter(l.kind) {
                    NETFILTER
                } else {
                    REST
                };
                node.settle(lane)?;
                let batches = match (l.kind, backend) {
                    (RuleKind::Iptables | RuleKind::Ip6tables, Backend::Legacy) => 0,
                    (kind, _) => commits::batches(kind, &l.text),
                };
                if let Some(w) = node.watch.as_mut().filter(|_| batches > 0) {
                    // What a generator or an earlier tool committed is not this tool's.
                    w.drain();
                }
                let open_watch = batches > 0 && node.watch.is_none();
                let (running, watch) =
                    run_tool(lab, &rules.node, &l, tables.as_deref(), backend, open_watch)
                        .map_err(|e| (at, Box::new(e)))?;
                node.going.take();
                if watch.is_some() {
                    node.watch = watch;
                }
                node.busy[lane] = Some(Busy {
                    at,
                    running,
                    batches,
                });
                node.done.loaded.push((rules.node.clone(), l));
            }
        }
        Ok(())
    };
    let outcome = load();
    // Whatever happened, both tools at work are waited for; the first failure in file order
    // is the one reported.
    let mut failures: Vec<Failure> = outcome.err().into_iter().collect();
    failures.extend(node.settle(NETFILTER).err());
    failures.extend(node.settle(REST).err());
    if let Some((_, e)) = failures.into_iter().min_by_key(|(at, _)| *at) {
        return Err(*e);
    }
    // Daemons once all of the node's rules are in and the lab is wired.
    if !daemons.is_empty() && node.wired(wired) {
        for (line, cwd) in daemons {
            let d = Daemon::start(lab, plan, &rules.node, line, cwd, tables.as_deref())?;
            node.done.daemons.0.push(d);
        }
    }
    Ok(node.done)
}

/// A text's failure, with its place in the node's file order.
type Failure = (usize, Box<InstallError>);

/// The two groups of rule files a node loads at once (see [`into_netfilter`]).
const NETFILTER: usize = 0;
const REST: usize = 1;

/// A node's rules being loaded.
struct NodeInstall {
    /// Dropped once the node's first tool runs, or before the node first waits (see [`start`]).
    going: Option<std::sync::mpsc::Sender<()>>,
    watch: Option<CommitWatch>,
    /// The tool at work in each group.
    busy: [Option<Busy>; 2],
    done: Installed,
}

/// A tool at work: its text's place in file order, and the batches it commits.
struct Busy {
    at: usize,
    running: Settling,
    batches: usize,
}

impl NodeInstall {
    /// Waits until the lab is wired: whether it was.
    fn wired(&mut self, gate: &Gate) -> bool {
        self.going.take();
        gate.wait()
    }

    /// Waits until the tool at work in `lane` has its rules in.
    fn settle(&mut self, lane: usize) -> Result<(), Failure> {
        if self.busy[lane].is_some() {
            self.going.take();
        }
        let Some(Busy {
            at,
            running,
            batches,
        }) = self.busy[lane].take()
        else {
            return Ok(());
        };
        let watch = self.watch.as_mut().filter(|_| batches > 0);
        let left = running
            .wait(watch, batches)
            .map_err(|e| (at, Box::new(e)))?;
        self.done.settling.extend(left);
        Ok(())
    }
}

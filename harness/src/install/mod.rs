//! Rule sets into a node with the real tools (iptables-restore, `nft -f`, `ip -batch`,
//! `ipset restore`, `sysctl -p`), each spawned inside the node's namespace and fed the rules on
//! its stdin: from a rule file, a section of a bundle, or what a generator printed.
//!
//! Named routing tables (`table rt_link1`) resolve without touching the host: the tool runs
//! in a private mount namespace where a generated rt_tables file is bind-mounted over
//! /etc/iproute2/rt_tables. Children die with the harness (PR_SET_PDEATHSIG).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use thiserror::Error;

pub mod commits;
pub mod generator;

use commits::{CommitWatch, Outcome};

use crate::lab::{Gate, Lab, Netns};
pub use crate::model::bundle::split_bundle;
use crate::model::{Plan, RuleKind, RuleSource};
use crate::observe::counters::{iptables_coverage, Loaded, RuleHit};

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("{file}:{line}: {tool} rejected this line on node `{node}`:\n    {text}\n  {tool} said: {said}")]
    RejectedLine {
        file: String,
        line: usize,
        text: String,
        tool: &'static str,
        node: String,
        /// The tool's message; then, when the tool did not point at the line itself, how it
        /// was found.
        said: String,
    },
    #[error("{file}: {tool} rejected the file on node `{node}`:\n  {said}")]
    Rejected {
        file: String,
        tool: &'static str,
        node: String,
        said: String,
    },
    #[error("{shown}: {msg}")]
    Source { shown: String, msg: String },
    /// A generator printed what no rule file may hold (see `model::hostsafe`).
    #[error("{0} (printed for node `{1}`)")]
    Outside(crate::model::SpecError, String),
    #[error("generator `{line}` for node `{node}` failed: {said}")]
    Generator {
        line: String,
        node: String,
        said: String,
    },
    #[error("running `{tool}` in node `{node}`: {source} (is it installed? apt-get install iptables nftables iproute2 ipset procps)")]
    Spawn {
        tool: &'static str,
        node: String,
        #[source]
        source: io::Error,
    },
}

/// Where iproute2 reads table names, first match wins.
const RT_TABLES: [&str; 2] = ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"];

/// The iptables implementation `iptables:` rule files are loaded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// `iptables-restore`, whichever implementation the system's alternatives choose.
    #[default]
    System,
    /// iptables-nft: the rules become nf_tables (Debian's default).
    Nft,
    /// iptables-legacy: the old x_tables.
    Legacy,
}

/// The program that loads rules of `kind`.
pub fn tool(kind: RuleKind, backend: Backend) -> &'static str {
    match (kind, backend) {
        (RuleKind::Iptables, Backend::System) => "iptables-restore",
        (RuleKind::Iptables, Backend::Nft) => "iptables-nft-restore",
        (RuleKind::Iptables, Backend::Legacy) => "iptables-legacy-restore",
        (k, _) => k.tool(),
    }
}

/// One text a tool loads: a rule file, a section of a bundle, or what a generator printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Loadable {
    pub kind: RuleKind,
    /// Where it came from, for messages.
    pub shown: String,
    /// The line of `shown` that the text's first line is.
    pub first_line: usize,
    pub text: String,
}

/// What [`start`] loaded where, and the tools still exiting after their rules committed.
pub struct Installed {
    pub loaded: Vec<(String, Loadable)>,
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
            settling: Vec::new(),
        };
        for t in self.nodes {
            let node = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            done.loaded.extend(node.loaded);
            done.settling.extend(node.settling);
        }
        Ok(done)
    }
}

/// Whether rules of `kind` go into netfilter (iptables, nft and ipset files depend on each
/// other: a set before the rule that matches it, a `flush ruleset` wiping iptables-nft's
/// tables). The rest (`ip`, `sysctl`) touch only routing and the kernel's settings: a tool of
/// one group loads while a tool of the other is still at work, each group in file order.
///
/// Netfilter rules also load the same before the lab is wired (its devices there, down, with
/// no addresses or routes): they name devices and addresses only to match packets. (`ip`
/// files need the addresses and routes; `sysctl` files would be overridden by the topology's
/// per-interface sysctls, set while wiring.)
fn into_netfilter(kind: RuleKind) -> bool {
    matches!(kind, RuleKind::Iptables | RuleKind::Nft | RuleKind::Ipset)
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
    let tables = (!rules.tables.is_empty()).then(|| rt_tables(&rules.tables));
    let mut node = NodeInstall {
        going: Some(going),
        watch: None,
        busy: [None, None],
        done: Installed {
            loaded: Vec::new(),
            settling: Vec::new(),
        },
    };
    // Each text's place in file order, counted from 1.
    let mut at = 0;
    let mut load = || -> Result<(), Failure> {
        for source in &rules.sources {
            if matches!(source, RuleSource::Command { .. }) {
                node.settle(NETFILTER)?;
                node.settle(REST)?;
                if !node.wired(wired) {
                    return Ok(());
                }
            }
            let texts = materialize(lab, plan, &rules.node, source, tables.as_deref())
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
                    (RuleKind::Iptables, Backend::Legacy) => 0,
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
    match failures.into_iter().min_by_key(|(at, _)| *at) {
        Some((_, e)) => Err(*e),
        None => Ok(node.done),
    }
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

/// Every iptables rule loaded in each node, with its packet counter (`iptables-save -c`).
pub fn coverage(
    lab: &Lab,
    loaded: &[(String, Loadable)],
    backend: Backend,
) -> Result<Vec<RuleHit>, InstallError> {
    let save = match backend {
        Backend::System => "iptables-save",
        Backend::Nft => "iptables-nft-save",
        Backend::Legacy => "iptables-legacy-save",
    };
    let mut nodes: Vec<&str> = loaded
        .iter()
        .filter(|(_, l)| l.kind == RuleKind::Iptables)
        .map(|(n, _)| n.as_str())
        .collect();
    nodes.dedup();
    let mut hits = Vec::new();
    for node in nodes {
        let mut cmd = Command::new(save);
        cmd.arg("-c");
        let out = run_with_input(lab.ns(node), cmd, None, None, b"").map_err(|source| {
            InstallError::Spawn {
                tool: save,
                node: node.to_string(),
                source,
            }
        })?;
        let files: Vec<Loaded> = loaded
            .iter()
            .filter(|(n, l)| n == node && l.kind == RuleKind::Iptables)
            .map(|(_, l)| Loaded {
                shown: &l.shown,
                first_line: l.first_line,
                text: &l.text,
            })
            .collect();
        hits.extend(iptables_coverage(
            &files,
            &String::from_utf8_lossy(&out.stdout),
        ));
    }
    Ok(hits)
}

/// The kernel's own tables plus the scenario's names, as iproute2's rt_tables file.
pub(crate) fn rt_tables(tables: &[(String, u32)]) -> Vec<u8> {
    let mut text = String::from("255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n");
    for (name, id) in tables {
        text.push_str(&format!("{id}\t{name}\n"));
    }
    text.into_bytes()
}

/// The texts a rule source stands for: a file, the sections of a bundle, a generator's output.
fn materialize(
    lab: &Lab,
    plan: &Plan,
    node: &str,
    source: &RuleSource,
    tables: Option<&[u8]>,
) -> Result<Vec<Loadable>, InstallError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| InstallError::Source {
            shown: display_path(path),
            msg: e.to_string(),
        })
    };
    let sections = |shown: String, text: String| -> Result<Vec<Loadable>, InstallError> {
        let parts = split_bundle(&text).map_err(|msg| InstallError::Source {
            shown: shown.clone(),
            msg,
        })?;
        Ok(parts
            .into_iter()
            .map(|(kind, first_line, text)| Loadable {
                kind,
                shown: shown.clone(),
                first_line,
                text,
            })
            .collect())
    };
    match source {
        RuleSource::File { kind, path } => Ok(vec![Loadable {
            kind: *kind,
            shown: display_path(path),
            first_line: 1,
            text: read(path)?,
        }]),
        RuleSource::Bundle(path) => sections(display_path(path), read(path)?),
        RuleSource::Inline { kind, shown, text } => Ok(vec![Loadable {
            kind: *kind,
            shown: shown.clone(),
            first_line: 1,
            text: text.clone(),
        }]),
        RuleSource::Command { line, cwd, kind } => {
            let facts = crate::model::facts(&plan.topology, node).to_string();
            let out = run_generator(lab, node, line, cwd, &facts, tables)?;
            let shown = format!("output of generator `{line}`");
            let texts = match kind {
                Some(k) => vec![Loadable {
                    kind: *k,
                    shown,
                    first_line: 1,
                    text: out,
                }],
                None => sections(shown, out)?,
            };
            // What a rule file may not do, a generator may not print (see model::hostsafe).
            for l in &texts {
                crate::model::hostsafe::check_at(
                    l.kind,
                    &l.text,
                    Path::new(&l.shown),
                    l.first_line,
                )
                .map_err(|e| InstallError::Outside(e, node.to_string()))?;
            }
            Ok(texts)
        }
    }
}

/// Runs a generator inside `node`: the topology's facts on its stdin and in the file named by
/// `HARNESS_TOPOLOGY` (an in-memory file, inherited as fd 200); `HARNESS_NODE` names the node.
fn run_generator(
    lab: &Lab,
    node: &str,
    line: &str,
    cwd: &Path,
    facts: &str,
    tables: Option<&[u8]>,
) -> Result<String, InstallError> {
    let failed = |msg: String| InstallError::Generator {
        line: line.to_string(),
        node: node.to_string(),
        said: msg,
    };
    let memfd =
        nix::sys::memfd::memfd_create(c"harness-topology", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| failed(e.to_string()))?;
    let mut file = std::fs::File::from(memfd);
    std::io::Write::write_all(&mut file, facts.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env("HARNESS_TOPOLOGY", format!("/proc/self/fd/{TOPOLOGY_FD}"))
        .env("HARNESS_NODE", node);
    let limits = generator::Limits::current().map_err(failed)?;
    let ns = lab.ns(node).clone();
    let tables = tables.map(<[u8]>::to_vec);
    // The memfd moves with the spawn: it must stay open until the generator has its copy.
    let spawn = move || spawn_piped(&ns, cmd, tables.as_deref(), Some(file.as_raw_fd()));
    let ended = generator::run(lab.ns(node), spawn, facts.as_bytes().to_vec(), limits)
        .map_err(|e| failed(e.to_string()))?;
    let (status, stdout, stderr) = match ended {
        generator::Ended::Exited {
            status,
            stdout,
            stderr,
        } => (status, stdout, stderr),
        generator::Ended::TimedOut(limit) => {
            return Err(failed(format!(
                "it ran longer than {} s, the time limit, and was killed with every process it \
                 started; make it finish sooner, or raise the limit with --generator-timeout \
                 SECS (or HARNESS_GENERATOR_TIMEOUT=SECS)",
                limit.as_secs_f64()
            )))
        }
        generator::Ended::TooMuch(limit) => {
            return Err(failed(format!(
                "it printed more than {}, the output limit, and was killed with every process \
                 it started; print less, or raise the limit with \
                 HARNESS_GENERATOR_MAX_OUTPUT=BYTES (e.g. `256MiB`)",
                generator::show_bytes(limit)
            )))
        }
    };
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr).trim().to_string();
        return Err(failed(if said.is_empty() {
            format!("{status} and printed nothing on stderr")
        } else {
            format!("{status}:\n  {}", said.replace('\n', "\n  "))
        }));
    }
    String::from_utf8(stdout).map_err(|_| failed("its output is not UTF-8 text".into()))
}

/// The fd number a generator finds the topology's facts on.
const TOPOLOGY_FD: RawFd = 200;
/// Where every tool finds its private xtables lock (see `spawn_in`).
const LOCK_FD: RawFd = 201;

/// Spawns `cmd` in `ns`, writes `input` to its stdin, and waits for it.
fn run_with_input(
    ns: &Netns,
    cmd: Command,
    tables: Option<&[u8]>,
    keep: Option<RawFd>,
    input: &[u8],
) -> io::Result<std::process::Output> {
    feed_and_wait(spawn_piped(ns, cmd, tables, keep)?, input)
}

/// Spawns `cmd` in `ns` with its stdin, stdout and stderr piped (see [`spawn_in`]).
fn spawn_piped(
    ns: &Netns,
    mut cmd: Command,
    tables: Option<&[u8]>,
    keep: Option<RawFd>,
) -> io::Result<std::process::Child> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_in(ns, cmd, tables, keep)
}

/// Writes `input` to the child's stdin and waits for it, reading its output.
fn feed_and_wait(mut child: std::process::Child, input: &[u8]) -> io::Result<std::process::Output> {
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // Written from another thread: a tool may fill its output pipes before reading it all.
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output()?;
    // A tool that stops reading early (it rejected a line) closes the pipe: not our error.
    let _ = writer.join();
    Ok(out)
}

/// Starts the tool that loads `l` in `node`, on a thread of its own that waits for it.
fn run_tool(
    lab: &Lab,
    node: &str,
    l: &Loadable,
    tables: Option<&[u8]>,
    backend: Backend,
    open_watch: bool,
) -> Result<(Settling, Option<CommitWatch>), InstallError> {
    let tool = tool(l.kind, backend);
    let mut cmd = Command::new(tool);
    // Every tool reads the rules on its stdin: generated rules never touch the disk.
    match (l.kind, backend) {
        (RuleKind::Iptables, Backend::Legacy) => cmd.arg("-w"),
        (RuleKind::Iptables, Backend::Nft | Backend::System) => &mut cmd,
        (RuleKind::Nft, _) => cmd.arg("-f").arg("/dev/stdin"),
        (RuleKind::Ip, _) => cmd.arg("-batch").arg("-"),
        (RuleKind::Ipset, _) => cmd.arg("restore"),
        (RuleKind::Sysctl, _) => cmd.arg("-q").arg("-p").arg("/dev/stdin"),
    };
    let spawn_failed = |source| InstallError::Spawn {
        tool,
        node: node.to_string(),
        source,
    };
    let ns = lab.ns(node).clone();
    let tables = tables.map(<[u8]>::to_vec);
    let text = l.text.clone();
    // The write end is dropped when the tool has exited (it is close-on-exec: the tool does
    // not hold it).
    let (exited, exiting) = io::pipe().map_err(spawn_failed)?;
    let (watch_tx, watch_rx) = std::sync::mpsc::sync_channel(1);
    // The tool dies with the thread that spawned it (PR_SET_PDEATHSIG): this one waits for it.
    // It is in the node, where it opens the commit watch first (one thread start less before
    // the tool: on a loaded machine each takes a millisecond or more).
    let thread = lab
        .ns(node)
        .spawn(tool, move || {
            let watch = open_watch.then(|| CommitWatch::here().ok()).flatten();
            let child = spawn_piped(&ns, cmd, tables.as_deref(), None);
            // Handed over once the tool runs.
            let _ = watch_tx.send(watch);
            let out = child.and_then(|c| feed_and_wait(c, text.as_bytes()));
            drop(exiting);
            out
        })
        .map_err(spawn_failed)?;
    // Without a watch the tool's exit is waited for, as for any other.
    let watch = watch_rx.recv().ok().flatten();
    Ok((
        Settling {
            node: node.to_string(),
            loadable: l.clone(),
            tool,
            exited,
            thread,
        },
        watch,
    ))
}

/// A tool loading rules, on the thread that waits for it.
struct Settling {
    node: String,
    loadable: Loadable,
    tool: &'static str,
    /// Readable (at end of file) once the tool has exited.
    exited: io::PipeReader,
    thread: std::thread::JoinHandle<io::Result<io::Result<std::process::Output>>>,
}

impl Settling {
    /// Waits until the rules are in: until `watch` has seen the kernel commit `batches`
    /// batches (then the tool is handed back, still exiting), or until the tool has exited
    /// (then its status is checked here).
    fn wait(
        self,
        watch: Option<&mut CommitWatch>,
        batches: usize,
    ) -> Result<Option<Settling>, InstallError> {
        let outcome = match watch {
            Some(w) => w
                .wait(batches, self.exited.as_fd())
                .unwrap_or(Outcome::Exited),
            None => Outcome::Exited,
        };
        match outcome {
            Outcome::Committed => Ok(Some(self)),
            Outcome::Exited => self.finish().map(|()| None),
        }
    }

    /// Waits for the tool to exit: an error names the line it rejected.
    fn finish(self) -> Result<(), InstallError> {
        let Settling {
            node,
            loadable: l,
            tool,
            thread,
            ..
        } = self;
        let out = thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread waiting for it panicked")))
            .and_then(|r| r)
            .map_err(|source| InstallError::Spawn {
                tool,
                node: node.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let said = if said.is_empty() {
            format!("exit status {}", out.status)
        } else {
            said
        };
        Err(rejection(&node, &l, tool, &said))
    }
}

/// Spawns `cmd` inside `node`'s namespace. With `tables`, the command also gets a private
/// mount namespace in which those bytes are iproute2's rt_tables file: a tmpfs is mounted over
/// /tmp there, the file written into it and bound over rt_tables, and the tmpfs detached. The
/// file lives only in that mount namespace, so nothing is left on disk whatever ends the run.
///
/// The child gets SIGKILL when the spawning *thread* exits (PR_SET_PDEATHSIG): wait for it on
/// the thread that spawned it.
pub fn spawn_in(
    ns: &Netns,
    mut cmd: Command,
    tables: Option<&[u8]>,
    keep: Option<RawFd>,
) -> io::Result<std::process::Child> {
    let ns = ns.clone();
    let tables = match tables {
        None => None,
        Some(bytes) => Some((bytes.to_vec(), rt_tables_path()?)),
    };
    // iptables-legacy serialises writers with a lock file, /run/xtables.lock by default: a
    // file on the host, which an unprivileged run may not create, and which would make labs
    // wait for each other though each has tables of its own. Each tool gets a private one.
    // SAFETY: memfd_create with a static name; the result is checked.
    let lock = unsafe { libc::memfd_create(c"xtables.lock".as_ptr(), libc::MFD_CLOEXEC) };
    if lock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    let lock = unsafe { OwnedFd::from_raw_fd(lock) };
    let lock_fd = lock.as_raw_fd();
    cmd.env("XTABLES_LOCKFILE", format!("/proc/self/fd/{LOCK_FD}"));
    // SAFETY: the closure runs in the forked child before exec and only makes syscalls
    // (prctl, setns, dup2, unshare, mount, open, write, close, umount2) on values prepared
    // before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
            inherit_as(lock_fd, LOCK_FD)?;
            if let Some(fd) = keep {
                inherit_as(fd, TOPOLOGY_FD)?;
            }
            if let Some((bytes, target)) = &tables {
                private_rt_tables(bytes, target)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(lock);
    child
}

/// Makes `fd` the program's fd `to`, inherited across exec. dup2 clears close-on-exec on the
/// copy, but when `fd` already is `to` (a busy process can hand out fd 201 itself) it does
/// nothing, and the fd would close at exec: its close-on-exec flag is cleared instead. Only
/// syscalls: safe to call between fork and exec.
fn inherit_as(fd: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: fcntl and dup2 on fds the caller owns, no memory passed.
    let r = unsafe {
        if fd == to {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, to)
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The rt_tables file iproute2 reads on this machine.
pub(crate) fn rt_tables_path() -> io::Result<CString> {
    let target = RT_TABLES
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| {
            io::Error::other(
                "iproute2 has no rt_tables file (looked in /etc/iproute2 and /usr/share/iproute2)",
            )
        })?;
    cstr(Path::new(target))
}

/// Moves the calling process into a private mount namespace in which `bytes` are iproute2's
/// rt_tables file (at `target`): a tmpfs is mounted over /tmp, the file written into it and
/// bound over rt_tables, and the tmpfs detached. Only syscalls on prepared values: safe to
/// call between fork and exec.
pub(crate) fn private_rt_tables(bytes: &[u8], target: &CStr) -> io::Result<()> {
    const SCRATCH: &CStr = c"/tmp";
    const FILE: &CStr = c"/tmp/rt_tables";
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&CStr>,
        c"/",
        None::<&CStr>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&CStr>,
    )?;
    mount(
        Some(c"harness"),
        SCRATCH,
        Some(c"tmpfs"),
        MsFlags::empty(),
        Some(c"size=64k,mode=0755"),
    )?;
    // SAFETY: open/write/close on a NUL-terminated path and a live buffer.
    unsafe {
        let fd = libc::open(
            FILE.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(io::Error::other("writing the private rt_tables"));
        }
    }
    mount(
        Some(FILE),
        target,
        None::<&CStr>,
        MsFlags::MS_BIND,
        None::<&CStr>,
    )?;
    umount2(SCRATCH, MntFlags::MNT_DETACH)?;
    Ok(())
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("path with a NUL byte"))
}

/// Turns a tool's complaint into `file:line` with the offending line quoted, when the tool
/// names a line (`Error occurred at line: 5`, `Command failed FILE:3`, `FILE:3:1-5: Error`) or
/// the line can be found from what it quotes.
fn rejection(node: &str, l: &Loadable, tool: &'static str, said: &str) -> InstallError {
    let shown = l.shown.clone();
    // The name a tool gives its stdin in messages (`/dev/stdin:3:1-5`, `Command failed -:3`).
    let stdin_name = match l.kind {
        RuleKind::Nft | RuleKind::Sysctl => "/dev/stdin",
        _ => "-",
    };
    let lines: Vec<&str> = l.text.lines().collect();
    let located = match find_line(said, stdin_name) {
        Some(n) => Some(match jump_before_commit(&lines, n, said) {
            Some((k, chain)) => (
                k,
                format!(
                    "\n  (line {} is the table's COMMIT, where {tool} checks jumps; line {} \
                     jumps to `{chain}`: declare the chain with `:{chain} - [0:0]` or correct \
                     the target)",
                    l.first_line - 1 + n,
                    l.first_line - 1 + k
                ),
            ),
            None => (n, String::new()),
        }),
        None if l.kind == RuleKind::Ip => line_quoted(&lines, said).map(|(k, w)| {
            let note = format!("\n  ({tool} names no line; this is the first line with `{w}`)");
            (k, note)
        }),
        None => None,
    };
    let quoted = located.and_then(|(n, note)| {
        let text = lines.get(n.checked_sub(1)?)?;
        Some((n, text.trim(), note))
    });
    match quoted {
        Some((line, text, note)) => InstallError::RejectedLine {
            file: shown,
            // A section of a bundle starts further down its file.
            line: l.first_line - 1 + line,
            text: text.to_string(),
            tool,
            node: node.to_string(),
            said: said
                .lines()
                .filter(|l| !l.starts_with("Try `"))
                .collect::<Vec<_>>()
                .join("\n    ")
                + &note,
        },
        None => InstallError::Rejected {
            file: shown,
            tool,
            node: node.to_string(),
            said: said.to_string(),
        },
    }
}

/// iptables-restore (nf_tables) checks jumps when it commits a table and blames the `COMMIT`
/// line (`Chain 'X' does not exist`): the rule at fault is the one in that table that jumps to X.
fn jump_before_commit(lines: &[&str], n: usize, said: &str) -> Option<(usize, String)> {
    if lines.get(n.checked_sub(1)?).map(|l| l.trim()) != Some("COMMIT") {
        return None;
    }
    let chain = said.split('\'').nth(1).filter(|c| !c.is_empty())?;
    for k in (0..n - 1).rev() {
        let l = lines[k].trim();
        if l.starts_with('*') {
            break;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.windows(2)
            .any(|p| ["-j", "--jump", "-g", "--goto"].contains(&p[0]) && p[1] == chain)
        {
            return Some((k + 1, chain.to_string()));
        }
    }
    None
}

/// `ip -batch` stops without naming the line when it cannot parse one (`Command "frob" is
/// unknown`, `either "to" is duplicate, or "dve" is a garbage`): the first line that has a
/// word it quotes, trying the last quoted word first.
fn line_quoted<'a>(lines: &[&str], said: &'a str) -> Option<(usize, &'a str)> {
    let words: Vec<&str> = said
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && !w.contains(' '))
        .collect();
    words.iter().rev().find_map(|w| {
        lines
            .iter()
            .position(|l| {
                let l = l.trim();
                !l.starts_with('#') && l.split_whitespace().any(|x| x == *w)
            })
            .map(|k| (k + 1, *w))
    })
}

fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    p.canonicalize()
        .ok()
        .and_then(|c| c.strip_prefix(&cwd).ok().map(PathBuf::from))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

pub fn find_line(said: &str, path: &str) -> Option<usize> {
    let digits = |s: &str| -> Option<usize> {
        let d: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        d.parse().ok().filter(|n| *n > 0)
    };
    for l in said.lines() {
        if let Some(rest) = l.split("line: ").nth(1) {
            return digits(rest);
        }
        if let Some(rest) = l.split(&format!("{path}:")).nth(1) {
            return digits(rest);
        }
        if let Some(rest) = l.strip_prefix("iptables-restore: line ") {
            return digits(rest);
        }
        if let Some(rest) = l.split("Error in line ").nth(1) {
            return digits(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{find_line, jump_before_commit, line_quoted};
    use rstest::rstest;

    const TABLE: &[&str] = &[
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        "-A PREROUTING -j MARK --set-mark 1",
        "-A PREROUTING -i eth0 -j NOSUCH",
        "COMMIT",
    ];

    #[rstest]
    #[case::commit_blamed(5, "iptables-restore v1.8.9 (nf_tables): Chain 'NOSUCH' does not exist\nError occurred at line: 5", Some((4, "NOSUCH".to_string())))]
    #[case::line_itself(3, "unknown option \"--frob\"\nError occurred at line: 3", None)]
    #[case::no_such_jump(5, "Chain 'OTHER' does not exist", None)]
    fn commit(#[case] n: usize, #[case] said: &str, #[case] want: Option<(usize, String)>) {
        assert_eq!(jump_before_commit(TABLE, n, said), want);
    }

    #[rstest]
    #[case::unknown_command("Command \"frob\" is unknown, try \"ip rule help\".", Some((3, "frob")))]
    #[case::garbage("Error: either \"to\" is duplicate, or \"dve\" is a garbage.", Some((2, "dve")))]
    #[case::table("Error: argument \"rt_x\" is wrong: invalid table ID", Some((4, "rt_x")))]
    #[case::nothing_quoted("RTNETLINK answers: File exists", None)]
    fn quoted(#[case] said: &str, #[case] want: Option<(usize, &str)>) {
        let lines = [
            "# frob is not here",
            "route add default via 10.0.0.1 dve eth1",
            "rule frob",
            "rule add fwmark 2 table rt_x",
        ];
        assert_eq!(line_quoted(&lines, said), want);
    }

    #[rstest]
    #[case::iptables("iptables-restore v1.8.9 (nf_tables): unknown option \"--frob\"\nError occurred at line: 18\nTry `iptables-restore -h'", Some(18))]
    #[case::iptables_short("iptables-restore: line 7 failed", Some(7))]
    #[case::ip_batch(
        "Error: argument \"x\" is wrong: invalid table ID\nCommand failed /s/jupiter.ip:3",
        Some(3)
    )]
    #[case::nft("/s/jupiter.ip:12:5-9: Error: syntax error", Some(12))]
    #[case::ipset(
        "ipset v7.17: Error in line 4: The set with the given name does not exist",
        Some(4)
    )]
    #[case::none("Permission denied", None)]
    fn lines(#[case] said: &str, #[case] want: Option<usize>) {
        assert_eq!(find_line(said, "/s/jupiter.ip"), want);
    }
}

#[cfg(test)]
mod inherit_tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::inherit_as;

    /// A program gets fd `to` whether the fd handed over already has that number or not.
    /// (When the harness's own memfd came out as fd 201, dup2 onto itself kept close-on-exec,
    /// and iptables-legacy-restore found no lock file at `/proc/self/fd/201`.)
    #[test]
    fn the_program_inherits_the_fd_even_when_it_already_has_the_number() {
        for same in [true, false] {
            let to = if same { 901 } else { 902 };
            // SAFETY: memfd_create with a static name; checked below.
            let raw = unsafe { libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC) };
            assert!(raw >= 0);
            // SAFETY: a fresh fd nothing else owns.
            let fresh = unsafe { OwnedFd::from_raw_fd(raw) };
            let fd = if same {
                // SAFETY: F_GETFD only reads flags; a free number answers EBADF.
                let used = unsafe { libc::fcntl(to, libc::F_GETFD) } >= 0;
                assert!(!used, "fd {to} is in use");
                // SAFETY: dup3 onto `to`, free (checked above) and owned by no Rust object.
                let d = unsafe { libc::dup3(fresh.as_raw_fd(), to, libc::O_CLOEXEC) };
                assert_eq!(d, to);
                // SAFETY: the fd just made.
                unsafe { OwnedFd::from_raw_fd(d) }
            } else {
                fresh
            };
            let raw = fd.as_raw_fd();
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &format!("test -e /proc/self/fd/{to}")]);
            // SAFETY: inherit_as makes only syscalls on numbers prepared before the fork.
            unsafe {
                cmd.pre_exec(move || inherit_as(raw, to));
            }
            let ok = cmd.status().expect("sh runs").success();
            assert!(ok, "fd {to} not inherited (same number: {same})");
        }
    }
}

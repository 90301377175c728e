//! Nothing of a lab outlives its run: after `harness run` ends — passed (exit 0), failed
//! (exit 1), Ctrl-C (SIGINT to its process group) or `kill -9` (SIGKILL), each signal sent
//! once mid-traffic and once while a rule tool runs — no namespace, interface, process or
//! mount of the lab remains, and the starting namespace is exactly as before. The same holds
//! for a run as an unprivileged user (in a user namespace of its own) and for two runs of the
//! same scenario at once, which must both pass, for runs whose generator forks a daemon,
//! leaves a child holding its stdout, hangs or floods its output (#14 §2), and for runs with
//! daemons in the router (`- daemon:`, #18), each leaving a `setsid` child: passed (one
//! daemon ending on SIGTERM, one ignoring it), failed to load a later rule file once the
//! daemon ran (exit 2), Ctrl-C or `kill -9` mid-traffic.
//!
//! Each trial runs the real binary and, while it runs, records every namespace (of any kind)
//! that the harness or a process it started holds other than this process's own, and every
//! process it starts. Afterwards:
//!  (a) no process on the system holds any of those namespaces (task namespaces or fds);
//!      with them gone the kernel has destroyed the lab's veths, addresses and routes;
//!  (b) none of the processes it started is alive, nor any orphan of it (this process is a
//!      child subreaper: whatever the harness leaves behind is re-parented here);
//!  (c) `ip netns list` (and `ip netns list-id`) show nothing new;
//!  (d) links, addresses, routes, rules, nftables, iptables and net sysctls of the starting
//!      namespace are exactly as before;
//!  (e) this process's mount table is exactly as before.
//!
//! The trials compare host state, so they run one at a time (`HOST`). Without the privilege
//! to create namespaces they are reported ignored (under `CI=true` they fail).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed};
use nix::sys::signal::{kill, killpg, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

const PASSES: &str = "scenarios/dual-isp.yaml";
/// dual-isp.yaml with the no-restore rules and no `expect_failure:`: exits 1.
const FAILS: &str = "harness/tests/fixtures/cleanup/dual-isp-fails.yaml";
/// Declared broken (exits 0), and ~1 s of its run waits for the wan2 flows to time out: the
/// window in which the signals land.
const SLOW: &str = "scenarios/dual-isp-no-restore.yaml";

/// How long after the whole lab is seen a signal "mid-traffic" is sent. Building the lab and
/// installing the rules take well under 150 ms; the traffic then lasts ~1 s.
const INTO_TRAFFIC: Duration = Duration::from_millis(300);
/// How long the kernel gets to finish killing and freeing after the harness is reaped.
const GRACE: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(60);

static HOST: Mutex<()> = Mutex::new(());
static WARM_UP: Once = Once::new();

#[derive(Clone, Copy)]
enum End {
    Exit(i32),
    Signal(Signal, When),
}

/// Who runs the harness, and how many at once.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Root,
    /// `nobody` (uid 65534), through setpriv: the harness enters a user namespace itself.
    Nobody,
    /// Two runs of the same scenario side by side.
    TwoAtOnce,
}

#[derive(Clone, Copy)]
enum When {
    /// While the flows run: the lab's namespaces, veths, sockets and threads exist.
    Traffic,
    /// While a rule tool runs: also a child process in a private mount namespace with
    /// rt_tables bind-mounted, the only processes and mounts a lab has.
    Install,
}

/// Generators that misbehave (#14 §2), and the exit status of their run.
const GENERATORS: &[(&str, &str, i32)] = &[
    // `setsid sleep 100000 &`, then good rules: the daemon must not outlive the generator.
    (
        "generator_forks_daemon",
        "harness/tests/fixtures/cleanup/gen-daemon.yaml",
        0,
    ),
    // `sleep 100000 &` keeps the generator's stdout open: the run must not wait for it.
    (
        "generator_child_holds_stdout",
        "harness/tests/fixtures/cleanup/gen-holds-stdout.yaml",
        0,
    ),
    // `sleep 100000`: killed at the time limit (HARNESS_GENERATOR_TIMEOUT, set in `main`).
    (
        "generator_hangs",
        "harness/tests/fixtures/cleanup/gen-hangs.yaml",
        2,
    ),
    // 1 GiB on stdout: killed at the 64 MiB output limit.
    (
        "generator_floods",
        "harness/tests/fixtures/cleanup/gen-floods.yaml",
        2,
    ),
];

/// Runs with daemons in the router (#18), each leaving a `setsid` child, and their exit
/// status.
const DAEMONS: &[(&str, &str, i32)] = &[
    // One daemon ends on SIGTERM, the other ignores it (SIGKILL after the grace).
    (
        "daemon_passed",
        "harness/tests/fixtures/cleanup/daemon.yaml",
        0,
    ),
    // isp1's generator waits until the daemon runs, then prints a route `ip` rejects.
    (
        "daemon_rules_rejected_later",
        "harness/tests/fixtures/cleanup/daemon-rejected.yaml",
        2,
    ),
];
/// dual-isp-no-restore.yaml with a daemon in the router: signalled mid-traffic.
const DAEMON_SLOW: &str = "harness/tests/fixtures/cleanup/daemon-slow.yaml";

fn main() {
    // A hanging generator is killed after 2 s rather than the default 60 (see GENERATORS).
    std::env::set_var("HARNESS_GENERATOR_TIMEOUT", "2");
    let args = Arguments::from_args();
    // The trials watch this process's own namespaces: no user namespace is entered here.
    let lab = common::Needs::netns();
    if lab.met() {
        // Whatever the harness leaves running is re-parented here rather than to init: (b)
        // sees it even if it was never caught running, and its zombie is reaped here.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
            panic!("PR_SET_CHILD_SUBREAPER: {}", io::Error::last_os_error());
        }
    }
    let as_nobody = lab.and(&common::Needs::root());
    let needs = |who: Who| if who == Who::Nobody { &as_nobody } else { &lab };
    let trial = |name: String, scenario: &'static str, end: End, who: Who| {
        needs(who).trial(name, move || leaves_nothing(scenario, end, who))
    };
    let mut trials = vec![
        trial("passed".into(), PASSES, End::Exit(0), Who::Root),
        trial("failed".into(), FAILS, End::Exit(1), Who::Root),
        trial("passed_as_nobody".into(), PASSES, End::Exit(0), Who::Nobody),
        trial("failed_as_nobody".into(), FAILS, End::Exit(1), Who::Nobody),
        trial("two_at_once".into(), PASSES, End::Exit(0), Who::TwoAtOnce),
    ];
    for (when, w) in [(When::Traffic, "traffic"), (When::Install, "install")] {
        for (sig, s) in [(Signal::SIGINT, "sigint"), (Signal::SIGKILL, "sigkill")] {
            trials.push(trial(
                format!("{s}_mid_{w}"),
                SLOW,
                End::Signal(sig, when),
                Who::Root,
            ));
        }
    }
    for who in [Who::Root, Who::Nobody] {
        let name = if who == Who::Root {
            "keep_shell_down"
        } else {
            "keep_shell_down_as_nobody"
        };
        trials.push(needs(who).trial(name, move || keep_shell_down(who)));
    }
    // #14 §2: every process a generator starts dies with it; one that hangs or floods is
    // killed at its limit (exit 2). Root and rootless.
    for (name, scenario, code) in GENERATORS {
        trials.push(trial(
            name.to_string(),
            scenario,
            End::Exit(*code),
            Who::Root,
        ));
        trials.push(trial(
            format!("{name}_as_nobody"),
            scenario,
            End::Exit(*code),
            Who::Nobody,
        ));
    }
    // #18: a daemon and everything it started die with the run, however it ends.
    for (name, scenario, code) in DAEMONS {
        trials.push(trial(
            name.to_string(),
            scenario,
            End::Exit(*code),
            Who::Root,
        ));
        trials.push(trial(
            format!("{name}_as_nobody"),
            scenario,
            End::Exit(*code),
            Who::Nobody,
        ));
    }
    for (sig, s) in [(Signal::SIGINT, "sigint"), (Signal::SIGKILL, "sigkill")] {
        trials.push(trial(
            format!("daemon_{s}_mid_traffic"),
            DAEMON_SLOW,
            End::Signal(sig, When::Traffic),
            Who::Root,
        ));
    }
    trials.push(trial(
        "sigkill_mid_traffic_as_nobody".into(),
        SLOW,
        End::Signal(Signal::SIGKILL, When::Traffic),
        Who::Nobody,
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// Runs `scenario` as `who` says, ends it as `end` says, and checks (a)–(e).
fn leaves_nothing(scenario: &str, end: End, who: Who) -> Result<(), Failed> {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    // The first run on a fresh boot may load kernel modules (nf_conntrack, nf_tables, …)
    // that add sysctl files to the starting namespace; that is the kernel, not the lab.
    WARM_UP.call_once(|| {
        let st = harness_cmd(&repo_path(PASSES))
            .stdout(Stdio::null())
            .status()
            .expect("warm-up run");
        assert!(st.success(), "warm-up run of {PASSES}: {st}");
    });
    let before = Snapshot::take();
    let path = repo_path(scenario);
    let plan = harness::model::load(&path).map_err(|e| format!("{scenario}: {e}"))?;
    let nodes = plan.topology.nodes.len();

    // Output goes to a file, not a pipe: a pipe would make us wait for whatever the harness
    // leaves behind holding it. Its temporary files go to a directory of the trial's own.
    // Ctrl-C in a terminal signals the whole foreground process group: the run gets its own.
    let mut log = tempfile::tempfile()?;
    let tmp = tempfile::tempdir()?;
    let copy = match who {
        Who::Nobody => Some(world_readable_copy(scenario)?),
        _ => None,
    };
    let runs = if who == Who::TwoAtOnce { 2 } else { 1 };
    let mut children = Vec::new();
    for _ in 0..runs {
        let mut cmd = match &copy {
            Some(dir) => as_nobody(dir.path(), scenario),
            None => harness_cmd(&path),
        };
        children.push(
            cmd.env("TMPDIR", tmp.path())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .process_group(0)
                .spawn()?,
        );
    }
    let pid = Pid::from_raw(children[0].id() as i32);
    let started = Instant::now();
    let mut seen = Seen::default();
    let mut lab_at = None;
    let mut problems = Vec::new();
    loop {
        let mut tools = 0;
        for c in &children {
            tools += seen.record(Pid::from_raw(c.id() as i32));
        }
        let mut running = 0;
        for c in &mut children {
            running += usize::from(c.try_wait()?.is_none());
        }
        if running < children.len() {
            if running > 0 {
                // One of two runs at once ended: follow the other to its end.
                sleep(Duration::from_millis(1));
                continue;
            }
            if let End::Signal(sig, _) = end {
                problems.push(format!("the run ended before {sig} could be sent"));
            }
            break;
        }
        if seen.net() >= nodes * runs {
            lab_at.get_or_insert_with(Instant::now);
        }
        if let (End::Signal(sig, when), Some(t)) = (end, lab_at) {
            let now = match when {
                When::Traffic => t.elapsed() >= INTO_TRAFFIC,
                When::Install => tools > 0,
            };
            if now {
                match sig {
                    Signal::SIGINT => killpg(pid, sig)?,
                    _ => kill(pid, sig)?,
                }
                break;
            }
        }
        if started.elapsed() > TIMEOUT {
            for c in &children {
                let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            }
            problems.push(format!("the run took over {TIMEOUT:?}: killed"));
            break;
        }
        sleep(Duration::from_millis(1));
    }
    for child in &mut children {
        let status = child.wait()?;
        let (ok, expected) = match end {
            End::Exit(code) => (status.code() == Some(code), format!("exit status {code}")),
            End::Signal(sig, _) => (
                status.signal() == Some(sig as i32),
                format!("death by {sig}"),
            ),
        };
        if !ok {
            let mut said = String::new();
            log.seek(SeekFrom::Start(0))?;
            log.read_to_string(&mut said)?;
            problems.push(format!(
                "the run ended with {status}, expected {expected}; it said:\n{said}"
            ));
        }
    }
    if seen.net() < nodes * runs {
        problems.push(format!(
            "saw only {} of the {} network namespaces of {runs} lab(s) while they ran",
            seen.net(),
            nodes * runs
        ));
    }
    problems.extend(leftovers(&seen));
    problems.extend(before.diff(&Snapshot::take()));
    // Whatever ended the run, no temporary file may remain (the rt_tables file the rule tools
    // see lives only in their private mount namespace).
    let files: Vec<_> = fs::read_dir(tmp.path())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !files.is_empty() {
        problems.push(format!("temporary files left in TMPDIR: {files:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{scenario}:\n{}", problems.join("\n")).into())
    }
}

/// `run --keep` leaves the lab up; `shell jupiter -- iptables-save` shows the loaded rules
/// and `ip route show table rt_link1` knows the lab's table names; `down` then leaves nothing
/// (checked as for any run: (a)–(e), and no state file).
fn keep_shell_down(who: Who) -> Result<(), Failed> {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let before = Snapshot::take();
    let state = tempfile::tempdir()?;
    let state_dir = state.path().join("labs");
    let copy = match who {
        Who::Nobody => {
            fs::set_permissions(
                state.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o777),
            )?;
            Some(world_readable_copy(PASSES)?)
        }
        _ => None,
    };
    let harness = |args: &[&str]| -> Result<(i32, String), Failed> {
        let mut cmd = match &copy {
            Some(dir) => nobody(dir.path(), args),
            None => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
                c.args(args)
                    .current_dir(repo_path("."))
                    .stdin(Stdio::null());
                c
            }
        };
        let out = cmd.env("HARNESS_STATE_DIR", &state_dir).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        Ok((out.status.code().unwrap_or(-1), text))
    };
    let mut problems = Vec::new();
    let (code, said) = harness(&["run", "--keep", PASSES])?;
    if code != 0 || !said.contains("harness shell jupiter") || !said.contains("nsenter") {
        return Err(format!("run --keep: exit {code}, said:\n{said}").into());
    }
    // The keeper is now this process's child (the run exited; we are the subreaper).
    let me = std::process::id() as i32;
    let keepers: Vec<i32> = processes()
        .iter()
        .filter(|p| p.ppid == me && p.state != 'Z')
        .map(|p| p.pid)
        .collect();
    let mut seen = Seen::default();
    for &k in &keepers {
        seen.record(Pid::from_raw(k));
        seen.processes.extend(
            processes()
                .iter()
                .filter(|p| p.pid == k)
                .map(|p| (p.pid, p.start)),
        );
    }
    let nodes = harness::model::load(&repo_path(PASSES))?
        .topology
        .nodes
        .len();
    if seen.net() < nodes {
        problems.push(format!(
            "after run --keep, the keeper(s) {keepers:?} hold {} of the lab's {nodes} network namespaces",
            seen.net()
        ));
    }
    for (args, want) in [
        (
            &["shell", "jupiter", "--", "iptables-save"][..],
            "--restore-mark",
        ),
        (
            &[
                "shell", "jupiter", "--", "ip", "route", "show", "table", "rt_link1",
            ][..],
            "default via 10.37.1.254",
        ),
        (
            &["shell", "saturn", "--", "ip", "-br", "addr"][..],
            "192.168.157.3/24",
        ),
    ] {
        let (code, said) = harness(args)?;
        if code != 0 || !said.contains(want) {
            problems.push(format!(
                "`harness {}`: exit {code}, no `{want}` in:\n{said}",
                args.join(" ")
            ));
        }
    }
    let (code, said) = harness(&["shell", "mars", "--", "true"])?;
    if code != 2 || !said.contains("no node `mars`") {
        problems.push(format!("`harness shell mars`: exit {code}:\n{said}"));
    }
    let (code, said) = harness(&["down"])?;
    if code != 0 || !said.contains("removed lab `dual-isp`") {
        problems.push(format!("`harness down`: exit {code}:\n{said}"));
    }
    problems.extend(leftovers(&seen));
    problems.extend(before.diff(&Snapshot::take()));
    let files: Vec<_> = fs::read_dir(&state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !files.is_empty() {
        problems.push(format!("state files left after down: {files:?}"));
    }
    let (code, said) = harness(&["shell", "jupiter"])?;
    if code != 2 || !said.contains("no kept lab") {
        problems.push(format!("`harness shell` after down: exit {code}:\n{said}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

fn harness_cmd(scenario: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.arg("run").arg(scenario).stdin(Stdio::null());
    default_sigint(&mut cmd);
    cmd
}

/// What a run of `scenario` (dual-isp or a variant of it) reads, for `nobody`.
fn world_readable_copy(scenario: &str) -> Result<tempfile::TempDir, Failed> {
    common::world_readable_copy(&[
        scenario,
        "scenarios/dual-isp",
        "scenarios/dual-isp-no-restore",
        "topologies",
    ])
}

/// `harness run SCENARIO` as `nobody`, from a world-readable copy.
fn as_nobody(dir: &Path, scenario: &str) -> Command {
    nobody(dir, &["run", scenario])
}

/// `harness ARGS…` as `nobody`, from a world-readable copy, with Ctrl-C's default action.
fn nobody(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = common::as_nobody(dir, args);
    default_sigint(&mut cmd);
    cmd
}

/// A shell gives its foreground job default signal handling; a test runner started in the
/// background may have SIGINT ignored, which the harness would inherit.
fn default_sigint(cmd: &mut Command) {
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            signal(Signal::SIGINT, SigHandler::SigDfl)?;
            Ok(())
        });
    }
}

/// A namespace, `net:[4026532301]`, with its 64-bit id where the kernel gives it (NS_GET_ID,
/// Linux 6.18+). Inode numbers are recycled as soon as a namespace is freed, ids never are:
/// without the id, a namespace someone else creates meanwhile could pass for the lab's.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ns {
    link: String,
    id: Option<u64>,
}

impl Ns {
    /// The namespace `path` (a /proc link to `link`) refers to; `None` if it is gone.
    fn at(path: &Path, link: String) -> Option<Ns> {
        // NS_GET_ID = _IOR(NSIO = 0xb7, 0xd, __u64)
        const NS_GET_ID: u64 = 0x8008_b70d;
        let f = fs::File::open(path).ok()?;
        let mut id = 0u64;
        // SAFETY: NS_GET_ID writes one u64 through the pointer; older kernels say ENOTTY.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_ID as _, &mut id) };
        Some(Ns {
            link,
            id: (rc == 0).then_some(id),
        })
    }

    fn same(&self, other: &Ns) -> bool {
        self.link == other.link && (self.id == other.id || self.id.is_none() || other.id.is_none())
    }
}

/// What a run was seen to hold: namespaces and processes it started.
#[derive(Default)]
struct Seen {
    namespaces: BTreeSet<Ns>,
    /// (pid, start time): a pid alone may be reused.
    processes: BTreeSet<(i32, u64)>,
}

impl Seen {
    /// Adds what `root` and its descendants hold now; returns how many descendants it has.
    fn record(&mut self, root: Pid) -> usize {
        let own = own_namespaces();
        let all = processes();
        let mut tree = vec![root.as_raw()];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            for p in all.iter().filter(|p| p.ppid == parent) {
                tree.push(p.pid);
                self.processes.insert((p.pid, p.start));
            }
            i += 1;
        }
        for &pid in &tree {
            for (path, link) in namespaces_of(pid) {
                if !own.contains(&link) {
                    self.namespaces.extend(Ns::at(&path, link));
                }
            }
        }
        tree.len() - 1
    }

    /// Network namespaces seen.
    fn net(&self) -> usize {
        let links = self.namespaces.iter().map(|n| &n.link);
        links.filter(|l| l.starts_with("net:")).count()
    }
}

/// What is still there of what `seen` recorded, after giving the kernel `GRACE` to finish.
/// Reaps the zombies re-parented to this process.
fn leftovers(seen: &Seen) -> Vec<String> {
    let deadline = Instant::now() + GRACE;
    loop {
        let all = processes();
        let me = std::process::id() as i32;
        let mut left = Vec::new();
        for p in &all {
            if p.ppid == me && p.state == 'Z' {
                let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
            } else if p.ppid == me {
                left.push(format!(
                    "process {p} outlived the harness (orphan re-parented to the test)"
                ));
            } else if seen.processes.contains(&(p.pid, p.start)) && p.state != 'Z' {
                left.push(format!(
                    "process {p}, started by the harness, is still alive"
                ));
            }
            for (path, link) in namespaces_of(p.pid) {
                if !seen.namespaces.iter().any(|n| n.link == link) {
                    continue;
                }
                let Some(ns) = Ns::at(&path, link) else {
                    continue;
                };
                if seen.namespaces.iter().any(|n| n.same(&ns)) {
                    left.push(format!(
                        "{} of the lab is still held by process {p} ({})",
                        ns.link,
                        path.display()
                    ));
                }
            }
        }
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        sleep(Duration::from_millis(10));
    }
}

struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    start: u64,
    comm: String,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, state {})", self.pid, self.comm, self.state)
    }
}

/// Every process on the system, from /proc/*/stat.
fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let f: Vec<&str> = tail.split_whitespace().collect();
            Some(Proc {
                pid,
                state: f.first()?.chars().next()?,
                ppid: f.get(1)?.parse().ok()?,
                start: f.get(19)?.parse().ok()?,
                comm,
            })
        })
        .collect()
}

/// This process's namespaces, as `kind:[inode]`.
fn own_namespaces() -> BTreeSet<String> {
    let links = namespaces_of(std::process::id() as i32).into_iter();
    links.map(|(_, link)| link).collect()
}

/// Every namespace `pid` holds — those its threads are in and those it has open — as the
/// /proc path and what it links to, `kind:[inode]`.
fn namespaces_of(pid: i32) -> Vec<(PathBuf, String)> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let mut dirs = vec![base.join("ns"), base.join("fd")];
    if let Ok(tasks) = fs::read_dir(base.join("task")) {
        dirs.extend(tasks.flatten().map(|t| t.path().join("ns")));
    }
    const KINDS: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];
    let mut links = Vec::new();
    for dir in dirs {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            if target
                .split_once(":[")
                .is_some_and(|(kind, _)| KINDS.contains(&kind))
            {
                links.push((e.path(), target));
            }
        }
    }
    links
}

/// The starting namespace's state, by source (`ip rule`, a sysctl's path, …).
struct Snapshot(BTreeMap<String, String>);

const COMMANDS: &[&[&str]] = &[
    &["ip", "-d", "-o", "link", "show"],
    &["ip", "-o", "addr"],
    &["ip", "route", "show", "table", "all"],
    &["ip", "-6", "route", "show", "table", "all"],
    &["ip", "rule"],
    &["ip", "-6", "rule"],
    &["ip", "netns", "list"],
    &["ip", "netns", "list-id"],
    &["nft", "list", "ruleset"],
    &["iptables-save"],
    &["ip6tables-save"],
    &["iptables-legacy-save"],
    &["ip6tables-legacy-save"],
];

impl Snapshot {
    fn take() -> Snapshot {
        let mut s = BTreeMap::new();
        for cmd in COMMANDS {
            s.insert(cmd.join(" "), normalize(&output(cmd)));
        }
        s.insert(
            "/proc/self/mountinfo".into(),
            fs::read_to_string("/proc/self/mountinfo").unwrap_or_else(|e| format!("<{e}>")),
        );
        // No file here was seen to change on its own on an idle host (kernel 6.18).
        let mut sysctls = Vec::new();
        sysctl_files(Path::new("/proc/sys/net/ipv4/conf"), true, &mut sysctls);
        sysctl_files(Path::new("/proc/sys/net/ipv6/conf"), true, &mut sysctls);
        sysctl_files(Path::new("/proc/sys/net/ipv4"), false, &mut sysctls);
        for f in sysctls {
            let v =
                fs::read_to_string(&f).unwrap_or_else(|e| format!("<unreadable: {}>", e.kind()));
            s.insert(f.display().to_string(), v);
        }
        Snapshot(s)
    }

    /// One message per source that differs, with the lines gone (-) and new (+).
    fn diff(&self, after: &Snapshot) -> Vec<String> {
        let keys: BTreeSet<&String> = self.0.keys().chain(after.0.keys()).collect();
        let mut out = Vec::new();
        for k in keys {
            let (b, a) = (self.0.get(k), after.0.get(k));
            if b == a {
                continue;
            }
            let (b, a) = (b.map_or("", |s| s), a.map_or("", |s| s));
            // How many more times each line is there after than before.
            let mut count: BTreeMap<&str, i32> = BTreeMap::new();
            for l in b.lines() {
                *count.entry(l).or_default() -= 1;
            }
            for l in a.lines() {
                *count.entry(l).or_default() += 1;
            }
            let mut msg = format!("starting namespace changed: {k}");
            for (l, n) in count.into_iter().filter(|(_, n)| *n != 0) {
                let sign = if n < 0 { '-' } else { '+' };
                for _ in 0..n.abs() {
                    msg.push_str(&format!("\n  {sign} {l}"));
                }
            }
            out.push(msg);
        }
        out
    }
}

/// A command's stdout, with its status and stderr when it fails.
fn output(cmd: &[&str]) -> String {
    match Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => "<not installed>".into(),
        Err(e) => format!("<{e}>"),
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            if !o.status.success() {
                s.push_str(&format!(
                    "<{}> {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
            s
        }
    }
}

/// Drops comment lines (`# Generated by iptables-save … on <date>`) and blanks what moves
/// on its own: packet/byte counters, address lifetimes, route expiry.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut blank_next = false;
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| {
                let counter = w.starts_with('[') && w.ends_with(']') && w.contains(':');
                let blank = std::mem::replace(
                    &mut blank_next,
                    matches!(
                        w,
                        "packets" | "bytes" | "valid_lft" | "preferred_lft" | "expires"
                    ),
                );
                if blank || counter {
                    "_"
                } else {
                    w
                }
            })
            .collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// The files under `dir` (and, with `deep`, its subdirectories).
fn sysctl_files(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() && deep => sysctl_files(&e.path(), true, out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

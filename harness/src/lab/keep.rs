//! Kept labs: `harness run --keep` hands the lab's namespaces to a small keeper process that
//! outlives the run, and `harness shell` / `harness down` find it again.
//!
//! The keeper is the harness forked after the run: a new session, no open files but the
//! nodes' namespace fds (at fds 100, 101, … in node order) and, when the rule files name
//! routing tables, a private mount namespace in which iproute2 knows those names. It does
//! nothing but wait for SIGTERM; when it dies, the kernel removes the lab. A state file per
//! kept lab (JSON, in [`state_dir`]) says where it is. A lab that is not kept never gets a
//! keeper: it still vanishes with the run, `kill -9` included.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::Lab;

/// The keeper's fd for the first node's namespace; the others follow in node order.
const FIRST_FD: RawFd = 100;
/// The most nodes a kept lab may have (the keeper prepares its fds on the stack).
const MAX_NODES: usize = 256;

/// What the state file of a kept lab records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The scenario's name (`dual-isp`).
    pub scenario: String,
    pub file: String,
    pub pid: i32,
    /// The keeper's start time (clock ticks since boot): a pid alone may be reused.
    pub start: u64,
    /// Each node and the keeper's fd for its network namespace.
    pub nodes: Vec<(String, RawFd)>,
    /// The keeper has a private mount namespace (iproute2 knows the lab's table names there).
    pub mount_ns: bool,
}

impl Kept {
    /// `/proc/PID/fd/N`: the namespace of `node`.
    pub fn net_path(&self, node: &str) -> Option<String> {
        let fd = self.nodes.iter().find(|(n, _)| n == node)?.1;
        Some(format!("/proc/{}/fd/{fd}", self.pid))
    }

    /// Whether the keeper lives in a user namespace other than the caller's (a rootless run).
    fn foreign_user_ns(&self) -> bool {
        let ino = |p: String| fs::metadata(p).map(|m| m.ino()).ok();
        ino(format!("/proc/{}/ns/user", self.pid)) != ino("/proc/self/ns/user".into())
    }

    /// An nsenter line that enters `node`, for those who prefer the standard tool, to be run
    /// by the user who kept the lab (from outside the user namespace of a rootless run).
    pub fn nsenter(&self, node: &str) -> Option<String> {
        let net = self.net_path(node)?;
        let mut line = String::from("nsenter");
        if crate::rootless::process_in_user_namespace(&self.pid.to_string()) {
            line += &format!(" --user=/proc/{}/ns/user --preserve-credentials", self.pid);
        }
        if self.mount_ns {
            line += &format!(" --mount=/proc/{}/ns/mnt", self.pid);
        }
        Some(line + &format!(" --net={net}"))
    }

    fn alive(&self) -> bool {
        process_start(self.pid) == Some(self.start)
    }
}

/// Where the state files of kept labs live: `$HARNESS_STATE_DIR`, else /run/harness for root,
/// `$XDG_RUNTIME_DIR/harness` or /tmp/harness-UID for others.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HARNESS_STATE_DIR") {
        return PathBuf::from(d);
    }
    match crate::rootless::outer_uid() {
        0 => PathBuf::from("/run/harness"),
        uid => std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| PathBuf::from(d).join("harness"))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/harness-{uid}"))),
    }
}

/// A process's start time from /proc/PID/stat, or None when it is gone (or a zombie).
fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, starttime field 22.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if rest.first() == Some(&"Z") {
        return None;
    }
    rest.get(19)?.parse().ok()
}

fn errno() -> u8 {
    io::Error::last_os_error()
        .raw_os_error()
        .map_or(255, |e| e.clamp(1, 254) as u8)
}

/// Hands `lab` to a keeper process and writes its state file. `tables` are the routing table
/// names the rule files use.
pub fn keep(
    lab: Lab,
    scenario: &str,
    file: &Path,
    tables: &[(String, u32)],
) -> Result<Kept, String> {
    let dir = state_dir();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating the state directory {}: {e}", dir.display()))?;
    let names: Vec<String> = lab.nodes.keys().cloned().collect();
    let fds: Vec<RawFd> = lab.nodes.values().map(|ns| ns.raw_fd()).collect();
    let n = fds.len() as RawFd;
    let rt = if tables.is_empty() {
        None
    } else {
        let path = crate::install::rt_tables_path().map_err(|e| e.to_string())?;
        Some((crate::install::rt_tables(tables), path))
    };
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("creating a pipe for the keeper: {e}"))?;
    let (devnull, name) = (c"/dev/null", c"harness-keep");
    // SAFETY: the child runs only syscalls on values prepared above (no allocation, no locks)
    // and never returns: it reports one status byte, then waits for SIGTERM or exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("starting the keeper: {e}"))? {
        // SAFETY: as above; every pointer passed is to a live, NUL-terminated or sized value.
        nix::unistd::ForkResult::Child => unsafe {
            let status = (|| -> u8 {
                if libc::setsid() < 0 {
                    return errno();
                }
                libc::prctl(libc::PR_SET_NAME, name.as_ptr());
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                let null = libc::open(devnull.as_ptr(), libc::O_RDWR);
                if null < 0 {
                    return errno();
                }
                for std in 0..3 {
                    libc::dup2(null, std);
                }
                // Copies above the target range first, so no dup2 below clobbers a source.
                let mut tmp = [0 as RawFd; MAX_NODES];
                for (i, fd) in fds.iter().enumerate().take(MAX_NODES) {
                    tmp[i] = libc::fcntl(*fd, libc::F_DUPFD, FIRST_FD + n + 1);
                    if tmp[i] < 0 {
                        return errno();
                    }
                }
                for (i, t) in tmp.iter().enumerate().take(fds.len()) {
                    if libc::dup2(*t, FIRST_FD + i as RawFd) < 0 {
                        return errno();
                    }
                }
                if let Some((bytes, target)) = &rt {
                    if crate::install::private_rt_tables(bytes, target).is_err() {
                        return errno();
                    }
                }
                0
            })();
            let status = if fds.len() > MAX_NODES {
                libc::E2BIG as u8
            } else {
                status
            };
            libc::write(wr.as_raw_fd(), [status].as_ptr().cast(), 1);
            if status != 0 {
                libc::_exit(1);
            }
            // Nothing open but stdio and the namespaces.
            libc::syscall(libc::SYS_close_range, 3u32, (FIRST_FD - 1) as u32, 0u32);
            libc::syscall(libc::SYS_close_range, (FIRST_FD + n) as u32, u32::MAX, 0u32);
            loop {
                libc::pause();
            }
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            drop(lab);
            let mut byte = [255u8];
            let got = nix::unistd::read(&rd, &mut byte).unwrap_or(0);
            if got != 1 || byte[0] != 0 {
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(format!(
                    "the keeper process could not take the lab: {}",
                    io::Error::from_raw_os_error(byte[0] as i32)
                ));
            }
            let pid = child.as_raw();
            let kept = Kept {
                scenario: scenario.to_string(),
                file: file.display().to_string(),
                pid,
                start: process_start(pid).ok_or("the keeper process died at once")?,
                nodes: names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| (name, FIRST_FD + i as RawFd))
                    .collect(),
                mount_ns: rt.is_some(),
            };
            let path = dir.join(format!("{scenario}-{pid}.json"));
            let json = serde_json::to_string_pretty(&kept).expect("serializable");
            if let Err(e) = fs::write(&path, json) {
                let _ = kill(child, Signal::SIGKILL);
                return Err(format!("writing {}: {e}", path.display()));
            }
            Ok(kept)
        }
    }
}

/// Every kept lab whose keeper is alive, oldest first; state files of dead keepers are removed.
pub fn list() -> Vec<(PathBuf, Kept)> {
    let Ok(entries) = fs::read_dir(state_dir()) else {
        return Vec::new();
    };
    let mut all: Vec<(PathBuf, Kept)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let k: Kept = serde_json::from_str(&fs::read_to_string(&p).ok()?).ok()?;
            if k.alive() {
                Some((p, k))
            } else {
                let _ = fs::remove_file(&p);
                None
            }
        })
        .collect();
    all.sort_by_key(|(_, k)| k.start);
    all
}

/// The kept lab `which` names (scenario name or keeper pid), or the only one.
pub fn find(which: Option<&str>) -> Result<Kept, String> {
    let all = list();
    let names = || {
        all.iter()
            .map(|(_, k)| format!("{} (pid {})", k.scenario, k.pid))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hits: Vec<&Kept> = all
        .iter()
        .map(|(_, k)| k)
        .filter(|k| which.is_none_or(|w| w == k.scenario || w == k.pid.to_string()))
        .collect();
    match (hits.as_slice(), which) {
        ([k], _) => Ok((*k).clone()),
        ([], None) => Err(format!(
            "no kept lab (looked in {}): start one with `harness run --keep SCENARIO`",
            state_dir().display()
        )),
        ([], Some(w)) if all.is_empty() => Err(format!(
            "no kept lab `{w}`: there is none (looked in {})",
            state_dir().display()
        )),
        ([], Some(w)) => Err(format!("no kept lab `{w}`; kept: {}", names())),
        (_, _) => Err(format!(
            "{} labs are kept: say which with `--lab NAME` (or the keeper's pid): {}",
            hits.len(),
            names()
        )),
    }
}

/// Moves this process into `node` of a kept lab: its user namespace when it lives in another
/// (rootless), its mount namespace, its network namespace. The process must have one thread.
pub fn enter(k: &Kept, node: &str) -> Result<(), String> {
    let net = k.net_path(node).ok_or_else(|| {
        let nodes: Vec<&str> = k.nodes.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "lab `{}` has no node `{node}`; its nodes: {}",
            k.scenario,
            nodes.join(", ")
        )
    })?;
    let open = |p: &str| fs::File::open(p).map_err(|e| format!("opening {p}: {e}"));
    let user = k
        .foreign_user_ns()
        .then(|| open(&format!("/proc/{}/ns/user", k.pid)))
        .transpose()?;
    let mnt = k
        .mount_ns
        .then(|| open(&format!("/proc/{}/ns/mnt", k.pid)))
        .transpose()?;
    let net = open(&net)?;
    let cwd = std::env::current_dir().ok();
    if let Some(f) = &user {
        setns(f, CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("entering the lab's user namespace: {e}"))?;
    }
    if let Some(f) = &mnt {
        setns(f, CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("entering the lab's mount namespace: {e}"))?;
        // Entering a mount namespace moves to its root; come back to where we were.
        if let Some(d) = cwd {
            let _ = std::env::set_current_dir(d);
        }
    }
    setns(&net, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering node `{node}`: {e}"))?;
    Ok(())
}

/// Stops the keeper of `k` (SIGTERM, then SIGKILL after 2 s) and removes its state file.
/// Returns the processes that still hold one of its namespaces (a shell left inside).
pub fn remove(k: &Kept) -> Result<Vec<String>, String> {
    let ids: Vec<(u64, u64)> = k
        .nodes
        .iter()
        .filter_map(|(n, _)| fs::metadata(k.net_path(n)?).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if k.alive() {
        let pid = Pid::from_raw(k.pid);
        kill(pid, Signal::SIGTERM).map_err(|e| format!("stopping keeper {}: {e}", k.pid))?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while k.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if k.alive() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    let path = state_dir().join(format!("{}-{}.json", k.scenario, k.pid));
    let _ = fs::remove_file(path);
    let _ = fs::remove_dir(state_dir());
    let mut holders = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let held = fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())));
        if held {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            holders.push(format!("{pid} ({})", comm.trim()));
        }
    }
    Ok(holders)
}

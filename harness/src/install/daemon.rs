//! Daemons: `- daemon: COMMAND` in a node's rules, a program that runs inside the node for the
//! whole run (a monitor, as mwan3track is to mwan3), started once all of the node's rule
//! sources are loaded and the lab is wired, and stopped when the run ends.
//!
//! It gets what a generator gets (the facts on stdin and in `$HARNESS_TOPOLOGY`,
//! `HARNESS_NODE`, `HARNESS_UPLINKS`, the node's table names in a private rt_tables, the
//! scenario's folder as its working folder) but it is not waited for.
//!
//! # Nothing outlives the run
//! Each daemon is `sh -c COMMAND` as the first process of a PID namespace of its own (as a
//! generator is), in a process group of its own. When the first process of a PID namespace
//! exits, the kernel kills every other process in it (a `setsid` grandchild too) before
//! anyone sees the exit. So:
//! - when the run ends (passed, failed, an error, a panic that unwinds: [`Daemon`]'s `Drop`),
//!   SIGTERM goes to the daemon's process group; its shell ends once its foreground command
//!   has ([`ON_TERM`]); after [`GRACE`], SIGKILL goes to the shell, which takes the namespace
//!   down; it is reaped;
//! - when the harness dies (Ctrl-C, SIGTERM, `kill -9`), the thread that started the daemon
//!   dies with it, and PR_SET_PDEATHSIG kills the first process (SIGKILL, no grace): the
//!   namespace goes with it.
//!
//! What it prints (stdout and stderr into one pipe, in the order written) is kept, the last
//! [`OUTPUT_KEPT`] bytes; if it exits before the run ends, when and how is recorded. Neither
//! is an error: a monitor that died is worth saying, and the scenario's expectations judge
//! the network.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};

use super::generator::{nonblocking, pidfd_open};
use super::InstallError;
use crate::lab::spawn::{spawn_in, PASSED_FD};
use crate::lab::Lab;
use crate::model::Plan;
use crate::observe::daemons::{DaemonEnd, DaemonRun, GRACE_MS, OUTPUT_KEPT};

/// How long a daemon has, after SIGTERM to its process group, before SIGKILL.
pub const GRACE: Duration = Duration::from_millis(GRACE_MS);

/// What the daemon's shell runs before its command line: the shell is its PID namespace's
/// first process, which would ignore SIGTERM without a handler (the kernel's rule for a PID
/// namespace's init). With this one it ends on SIGTERM as any shell would, once its
/// foreground command has ended (a program's own trap for SIGTERM runs to its end); a
/// command line that traps SIGTERM itself replaces it.
const ON_TERM: &str = "trap 'exit 143' TERM; ";

/// A daemon running in a node (see the module's documentation). Dropping it stops it.
pub struct Daemon {
    /// Closed to tell the daemon's thread to stop it.
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<DaemonRun>>,
}

impl Daemon {
    /// Starts `line` inside `node`, from folder `cwd`, with the node's table names `tables`;
    /// returns once it runs.
    pub fn start(
        lab: &Lab,
        plan: &Plan,
        node: &str,
        line: &str,
        cwd: &Path,
        tables: Option<&[u8]>,
    ) -> Result<Daemon, InstallError> {
        let spawn_error = |error: io::Error| InstallError::Spawn {
            tool: "sh",
            node: node.to_string(),
            error,
        };
        let facts = crate::model::facts(&plan.topology, node).to_string();
        let memfd = nix::sys::memfd::memfd_create(
            c"harness-topology",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| spawn_error(e.into()))?;
        let mut facts_file = File::from(memfd);
        io::Write::write_all(&mut facts_file, facts.as_bytes()).map_err(spawn_error)?;
        // Its stdin: the same facts, read from the start (an open file of its own).
        let stdin =
            File::open(format!("/proc/self/fd/{}", facts_file.as_raw_fd())).map_err(spawn_error)?;
        let (out_r, out_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error(e.into()))?;
        let (stop_r, stop_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error(e.into()))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{ON_TERM}{line}"))
            .current_dir(cwd)
            .env("HARNESS_TOPOLOGY", format!("/proc/self/fd/{PASSED_FD}"))
            .env("HARNESS_NODE", node)
            .env("HARNESS_UPLINKS", crate::model::uplinks_env(&plan.topology))
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(out_w.try_clone().map_err(spawn_error)?))
            .stderr(Stdio::from(out_w))
            .process_group(0);
        let ns = lab.ns(node).clone();
        let tables = tables.map(<[u8]>::to_vec);
        let run = DaemonRun {
            node: node.to_string(),
            command: line.to_string(),
            end: DaemonEnd::Stopped,
            output: String::new(),
            output_cut: false,
        };
        let (started, spawned) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("daemon-{node}"))
            .spawn(move || {
                // The daemon dies with this thread (PR_SET_PDEATHSIG): it lives until the
                // daemon is reaped. `unshare(CLONE_NEWPID)` puts its next child in a new PID
                // namespace.
                let child = unshare(CloneFlags::CLONE_NEWPID)
                    .map_err(io::Error::from)
                    .and_then(|()| {
                        spawn_in(&ns, cmd, tables.as_deref(), Some(facts_file.as_raw_fd()))
                    });
                drop(facts_file);
                let child = match child {
                    Ok(c) => {
                        let _ = started.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return run;
                    }
                };
                watch(child, File::from(out_r), stop_r, run)
            })
            .map_err(spawn_error)?;
        let daemon = Daemon {
            stop: Some(stop_w),
            thread: Some(thread),
        };
        match spawned.recv() {
            Ok(Ok(())) => Ok(daemon),
            Ok(Err(e)) => Err(spawn_error(e)),
            Err(_) => Err(spawn_error(io::Error::other("the daemon's thread ended"))),
        }
    }

    /// Asks its thread to stop it (SIGTERM, then SIGKILL after [`GRACE`]), without waiting.
    fn signal_stop(&mut self) {
        self.stop.take();
    }

    /// Waits until it is gone: how it ended and what it printed.
    fn join(&mut self) -> Option<DaemonRun> {
        self.thread
            .take()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal_stop();
        // A panic in its thread is not one to raise while dropping.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every daemon of a run.
#[derive(Default)]
pub struct Daemons(pub Vec<Daemon>);

impl Daemons {
    /// Stops them all at once (each gets SIGTERM, then SIGKILL after [`GRACE`]) and waits
    /// until every one is gone: how each ended and what it printed, in the order started.
    pub fn stop(mut self) -> Vec<DaemonRun> {
        for d in &mut self.0 {
            d.signal_stop();
        }
        self.0.iter_mut().filter_map(Daemon::join).collect()
    }
}

/// Reads the daemon's output until it is gone: it exits by itself, or `stop` closes and it is
/// stopped. Runs on the thread that spawned it.
fn watch(mut child: Child, mut out: File, stop: OwnedFd, mut run: DaemonRun) -> DaemonRun {
    let started = Instant::now();
    let pid = child.id() as libc::pid_t;
    let Ok(pidfd) = pidfd_open(child.id()) else {
        // Cannot watch it (a child of ours always has a pidfd): end it at once.
        let _ = child.kill();
        let _ = child.wait();
        run.end = DaemonEnd::Killed;
        return run;
    };
    let _ = nonblocking(out.as_raw_fd());
    let mut output = Vec::new();
    let mut out_open = true;
    // When SIGKILL is due, once SIGTERM has gone to its process group.
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    // Once it has exited, until when its output may still close (every process of its PID
    // namespace is gone by then: at once).
    let mut exited_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if let Some(t) = exited_at {
            if !out_open || now >= t + Duration::from_secs(1) {
                break;
            }
        } else if kill_at.is_some_and(|t| now >= t) && !killed {
            // The namespace's first process: the kernel kills every other with it.
            let _ = child.kill();
            killed = true;
        }
        let on = |yes: bool, fd: RawFd| if yes { fd } else { -1 };
        let mut fds = [
            libc::pollfd {
                fd: on(out_open, out.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: on(exited_at.is_none(), pidfd.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: on(kill_at.is_none() && exited_at.is_none(), stop.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let wake = match (exited_at, kill_at) {
            (Some(t), _) => Some(t + Duration::from_secs(1)),
            (None, Some(t)) if !killed => Some(t),
            _ => None,
        };
        let ms = wake.map_or(-1, |w| {
            w.saturating_duration_since(now)
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32
        });
        // SAFETY: three pollfds in a live array; poll writes only their revents.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Cannot watch it: end it.
            kill_at = Some(now);
            continue;
        }
        if out_open && fds[0].revents != 0 {
            out_open = keep_tail(&mut out, &mut output, &mut run.output_cut);
        }
        if fds[2].revents != 0 {
            // The run ends: SIGTERM to its process group (its shell, the command and
            // whatever it started that stayed in the group).
            // SAFETY: kill(2) with a negative pid (a process group) and a signal number.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            kill_at = Some(Instant::now() + GRACE);
        }
        if fds[1].revents != 0 {
            exited_at = Some(Instant::now());
            let status = child.wait().ok();
            run.end = match (killed, kill_at) {
                (true, _) => DaemonEnd::Killed,
                (false, Some(_)) => DaemonEnd::Stopped,
                (false, None) => DaemonEnd::Exited {
                    after_ms: started.elapsed().as_millis() as u64,
                    code: status.and_then(|s| s.code()),
                    signal: status.and_then(|s| s.signal()),
                },
            };
        }
    }
    run.output = String::from_utf8_lossy(&output).into_owned();
    run
}

/// Reads what is there from `pipe` into `buf`, keeping its last [`OUTPUT_KEPT`] bytes (`cut`
/// set once any were dropped): whether the pipe is still open.
fn keep_tail(pipe: &mut File, buf: &mut Vec<u8>, cut: &mut bool) -> bool {
    let mut chunk = [0u8; 16 << 10];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > OUTPUT_KEPT {
                    let extra = buf.len() - OUTPUT_KEPT;
                    buf.drain(..extra);
                    *cut = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

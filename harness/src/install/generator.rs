//! Generators: a command run inside a node that prints the node's rules. It is the user's
//! program, so the harness bounds it: a time limit, an output limit, and every process it
//! starts dies with it.
//!
//! # Every process it starts dies with it
//! A process group is not enough (`setsid` leaves it), nor is PR_SET_PDEATHSIG (it reaches
//! only the direct child), nor is a child subreaper (the harness would have to find and kill
//! the daemons itself, racing their forks). The generator runs as the first process of a PID
//! namespace of its own instead: when that process exits, or is killed at a limit, the kernel
//! kills every other process in the namespace, daemons and children holding its stdout alike,
//! before the harness even sees the exit. A PID namespace needs CAP_SYS_ADMIN in the current
//! user namespace, which the harness has both as root and rootless (where it is root of a user
//! namespace of its own, see `rootless`); unlike a cgroup it needs no delegated cgroupfs.
//!
//! `unshare(CLONE_NEWPID)` puts the caller's *next* child into a new namespace, and works once
//! per thread: the generator is spawned from a fresh thread that does just that. The
//! generator keeps the harness's /proc (it sees its own pid through /proc/self, so the
//! topology file at `/proc/self/fd/200` still opens); it dies with that thread
//! (PR_SET_PDEATHSIG), so with the harness.
//!
//! What a generator notices: it is PID 1 of its namespace (`$$` is 1, and /proc, the
//! harness's, shows the host's pid 1 there), orphans are re-parented to it, and as PID 1 it
//! ignores signals it has no handler for when they come from inside its namespace. None of
//! that matters to a program that prints rules.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};

use crate::lab::Netns;

/// The default time a generator has to finish.
pub const DEFAULT_TIME: Duration = Duration::from_secs(60);
/// The default most a generator may print on stdout.
pub const DEFAULT_OUTPUT: usize = 64 << 20;
/// How much of a generator's stderr is kept for messages.
const STDERR_KEPT: usize = 64 << 10;

/// Set from the command line (`--generator-timeout`); wins over the environment.
static TIME_SET: OnceLock<Duration> = OnceLock::new();

/// Sets the time limit for every generator of this process (`--generator-timeout`).
pub fn set_time_limit(limit: Duration) {
    let _ = TIME_SET.set(limit);
}

/// How long a generator may run and how much it may print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub time: Duration,
    pub output: usize,
}

impl Limits {
    /// `--generator-timeout`, else `HARNESS_GENERATOR_TIMEOUT` (seconds), else 60 s;
    /// `HARNESS_GENERATOR_MAX_OUTPUT` (bytes, or with a `KiB`, `MiB`, `GiB` suffix), else 64 MiB.
    pub fn current() -> Result<Limits, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let time = match (TIME_SET.get(), env("HARNESS_GENERATOR_TIMEOUT")) {
            (Some(t), _) => *t,
            (None, Some(v)) => {
                parse_seconds(&v).map_err(|m| format!("HARNESS_GENERATOR_TIMEOUT=`{v}`: {m}"))?
            }
            (None, None) => DEFAULT_TIME,
        };
        let output = match env("HARNESS_GENERATOR_MAX_OUTPUT") {
            Some(v) => parse_bytes(&v).ok_or_else(|| {
                format!("HARNESS_GENERATOR_MAX_OUTPUT=`{v}`: write a number of bytes, e.g. `64MiB`")
            })?,
            None => DEFAULT_OUTPUT,
        };
        Ok(Limits { time, output })
    }
}

/// `2`, `0.5`: a positive number of seconds.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| "write a positive number of seconds, e.g. `60`".to_string())
}

/// `1048576`, `64MiB`, `512 KiB`, `1GiB`.
fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = digits.parse().ok()?;
    let shift = match unit.trim() {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift).filter(|n| *n > 0)
}

/// `64 MiB`, `1.5 KiB`, `100 bytes`.
pub fn show_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// How a generator ended.
#[derive(Debug)]
pub enum Ended {
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// Killed at the time limit, with every process it started.
    TimedOut(Duration),
    /// Killed once it had printed more than the limit, with every process it started.
    TooMuch(usize),
}

/// Runs `spawn` (which starts the generator with stdin, stdout and stderr piped) as the first
/// process of a new PID namespace, from a fresh thread in `ns`; feeds it `input`, collects its
/// output within `limits`, and returns once it and every process it started are gone.
pub fn run(
    ns: &Netns,
    spawn: impl FnOnce() -> io::Result<Child> + Send + 'static,
    input: Vec<u8>,
    limits: Limits,
) -> io::Result<Ended> {
    ns.run(move || -> io::Result<Ended> {
        unshare(CloneFlags::CLONE_NEWPID)?;
        let child = spawn()?;
        watch(child, input, limits)
    })?
}

/// Feeds and reads `child` until it has exited and its pipes are closed, or a limit is crossed.
fn watch(mut child: Child, input: Vec<u8>, limits: Limits) -> io::Result<Ended> {
    let deadline = Instant::now() + limits.time;
    let pidfd = pidfd_open(child.id())?;
    // Written as the generator reads it, in the same loop: it may fill its output pipe before
    // reading it all. (This thread cannot start another: after `unshare(CLONE_NEWPID)` the
    // kernel refuses it new threads.)
    let mut stdin = Some(child.stdin.take().expect("piped"));
    let mut fed = 0;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    for fd in [
        stdin.as_ref().map(AsRawFd::as_raw_fd),
        Some(out.as_raw_fd()),
        Some(err.as_raw_fd()),
    ] {
        nonblocking(fd.expect("piped"))?;
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open, mut exited) = (true, true, false);
    let ended = loop {
        if exited && !out_open && !err_open {
            break None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Some(Ended::TimedOut(limits.time));
        }
        let fd = |open: bool, fd: RawFd| if open { fd } else { -1 };
        let mut fds = [
            libc::pollfd {
                fd: fd(out_open, out.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: fd(err_open, err.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: fd(!exited, pidfd.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stdin.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: four pollfds in a live array; poll writes only their revents.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        if out_open && fds[0].revents != 0 {
            let (open, over) = drain(&mut out, &mut stdout, limits.output, true)?;
            out_open = open;
            if over {
                break Some(Ended::TooMuch(limits.output));
            }
        }
        if err_open && fds[1].revents != 0 {
            err_open = drain(&mut err, &mut stderr, STDERR_KEPT, false)?.0;
        }
        if fds[3].revents != 0 {
            if let Some(pipe) = stdin.as_mut() {
                match std::io::Write::write(pipe, &input[fed..]) {
                    Ok(n) => fed += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // A generator that stops reading early closes the pipe: not our error.
                    Err(_) => fed = input.len(),
                }
            }
            if fed == input.len() {
                // Closed: the generator sees the end of its input.
                stdin = None;
            }
        }
        // Once the first process has exited, the kernel has already killed the rest.
        exited |= fds[2].revents != 0;
    };
    if ended.is_some() {
        // The namespace's first process: the kernel kills all the others with it.
        let _ = child.kill();
    }
    drop(stdin);
    let status = child.wait()?;
    Ok(ended.unwrap_or(Ended::Exited {
        status,
        stdout,
        stderr,
    }))
}

/// Reads what is there into `buf`, at most `keep` bytes: whether the pipe is still open, and
/// whether more than `keep` bytes came (then reading stops at once when `stop`, else the rest
/// is read and dropped, so that the writer never blocks on it).
fn drain(
    pipe: &mut impl Read,
    buf: &mut Vec<u8>,
    keep: usize,
    stop: bool,
) -> io::Result<(bool, bool)> {
    let mut chunk = [0u8; 64 << 10];
    let mut over = false;
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Ok((false, over)),
            Ok(n) => {
                let room = keep.saturating_sub(buf.len()).min(n);
                buf.extend_from_slice(&chunk[..room]);
                over |= room < n;
                if over && stop {
                    return Ok((true, true));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((true, over)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a pipe fd this process owns; integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for `pid`: readable once the process has exited.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) with a pid and no flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::bytes("1048576", Some(1 << 20))]
    #[case::mib("64MiB", Some(64 << 20))]
    #[case::kib_space("512 KiB", Some(512 << 10))]
    #[case::zero("0", None)]
    #[case::unit("64MB", None)]
    #[case::words("lots", None)]
    fn bytes(#[case] text: &str, #[case] want: Option<usize>) {
        assert_eq!(parse_bytes(text), want);
    }

    #[rstest]
    #[case::whole("60", Some(Duration::from_secs(60)))]
    #[case::half("0.5", Some(Duration::from_millis(500)))]
    #[case::zero("0", None)]
    #[case::negative("-1", None)]
    #[case::nan("NaN", None)]
    fn seconds(#[case] text: &str, #[case] want: Option<Duration>) {
        assert_eq!(parse_seconds(text).ok(), want);
    }

    #[test]
    fn shown() {
        assert_eq!(show_bytes(64 << 20), "64 MiB");
        assert_eq!(show_bytes(2048), "2 KiB");
        assert_eq!(show_bytes(100), "100 bytes");
    }
}

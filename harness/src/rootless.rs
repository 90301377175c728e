//! Running without root: the harness first enters a new user namespace in which it is root,
//! and builds its labs there. Unprivileged user namespaces give that root every capability
//! over the namespaces it creates — network and mount namespaces, veths, netfilter, AF_PACKET —
//! and none over the rest of the machine.

use std::io;

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{getegid, geteuid, Uid};
use thiserror::Error;

/// Why a process that is not root could not become root of a user namespace of its own.
/// The kernel's reason is part of each message (not a `source`, which would print it twice).
#[derive(Debug, Error)]
pub enum RootlessError {
    /// The kernel refused an unprivileged user namespace (they are turned off, limited to
    /// none, or restricted by AppArmor): run as root, or allow them.
    #[error(
        "running as uid {uid} (not root), the harness needs an unprivileged user namespace, \
             and the kernel refused one: {error}. Run as root, or allow them \
             (`sysctl kernel.unprivileged_userns_clone=1`, `user.max_user_namespaces` above 0, \
             or on Ubuntu `kernel.apparmor_restrict_unprivileged_userns=0`)"
    )]
    Refused { uid: Uid, error: nix::Error },
    /// A file of the new user namespace (`setgroups`, `uid_map`, `gid_map` under
    /// `/proc/self`) could not be written.
    #[error("writing /proc/self/{file} in the new user namespace: {error}")]
    Map {
        file: &'static str,
        error: io::Error,
    },
}

/// Whether this process runs inside a user namespace it entered with [`enter`] (or any user
/// namespace other than the machine's): then some kernel knobs are the host's and out of
/// reach (socket buffers above `net.core.rmem_max`, for one).
pub fn in_user_namespace() -> bool {
    process_in_user_namespace("self")
}

/// Whether process `pid` (or `self`) is in a user namespace other than the machine's.
pub fn process_in_user_namespace(pid: &str) -> bool {
    // The initial user namespace maps every uid: `0 0 4294967295`.
    std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Raises the soft limit on open files to the hard one: a scenario of 1500 flows holds a socket
/// per flow at once, more than the usual soft limit of 1024. Where it cannot, the run says
/// so when it runs out.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Makes this process root in a new user namespace when it is not root already (real root,
/// or root of a user namespace someone else set up, has nothing to do). Must be called while
/// the process has a single thread (the kernel refuses `unshare(CLONE_NEWUSER)` otherwise):
/// first thing in `main`.
///
/// # Errors
/// [`RootlessError`] when the kernel refused the user namespace, or its maps.
pub fn enter() -> Result<(), RootlessError> {
    let (uid, gid) = (geteuid(), getegid());
    if uid.is_root() {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|error| RootlessError::Refused { uid, error })?;
    let write = |file: &'static str, text: String| -> Result<(), RootlessError> {
        std::fs::write(format!("/proc/self/{file}"), &text)
            .map_err(|error| RootlessError::Map { file, error })
    };
    // An unprivileged process must give up setgroups before it may write its gid_map.
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("gid_map", format!("0 {gid} 1\n"))?;
    // Tools live in sbin, which an ordinary user's PATH often leaves out.
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<&str> = path.split(':').filter(|d| !d.is_empty()).collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    // Single-threaded here (the precondition above), so changing the environment is sound.
    std::env::set_var("PATH", dirs.join(":"));
    Ok(())
}

/// The uid this process has outside any user namespace [`enter`] made: the user who ran it.
pub fn outer_uid() -> u32 {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let own = geteuid().as_raw();
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            // `INSIDE OUTSIDE COUNT`: the line that maps our uid.
            (f.len() == 3 && (f[0]..f[0].saturating_add(f[2])).contains(&own))
                .then(|| f[1] + (own - f[0]))
        })
        .next()
        .unwrap_or(own)
}

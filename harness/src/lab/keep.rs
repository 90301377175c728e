//! Kept labs: `harness run --keep` hands the lab's namespaces to a small keeper process that
//! outlives the run, and `harness shell` / `harness down` find it again.
//!
//! # The keeper
//! The keeper is the harness binary executed afresh (`/proc/self/exe` with the hidden first
//! argument [`KEEPER_ARG`]): the run has threads by then, and code between `fork` and `exec`
//! of a threaded process may only make async-signal-safe calls, so the spawn only starts a
//! new session and lets the namespace fds through `exec`. The new, single-threaded process
//! puts them at fds 100, 101, … (node order), sets up a private mount namespace in which
//! iproute2 knows the scenario's table names (when the rule files use any), and **writes its
//! own state file** (JSON, temporary name, then `rename`) before it tells the run it is
//! ready. Then it closes every other fd and waits for SIGTERM; when it dies, the kernel
//! removes the lab. So a keeper that holds a lab past its start always has a state file:
//! killing the run at any moment leaves either no keeper (it died before its state was
//! written, freeing the lab) or one that `harness down` finds. A lab that is not kept never
//! gets a keeper: it still vanishes with the run, `kill -9` included.
//!
//! # Trust
//! `down` signals the process a state file names and `shell` opens that process's fds, so
//! whoever can write a state file could aim them at any process of the user. Two checks:
//! * The state directory must be a real directory (not a symlink; opened with `O_NOFOLLOW`)
//!   owned by the user and writable by no one else, as ssh-agent and tmux require of their
//!   socket directories; the harness creates it with mode 0700. Anything else is refused,
//!   with what to do. (Another local user may pre-create `/tmp/harness-UID`.)
//! * The process a state file names must be, at the time of acting, this user's keeper of
//!   that lab: all its uids ours, its second argument [`KEEPER_ARG`], its start time the
//!   recorded one (pids are reused), and its fds 100… the very network namespaces the file
//!   records (inode numbers). `down` opens a pidfd before checking and signals through it,
//!   so the process checked is the process signalled; `shell` checks again after opening
//!   the namespace and compares the opened inode with the recorded one.
//!
//! A state file whose process is gone is stale and removed; one whose process lives but is
//! not such a keeper is left alone and reported (exit 2). The state directory is removed
//! when it becomes empty, if the harness chose its name (not a `$HARNESS_STATE_DIR`).

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{spawn, Lab};

/// What stops a lab from being kept, found, entered or removed. The keeper's own failures
/// (while it takes the namespaces and writes its state) reach the run as
/// [`KeepError::KeeperFailed`].
#[derive(Debug, Error)]
pub enum KeepError {
    /// The folders above the state directory could not be created.
    #[error("creating `{parent}` for the state directory `{dir}`: {error}; set `HARNESS_STATE_DIR` to a directory you can write")]
    CreateParent {
        parent: PathBuf,
        dir: PathBuf,
        error: io::Error,
    },
    /// The state directory could not be created (another user's `$XDG_RUNTIME_DIR`, kept
    /// across `su`, for one).
    #[error("creating the state directory `{dir}`: {error}; set `HARNESS_STATE_DIR` to a directory you can write")]
    CreateDir { dir: PathBuf, error: io::Error },
    /// The state directory's path could not be looked at (`lstat`).
    #[error("looking at the state directory `{dir}`: {error}; set `HARNESS_STATE_DIR` to a directory you can write")]
    LookAt { dir: PathBuf, error: io::Error },
    /// The state directory is a symbolic link: kept labs need a real directory.
    #[error("state directory `{dir}` is a symbolic link (to `{to}`): kept labs need a real directory of your own; remove the link (`rm {dir}`) or set `HARNESS_STATE_DIR` to a directory only you can write")]
    Symlink { dir: PathBuf, to: PathBuf },
    /// The state directory's path names something other than a directory.
    #[error("state directory `{dir}` is not a directory: remove it or set `HARNESS_STATE_DIR` to a directory only you can write")]
    NotADirectory { dir: PathBuf },
    /// The state directory could not be opened.
    #[error("opening the state directory `{dir}`: {error}")]
    OpenDir { dir: PathBuf, error: io::Error },
    /// The opened state directory could not be looked at (`fstat`).
    #[error("looking at the state directory `{dir}`: {error}")]
    StatDir { dir: PathBuf, error: io::Error },
    /// The state directory belongs to another user, who may have planted its state files.
    #[error("state directory `{dir}` is owned by uid {owner}, not by you (uid {me}): another user may have planted it and its state files; remove it (`sudo rm -r {dir}`) or set `HARNESS_STATE_DIR` to a directory only you can write")]
    ForeignOwner { dir: PathBuf, owner: u32, me: u32 },
    /// Others may write into the state directory (`mode`: its permission bits).
    #[error("state directory `{dir}` is writable by others (mode {mode:04o}): anyone could plant a state file naming one of your processes; check what is in it, then `chmod 700 {dir}`, or set `HARNESS_STATE_DIR` to a directory only you can write")]
    OpenToOthers { dir: PathBuf, mode: u32 },
    /// The state directory was replaced every time it was looked at.
    #[error("state directory `{dir}` keeps changing under the harness: see who else uses it, or set `HARNESS_STATE_DIR` to a directory only you can write")]
    KeepsChanging { dir: PathBuf },
    /// There is no state directory yet, and the nearest existing folder above it (`base`)
    /// is not writable, so the keeper could not create it.
    #[error("the state directory `{dir}` cannot be created: `{base}` is not writable ({error}); set `HARNESS_STATE_DIR` to a directory you can write")]
    NotWritable {
        dir: PathBuf,
        base: PathBuf,
        error: nix::Error,
    },
    /// The state directory could not be listed.
    #[error("reading the state directory `{dir}`: {error}")]
    ReadDir { dir: PathBuf, error: io::Error },
    /// A state file that cannot be read or parsed, or is not a regular file of the user's.
    #[error(
        "state file `{file}` cannot be used ({why}): remove it if no keeper of yours is behind it"
    )]
    UnusableStateFile { file: String, why: String },
    /// A state file names a live process that is not this user's keeper of its lab; the
    /// process is left alone. `comm` is the process's name, `why` what failed the check.
    #[error("state file `{file}` names process {pid} (`{comm}`), which is not a harness keeper holding lab `{scenario}`: {why}. It was left alone; remove `{file}` if you did not expect it")]
    Impostor {
        file: String,
        pid: i32,
        comm: String,
        scenario: String,
        why: String,
    },
    /// State files that were not to be trusted, one message a line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<KeepError>),
    /// The pipe the keeper reports on could not be created.
    #[error("creating a pipe for the keeper: {0}")]
    Pipe(nix::Error),
    /// The keeper process could not be started.
    #[error("starting the keeper process (`/proc/self/exe {arg}`): {0}", arg = KEEPER_ARG)]
    StartKeeper(io::Error),
    /// The keeper started but did not take the lab: what it said, or how it ended.
    #[error("the keeper process could not take the lab: {why}")]
    KeeperFailed { why: String },
    /// An fd the run passed the keeper for a node is not a network namespace.
    #[error("fd {fd} for node `{node}` is not a network namespace")]
    NotANamespace { fd: RawFd, node: String },
    /// The keeper could not copy a namespace fd above its target range.
    #[error("copying fd {fd}: {error}")]
    CopyFd { fd: RawFd, error: io::Error },
    /// The keeper could not move a namespace to its fd.
    #[error("moving a namespace to fd {fd}: {error}")]
    MoveFd { fd: RawFd, error: io::Error },
    /// The keeper could not look at a namespace fd it holds.
    #[error("looking at fd {fd}: {error}")]
    StatFd { fd: RawFd, error: io::Error },
    /// iproute2's rt_tables file was not found on this machine.
    #[error("{0}")]
    NoRtTables(io::Error),
    /// The keeper's private mount namespace with the lab's table names could not be set up.
    #[error("giving the keeper the lab's routing table names: {0}")]
    PrivateRtTables(io::Error),
    /// The keeper could not read its own start time from /proc.
    #[error("the keeper cannot read its own start time")]
    NoStartTime,
    /// The state directory disappeared between being opened and used.
    #[error("the state directory vanished")]
    DirVanished,
    /// The keeper could not write its state file.
    #[error("writing {file}: {error}")]
    WriteState { file: String, error: io::Error },
    /// The state directory was removed every time the keeper was about to write into it.
    #[error("writing {name}: the state directory keeps vanishing")]
    KeepsVanishing { name: String },
    /// No lab is kept, and none was named.
    #[error("no kept lab (looked in {dir}): start one with `harness run --keep SCENARIO`")]
    NoneKept { dir: PathBuf },
    /// The lab `which` names is not kept, and no lab is.
    #[error("no kept lab `{which}`: there is none (looked in {dir})")]
    NoneKeptNamed { which: String, dir: PathBuf },
    /// The lab `which` names is not kept; `kept` lists those that are.
    #[error("no kept lab `{which}`; kept: {kept}")]
    NoSuchLab { which: String, kept: String },
    /// Several labs are kept and none was named (or the name fits several).
    #[error("{count} labs are kept: say which with `--lab NAME` (or the keeper's pid): {kept}")]
    Ambiguous { count: usize, kept: String },
    /// The keeper ended since its state file was read.
    #[error("the keeper of lab `{scenario}` (process {pid}) is gone")]
    KeeperGone { scenario: String, pid: i32 },
    /// The kept lab has no such node; `nodes` lists those it has.
    #[error("lab `{scenario}` has no node `{node}`; its nodes: {nodes}")]
    NoSuchNode {
        scenario: String,
        node: String,
        nodes: String,
    },
    /// One of the keeper's namespaces could not be opened.
    #[error("opening {path}: {error}")]
    Open { path: String, error: io::Error },
    /// The node's network namespace opened is not the one the state file records.
    #[error("node `{node}` of lab `{scenario}` changed while being entered: try again")]
    Changed { node: String, scenario: String },
    /// `setns` into the lab's user namespace (a rootless run's) failed.
    #[error("entering the lab's user namespace: {0}")]
    EnterUserNs(nix::Error),
    /// `setns` into the keeper's mount namespace failed.
    #[error("entering the lab's mount namespace: {0}")]
    EnterMountNs(nix::Error),
    /// `setns` into the node's network namespace failed.
    #[error("entering node `{node}`: {error}")]
    EnterNode { node: String, error: nix::Error },
    /// A pidfd for the keeper could not be opened.
    #[error("reaching keeper process {pid}: {error}")]
    Reach { pid: i32, error: io::Error },
    /// SIGTERM could not be sent to the keeper.
    #[error("stopping keeper process {pid}: {error}")]
    Stop { pid: i32, error: io::Error },
}

/// The keeper's fd for the first node's namespace; the others follow in node order.
const FIRST_FD: RawFd = 100;
/// The first argument that makes the harness binary a keeper (`harness __harness-keeper
/// ORDER`); not a subcommand anyone types.
pub const KEEPER_ARG: &str = "__harness-keeper";
/// The keeper's name in `ps` (its argv\[0\] and comm).
const KEEPER_NAME: &str = "harness-keep";

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
    /// The inode of each node's network namespace, in the order of `nodes`: what the keeper's
    /// fds must still be.
    #[serde(default)]
    pub nets: Vec<u64>,
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

    /// The process the file names still runs (same pid, same start time).
    fn alive(&self) -> bool {
        process_start(self.pid) == Some(self.start)
    }

    /// Why the live process `pid` is not this user's keeper of this lab, if it is not.
    fn impostor(&self) -> Option<String> {
        let me = nix::unistd::geteuid().as_raw();
        let uids = proc_uids(self.pid);
        if uids.iter().any(|&u| u != me) || uids.is_empty() {
            return Some(format!("it runs as uid {uids:?}, you as uid {me}"));
        }
        let cmdline = fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        let mut args = cmdline.split(|&b| b == 0);
        if args.nth(1) != Some(KEEPER_ARG.as_bytes()) {
            let comm = fs::read_to_string(format!("/proc/{}/comm", self.pid)).unwrap_or_default();
            if comm.trim() == KEEPER_NAME {
                // Forked by an earlier harness, before keepers were checked: nothing to check it by.
                return Some(format!(
                    "it looks like the keeper of an older harness, which cannot be checked; if \
                     it is yours, end it with `kill {}`",
                    self.pid
                ));
            }
            return Some("it was not started as one".into());
        }
        if self.nets.len() != self.nodes.len() {
            return Some("the file records no namespace for some node".into());
        }
        for ((node, fd), ino) in self.nodes.iter().zip(&self.nets) {
            let link = fs::read_link(format!("/proc/{}/fd/{fd}", self.pid)).ok();
            if link.as_deref() != Some(Path::new(&format!("net:[{ino}]"))) {
                return Some(format!(
                    "its fd {fd} is not the network namespace of node `{node}`"
                ));
            }
        }
        None
    }
}

/// The real, effective, saved and filesystem uids of `pid` (empty when it is gone).
fn proc_uids(pid: i32) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|u| u.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Where the state files of kept labs live: `$HARNESS_STATE_DIR`, else /run/harness for root,
/// `$XDG_RUNTIME_DIR/harness` or /tmp/harness-UID for others.
pub fn state_dir() -> PathBuf {
    location().0
}

/// [`state_dir`], and whether the harness chose it (then it removes it when empty).
fn location() -> (PathBuf, bool) {
    if let Some(d) = std::env::var_os("HARNESS_STATE_DIR") {
        return (PathBuf::from(d), false);
    }
    let d = match crate::rootless::outer_uid() {
        0 => PathBuf::from("/run/harness"),
        uid => std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d).join("harness"))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/harness-{uid}"))),
    };
    (d, true)
}

/// Why a state directory with this owner and mode is not to be trusted by `me`, if it is not.
fn distrust(path: &Path, owner: u32, mode: u32, me: u32) -> Option<KeepError> {
    let dir = path.to_path_buf();
    if owner != me {
        return Some(KeepError::ForeignOwner { dir, owner, me });
    }
    if mode & 0o022 != 0 {
        return Some(KeepError::OpenToOthers {
            dir,
            mode: mode & 0o7777,
        });
    }
    None
}

/// A state directory that passed the checks, open.
struct StateDir {
    path: PathBuf,
    fd: OwnedFd,
    /// The harness chose its name: it removes it when empty.
    own: bool,
}

impl StateDir {
    /// Opens the state directory and checks it may be trusted; creates it (mode 0700) when
    /// `create`, else `None` when there is none.
    fn open(create: bool) -> Result<Option<StateDir>, KeepError> {
        let (path, own) = location();
        for _ in 0..5 {
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(parent)
                            .map_err(|error| KeepError::CreateParent {
                                parent: parent.to_path_buf(),
                                dir: path.clone(),
                                error,
                            })?;
                    }
                    match fs::DirBuilder::new().mode(0o700).create(&path) {
                        // Someone made it meanwhile: check what it is.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                        // `$XDG_RUNTIME_DIR` of another user, kept across `su`, for one.
                        Err(error) => return Err(KeepError::CreateDir { dir: path, error }),
                        Ok(()) => {}
                    }
                }
                Err(error) => return Err(KeepError::LookAt { dir: path, error }),
                Ok(m) if m.file_type().is_symlink() => {
                    let to = fs::read_link(&path).unwrap_or_default();
                    return Err(KeepError::Symlink { dir: path, to });
                }
                Ok(_) => {}
            }
            let dir = match fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(d) => d,
                // Replaced by a symlink (ELOOP) or a file since the look: look again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOENT)) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    return Err(KeepError::NotADirectory { dir: path })
                }
                Err(error) => return Err(KeepError::OpenDir { dir: path, error }),
            };
            let m = dir.metadata().map_err(|error| KeepError::StatDir {
                dir: path.clone(),
                error,
            })?;
            let me = nix::unistd::geteuid().as_raw();
            if let Some(why) = distrust(&path, m.uid(), m.mode(), me) {
                return Err(why);
            }
            return Ok(Some(StateDir {
                path,
                fd: dir.into(),
                own,
            }));
        }
        Err(KeepError::KeepsChanging { dir: path })
    }

    /// `name` in this directory, reached through its fd (what the path names may change).
    fn at(&self, name: &OsStr) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).join(name)
    }

    /// `name` in this directory as the user knows it.
    fn shown(&self, name: &OsStr) -> String {
        self.path.join(name).display().to_string()
    }

    /// Writes `text` as `name`, atomically: a reader sees the whole file or none.
    fn write(&self, name: &str, text: &str) -> io::Result<()> {
        let tmp = format!(".{name}.tmp");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.at(tmp.as_ref()))?;
        // No fsync: a state file matters only while its keeper lives, and none outlives a
        // crash of the machine; the rename alone makes it whole-or-absent to readers.
        let written = f.write_all(text.as_bytes());
        let renamed =
            written.and_then(|()| fs::rename(self.at(tmp.as_ref()), self.at(name.as_ref())));
        if renamed.is_err() {
            let _ = fs::remove_file(self.at(tmp.as_ref()));
        }
        renamed
    }

    /// Removes the directory when it is the harness's own and empty. A keeper writing into
    /// it meanwhile either finds its files there (then it is not empty) or finds it gone
    /// (`ENOENT` on create) and makes a new one.
    fn remove_if_empty(&self) {
        let same = |m: &fs::Metadata, n: &fs::Metadata| m.dev() == n.dev() && m.ino() == n.ino();
        let (Ok(opened), Ok(now)) = (
            fs::metadata(self.at("".as_ref())),
            fs::symlink_metadata(&self.path),
        ) else {
            return;
        };
        if self.own && same(&opened, &now) {
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// Checks the state directory, if there is one, before a lab is built for `run --keep`; to
/// be called before [`crate::rootless::enter`], where owners show as themselves.
pub fn check_state_dir() -> Result<(), KeepError> {
    if StateDir::open(false)?.is_some() {
        return Ok(());
    }
    // None yet: the keeper will create it, in the nearest existing ancestor.
    let path = state_dir();
    let mut up = path.parent();
    while let Some(d) = up.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        up = d.parent();
    }
    let base = up
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    use nix::unistd::{access, AccessFlags};
    access(base, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|error| KeepError::NotWritable {
        dir: path.clone(),
        base: base.to_path_buf(),
        error,
    })
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

/// What the run tells its keeper (as JSON, its second argument).
#[derive(Serialize, Deserialize)]
struct Order {
    scenario: String,
    file: String,
    /// Each node and the fd of its namespace, as the keeper inherits it.
    nodes: Vec<(String, RawFd)>,
    /// Routing table names the rule files use.
    tables: Vec<(String, u32)>,
    /// Where the keeper reports: its state as JSON once written, or what went wrong.
    report: RawFd,
}

/// Hands `lab` to a keeper process, which writes the state file. `tables` are the routing
/// table names the rule files use.
pub fn keep(
    lab: Lab,
    scenario: &str,
    file: &Path,
    tables: &[(String, u32)],
) -> Result<Kept, KeepError> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(KeepError::Pipe)?;
    let order = Order {
        scenario: scenario.to_string(),
        file: file.display().to_string(),
        nodes: lab
            .nodes
            .iter()
            .map(|(n, ns)| (n.clone(), ns.raw_fd()))
            .collect(),
        tables: tables.to_vec(),
        report: wr.as_raw_fd(),
    };
    let mut pass: Vec<RawFd> = order.nodes.iter().map(|(_, fd)| *fd).collect();
    pass.push(wr.as_raw_fd());
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(KEEPER_NAME)
        .arg(KEEPER_ARG)
        // For `ps`; the order itself comes on stdin.
        .arg(scenario)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, fcntl) on fds that
    // stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: Ctrl-C and a closing terminal do not reach it.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for &fd in &pass {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(KeepError::StartKeeper)?;
    drop(wr);
    drop(lab);
    if let Some(mut stdin) = child.stdin.take() {
        // A keeper that cannot read its order says so on the report pipe.
        let _ = stdin.write_all(
            serde_json::to_string(&order)
                .expect("serializable")
                .as_bytes(),
        );
    }
    let mut said = String::new();
    let _ = fs::File::from(rd).read_to_string(&mut said);
    match serde_json::from_str::<Kept>(&said) {
        Ok(k) => Ok(k),
        Err(_) => {
            let status = child.wait();
            let why = match (said.trim(), status) {
                ("", Ok(s)) => format!("it ended ({s}) without a word"),
                ("", Err(e)) => format!("it vanished ({e})"),
                (m, _) => m.to_string(),
            };
            Err(KeepError::KeeperFailed { why })
        }
    }
}

/// The keeper's life, when the binary runs as `harness __harness-keeper SCENARIO` with its
/// [`Order`] on stdin: takes the namespaces, writes the state file, says so on the report
/// fd, then waits for SIGTERM. Must be called first thing in `main`, while the process has
/// one thread.
pub fn keeper_main() -> ! {
    let mut text = String::new();
    let order = io::stdin()
        .read_to_string(&mut text)
        .ok()
        .and_then(|_| serde_json::from_str::<Order>(&text).ok())
        // SAFETY: F_GETFD only asks whether the fd is open.
        .filter(|o| unsafe { libc::fcntl(o.report, libc::F_GETFD) } >= 0);
    let Some(order) = order else {
        eprintln!("error: `{KEEPER_ARG}` is the harness's own: use `harness run --keep`");
        std::process::exit(2);
    };
    // The order is read: stdin is /dev/null from here on.
    if let Ok(null) = fs::File::open("/dev/null") {
        // SAFETY: dup2 onto fd 0, which io::stdin does not own.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    // SAFETY: the run passed this fd open for us and nothing else in this process owns it.
    let mut report = fs::File::from(unsafe { OwnedFd::from_raw_fd(order.report) });
    let n = order.nodes.len() as RawFd;
    let said = match take(&order) {
        Ok(k) => serde_json::to_string(&k).expect("serializable"),
        Err(e) => {
            let _ = report.write_all(e.to_string().as_bytes());
            std::process::exit(1);
        }
    };
    // The state is written: from here on the lab is kept, whether or not the run hears it.
    let _ = report.write_all(said.as_bytes());
    drop(report);
    // SAFETY: close_range and pause take integers; nothing in this process uses the fds
    // closed (stdio and the namespaces at FIRST_FD.. stay).
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, (FIRST_FD - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (FIRST_FD + n) as u32, u32::MAX, 0u32);
        loop {
            libc::pause();
        }
    }
}

/// The keeper's setup: namespaces at FIRST_FD.., private rt_tables, state file written.
fn take(order: &Order) -> Result<Kept, KeepError> {
    // SAFETY: prctl and signal with constant arguments; one thread.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"harness-keep".as_ptr());
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        // A run killed before reading the report must not take the keeper with it.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let n = order.nodes.len() as RawFd;
    // Copies above the target range first, so that no dup2 below clobbers a source.
    let mut copies = Vec::new();
    for (node, fd) in &order.nodes {
        let link = fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        if !link.to_string_lossy().starts_with("net:[") {
            return Err(KeepError::NotANamespace {
                fd: *fd,
                node: node.clone(),
            });
        }
        // SAFETY: fcntl on an fd we inherited.
        let c = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, FIRST_FD + n) };
        if c < 0 {
            return Err(KeepError::CopyFd {
                fd: *fd,
                error: io::Error::last_os_error(),
            });
        }
        copies.push(c);
    }
    let mut nets = Vec::new();
    for (i, c) in copies.iter().enumerate() {
        let target = FIRST_FD + i as RawFd;
        // SAFETY: dup2 onto a number no Rust object owns (everything is below FIRST_FD or a
        // copy above the range).
        if unsafe { libc::dup2(*c, target) } < 0 {
            return Err(KeepError::MoveFd {
                fd: target,
                error: io::Error::last_os_error(),
            });
        }
        let m = fs::metadata(format!("/proc/self/fd/{target}"))
            .map_err(|error| KeepError::StatFd { fd: target, error })?;
        nets.push(m.ino());
    }
    let mount_ns = !order.tables.is_empty();
    if mount_ns {
        let path = spawn::rt_tables_path().map_err(KeepError::NoRtTables)?;
        spawn::private_rt_tables(&spawn::rt_tables(&order.tables), &path)
            .map_err(KeepError::PrivateRtTables)?;
    }
    let pid = std::process::id() as i32;
    let kept = Kept {
        scenario: order.scenario.clone(),
        file: order.file.clone(),
        pid,
        start: process_start(pid).ok_or(KeepError::NoStartTime)?,
        nodes: order
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), FIRST_FD + i as RawFd))
            .collect(),
        nets,
        mount_ns,
    };
    let name = format!("{}-{pid}.json", kept.scenario);
    let json = serde_json::to_string_pretty(&kept).expect("serializable");
    // A `down` may remove the directory while it is empty: then create it again.
    for _ in 0..5 {
        let dir = StateDir::open(true)?.ok_or(KeepError::DirVanished)?;
        match dir.write(&name, &json) {
            Ok(()) => return Ok(kept),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(KeepError::WriteState {
                    file: dir.shown(name.as_ref()),
                    error,
                })
            }
        }
    }
    Err(KeepError::KeepsVanishing { name })
}

/// The kept labs in the state directory, oldest first, and the state files that were not to
/// be trusted (each an error). State files of dead keepers are removed.
pub struct Listing {
    pub labs: Vec<Kept>,
    pub refused: Vec<KeepError>,
}

/// Every kept lab whose keeper is alive and checks out; see [`Listing`]. Errors when the
/// state directory itself is not to be trusted.
pub fn list() -> Result<Listing, KeepError> {
    let mut out = Listing {
        labs: Vec::new(),
        refused: Vec::new(),
    };
    let Some(dir) = StateDir::open(false)? else {
        return Ok(out);
    };
    let entries = fs::read_dir(dir.at("".as_ref())).map_err(|error| KeepError::ReadDir {
        dir: dir.path.clone(),
        error,
    })?;
    let me = nix::unistd::geteuid().as_raw();
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let shown = dir.shown(&name);
        let is_state = name
            .to_str()
            .is_some_and(|n| n.ends_with(".json") && !n.starts_with('.'));
        if !is_state {
            // `.SCENARIO-PID.json.tmp` of a keeper killed before its rename.
            if temp_writer(&name).is_some_and(|pid| fs::metadata(format!("/proc/{pid}")).is_err()) {
                let _ = fs::remove_file(dir.at(&name));
            }
            continue;
        }
        let read = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.at(&name))
            .and_then(|mut f| {
                let m = f.metadata()?;
                if !m.file_type().is_file() || m.uid() != me {
                    return Err(io::Error::other(format!(
                        "not a regular file of yours (uid {})",
                        m.uid()
                    )));
                }
                let mut text = String::new();
                f.read_to_string(&mut text).map(|_| text)
            });
        let kept = read
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Kept>(&t).map_err(|e| e.to_string()));
        match kept {
            Err(why) => out
                .refused
                .push(KeepError::UnusableStateFile { file: shown, why }),
            Ok(k) if !k.alive() => {
                let _ = fs::remove_file(dir.at(&name));
            }
            Ok(k) => match k.impostor() {
                None => out.labs.push(k),
                Some(why) => out.refused.push(impostor(shown, &k, why)),
            },
        }
    }
    out.labs.sort_by_key(|k| k.start);
    if out.labs.is_empty() && out.refused.is_empty() {
        dir.remove_if_empty();
    }
    Ok(out)
}

/// The pid in the name of a keeper's temporary state file, `.SCENARIO-PID.json.tmp`.
fn temp_writer(name: &OsStr) -> Option<i32> {
    let stem = name
        .to_str()?
        .strip_prefix('.')?
        .strip_suffix(".json.tmp")?;
    stem.rsplit_once('-')?.1.parse().ok()
}

/// The error for state file `file`, whose process is not the keeper `k` says it is.
fn impostor(file: String, k: &Kept, why: String) -> KeepError {
    let comm = fs::read_to_string(format!("/proc/{}/comm", k.pid)).unwrap_or_default();
    KeepError::Impostor {
        file,
        pid: k.pid,
        comm: comm.trim().to_string(),
        scenario: k.scenario.clone(),
        why,
    }
}

/// The kept lab `which` names (scenario name or keeper pid), or the only one.
pub fn find(which: Option<&str>) -> Result<Kept, KeepError> {
    let Listing { labs: all, refused } = list()?;
    if !refused.is_empty() {
        return Err(KeepError::Refused(refused));
    }
    let names = || {
        all.iter()
            .map(|k| format!("{} (pid {})", k.scenario, k.pid))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hits: Vec<&Kept> = all
        .iter()
        .filter(|k| which.is_none_or(|w| w == k.scenario || w == k.pid.to_string()))
        .collect();
    match (hits.as_slice(), which) {
        ([k], _) => Ok((*k).clone()),
        ([], None) => Err(KeepError::NoneKept { dir: state_dir() }),
        ([], Some(w)) if all.is_empty() => Err(KeepError::NoneKeptNamed {
            which: w.to_string(),
            dir: state_dir(),
        }),
        ([], Some(w)) => Err(KeepError::NoSuchLab {
            which: w.to_string(),
            kept: names(),
        }),
        (_, _) => Err(KeepError::Ambiguous {
            count: hits.len(),
            kept: names(),
        }),
    }
}

/// The keeper of `k` is still what [`list`] checked.
fn recheck(k: &Kept) -> Result<(), KeepError> {
    if !k.alive() {
        return Err(KeepError::KeeperGone {
            scenario: k.scenario.clone(),
            pid: k.pid,
        });
    }
    match k.impostor() {
        None => Ok(()),
        Some(why) => Err(impostor(
            state_dir()
                .join(format!("{}-{}.json", k.scenario, k.pid))
                .display()
                .to_string(),
            k,
            why,
        )),
    }
}

/// Moves this process into `node` of a kept lab: its user namespace when it lives in another
/// (rootless), its mount namespace, its network namespace. The process must have one thread.
pub fn enter(k: &Kept, node: &str) -> Result<(), KeepError> {
    let Some(i) = k.nodes.iter().position(|(n, _)| n == node) else {
        let nodes: Vec<&str> = k.nodes.iter().map(|(n, _)| n.as_str()).collect();
        return Err(KeepError::NoSuchNode {
            scenario: k.scenario.clone(),
            node: node.to_string(),
            nodes: nodes.join(", "),
        });
    };
    let net = k.net_path(node).expect("node found above");
    let open = |p: &str| {
        fs::File::open(p).map_err(|error| KeepError::Open {
            path: p.to_string(),
            error,
        })
    };
    recheck(k)?;
    let user = k
        .foreign_user_ns()
        .then(|| open(&format!("/proc/{}/ns/user", k.pid)))
        .transpose()?;
    let mnt = k
        .mount_ns
        .then(|| open(&format!("/proc/{}/ns/mnt", k.pid)))
        .transpose()?;
    let net = open(&net)?;
    // What was opened belongs to the keeper checked (not to a process that took its pid
    // meanwhile), and the network namespace is the one recorded.
    recheck(k)?;
    let ino = net.metadata().map(|m| m.ino()).ok();
    if ino != k.nets.get(i).copied() {
        return Err(KeepError::Changed {
            node: node.to_string(),
            scenario: k.scenario.clone(),
        });
    }
    let cwd = std::env::current_dir().ok();
    if let Some(f) = &user {
        setns(f, CloneFlags::CLONE_NEWUSER).map_err(KeepError::EnterUserNs)?;
    }
    if let Some(f) = &mnt {
        setns(f, CloneFlags::CLONE_NEWNS).map_err(KeepError::EnterMountNs)?;
        // Entering a mount namespace moves to its root; come back to where we were.
        if let Some(d) = cwd {
            let _ = std::env::set_current_dir(d);
        }
    }
    setns(&net, CloneFlags::CLONE_NEWNET).map_err(|error| KeepError::EnterNode {
        node: node.to_string(),
        error,
    })?;
    Ok(())
}

/// A pidfd for `pid`: signals sent through it reach that process or none, never a later
/// process with the same pid.
fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_signal(fd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a live pidfd, a signal number and no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until the process of `fd` has ended, up to `limit`; whether it has.
fn ended(fd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one live pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        match rc {
            1.. => return true,
            0 if left.is_zero() => return false,
            0 => {}
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

/// Stops the keeper of `k` (SIGTERM, then SIGKILL after 2 s) and removes its state file,
/// after checking it is still this user's keeper of the lab. Returns the processes that
/// still hold one of its namespaces (a shell left inside).
pub fn remove(k: &Kept) -> Result<Vec<String>, KeepError> {
    let dir = StateDir::open(false)?;
    let name = format!("{}-{}.json", k.scenario, k.pid);
    // Open first, check after: the process checked is the one the pidfd refers to.
    let fd = match pidfd(k.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
        Err(error) => return Err(KeepError::Reach { pid: k.pid, error }),
    };
    if let Some(fd) = &fd {
        if k.alive() {
            recheck(k)?;
            let ids: Vec<(u64, u64)> = k
                .nodes
                .iter()
                .filter_map(|(n, _)| fs::metadata(k.net_path(n)?).ok())
                .map(|m| (m.dev(), m.ino()))
                .collect();
            pidfd_signal(fd, libc::SIGTERM)
                .map_err(|error| KeepError::Stop { pid: k.pid, error })?;
            if !ended(fd, Duration::from_secs(2)) {
                let _ = pidfd_signal(fd, libc::SIGKILL);
                ended(fd, Duration::from_secs(2));
            }
            if let Some(dir) = &dir {
                let _ = fs::remove_file(dir.at(name.as_ref()));
                dir.remove_if_empty();
            }
            return Ok(holders(&ids));
        }
    }
    if let Some(dir) = &dir {
        let _ = fs::remove_file(dir.at(name.as_ref()));
        dir.remove_if_empty();
    }
    Ok(Vec::new())
}

/// The processes whose network namespace is one of `ids` (device, inode).
fn holders(ids: &[(u64, u64)]) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let held = fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())));
        if held {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            out.push(format!("{pid} ({})", comm.trim()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::own_private(1000, 0o40700, None)]
    #[case::own_readable(1000, 0o40755, None)]
    #[case::own_world_writable(1000, 0o40777, Some("writable by others (mode 0777)"))]
    #[case::own_group_writable(1000, 0o40770, Some("writable by others (mode 0770)"))]
    #[case::own_sticky_world_writable(1000, 0o41777, Some("writable by others (mode 1777)"))]
    #[case::foreign_private(0, 0o40700, Some("owned by uid 0, not by you (uid 1000)"))]
    #[case::foreign_open(12345, 0o40777, Some("owned by uid 12345"))]
    fn state_dir_trust(#[case] owner: u32, #[case] mode: u32, #[case] want: Option<&str>) {
        let got =
            distrust(Path::new("/tmp/harness-1000"), owner, mode, 1000).map(|e| e.to_string());
        match (want, got) {
            (None, None) => {}
            (Some(w), Some(g)) => {
                assert!(g.contains(w), "{g:?} should say {w:?}");
                assert!(
                    g.contains("`/tmp/harness-1000`"),
                    "{g:?} should name the directory"
                );
            }
            (w, g) => panic!("want {w:?}, got {g:?}"),
        }
    }

    /// A process named like the keepers an earlier harness forked (a `sleep` run through a
    /// link called `harness-keep`) is refused with a way to end it.
    #[test]
    fn a_keeper_of_an_older_harness_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(KEEPER_NAME);
        std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
        let mut child = Command::new(&link).arg("60").spawn().unwrap();
        let pid = child.id() as i32;
        let k = Kept {
            scenario: "dual-isp".into(),
            file: "x".into(),
            pid,
            start: process_start(pid).unwrap(),
            nodes: vec![("jupiter".into(), 100)],
            nets: vec![],
            mount_ns: false,
        };
        let why = k.impostor();
        let _ = child.kill();
        let _ = child.wait();
        let why = why.expect("not a checked keeper");
        assert!(why.contains("older harness"), "{why}");
        assert!(why.contains(&format!("`kill {pid}`")), "{why}");
    }

    #[rstest]
    #[case::temp(".dual-isp-123.json.tmp", Some(123))]
    #[case::dashed_name(".dual-isp-v2-7.json.tmp", Some(7))]
    #[case::state_file("dual-isp-123.json", None)]
    #[case::other_dot_file(".dual-isp-123.json.swp", None)]
    #[case::no_pid(".dual-isp.json.tmp", None)]
    fn temp_files_name_their_writer(#[case] name: &str, #[case] want: Option<i32>) {
        assert_eq!(temp_writer(name.as_ref()), want);
    }

    #[test]
    fn own_uids_and_start() {
        let me = std::process::id() as i32;
        let uids = proc_uids(me);
        assert_eq!(uids.len(), 4);
        assert!(uids.iter().all(|&u| u == nix::unistd::geteuid().as_raw()));
        assert!(process_start(me).is_some());
        assert!(proc_uids(i32::MAX).is_empty());
    }

    /// This test process holds no keeper's namespaces and was not started as a keeper.
    #[test]
    fn a_process_that_is_not_a_keeper_is_an_impostor() {
        let me = std::process::id() as i32;
        let k = Kept {
            scenario: "dual-isp".into(),
            file: "x".into(),
            pid: me,
            start: process_start(me).unwrap(),
            nodes: vec![("jupiter".into(), 0)],
            nets: vec![1],
            mount_ns: false,
        };
        assert!(k.alive());
        assert_eq!(k.impostor().as_deref(), Some("it was not started as one"));
    }
}

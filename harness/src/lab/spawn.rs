//! Spawning a tool inside a node: in the node's network namespace, with a private xtables
//! lock, and, when the rules name routing tables, a private mount namespace in which
//! iproute2's rt_tables file holds the lab's table names (nothing on the host changes).
//! Children die with the thread that spawned them (PR_SET_PDEATHSIG). `install` spawns its
//! rule tools and generators here; the keeper (`keep`) takes the same private rt_tables.
//! Installers (the user's programs that load rules themselves) also write into private
//! copies of /etc, /var, /run and /tmp, and a /dev/shm of their own ([`private_writes`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::Netns;

/// Where iproute2 reads table names, first match wins.
const RT_TABLES: [&str; 2] = ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"];

/// The kernel's own tables plus the scenario's names, as iproute2's rt_tables file.
pub fn rt_tables(tables: &[(String, u32)]) -> Vec<u8> {
    let mut text = String::from("255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n");
    for (name, id) in tables {
        text.push_str(&format!("{id}\t{name}\n"));
    }
    text.into_bytes()
}

/// The fd number a program finds the fd passed to [`spawn_in`] on (a generator, the
/// topology's facts).
pub const PASSED_FD: RawFd = 200;
/// Where every tool finds its private xtables lock (see `spawn_in`).
const LOCK_FD: RawFd = 201;

/// Spawns `cmd` in `ns`, writes `input` to its stdin, and waits for it.
pub fn run_with_input(
    ns: &Netns,
    cmd: Command,
    tables: Option<&[u8]>,
    pass: Option<RawFd>,
    input: &[u8],
) -> io::Result<std::process::Output> {
    feed_and_wait(spawn_piped(ns, cmd, tables, pass)?, input)
}

/// Spawns `cmd` in `ns` with its stdin, stdout and stderr piped (see [`spawn_in`]).
pub fn spawn_piped(
    ns: &Netns,
    cmd: Command,
    tables: Option<&[u8]>,
    pass: Option<RawFd>,
) -> io::Result<std::process::Child> {
    spawn_piped_with(ns, cmd, tables, pass, false)
}

/// [`spawn_piped`], and with `private`, the program writes into private copies of
/// [`PRIVATE_WRITES`] (see [`private_writes`]): for installers, the
/// user's programs that load rules, which may keep state in /var/lib, /run or /etc.
pub fn spawn_piped_with(
    ns: &Netns,
    mut cmd: Command,
    tables: Option<&[u8]>,
    pass: Option<RawFd>,
    private: bool,
) -> io::Result<std::process::Child> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if private {
        // Temporary files in its private /tmp, not where the harness's caller keeps them (a
        // TMPDIR outside the overlaid folders would take its writes to the host).
        cmd.env("TMPDIR", "/tmp");
    }
    spawn_in_with(ns, cmd, tables, pass, private)
}

/// The folders an installer writes into private copies of: what it writes there lives in
/// its mount namespace only (what it reads there is the host's).
pub const PRIVATE_WRITES: [&CStr; 4] = [c"/etc", c"/var", c"/run", c"/tmp"];

/// Writes `input` to the child's stdin and waits for it, reading its output.
pub fn feed_and_wait(
    mut child: std::process::Child,
    input: &[u8],
) -> io::Result<std::process::Output> {
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // Written from another thread: a tool may fill its output pipes before reading it all.
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output()?;
    // A tool that stops reading early (it rejected a line) closes the pipe: not our error.
    let _ = writer.join();
    Ok(out)
}

/// Spawns `cmd` inside `node`'s namespace. With `tables`, the command also gets a private
/// mount namespace in which those bytes are iproute2's rt_tables file: a tmpfs is mounted over
/// /dev/shm there, the file written into it and bound over rt_tables, and the tmpfs detached. The
/// file lives only in that mount namespace, so nothing is left on disk whatever ends the run.
/// With `pass`, that fd is the program's [`PASSED_FD`].
///
/// The child gets SIGKILL when the spawning *thread* exits (PR_SET_PDEATHSIG): wait for it on
/// the thread that spawned it.
pub fn spawn_in(
    ns: &Netns,
    cmd: Command,
    tables: Option<&[u8]>,
    pass: Option<RawFd>,
) -> io::Result<std::process::Child> {
    spawn_in_with(ns, cmd, tables, pass, false)
}

/// [`spawn_in`]; with `private`, see [`spawn_piped_with`].
fn spawn_in_with(
    ns: &Netns,
    mut cmd: Command,
    tables: Option<&[u8]>,
    pass: Option<RawFd>,
    private: bool,
) -> io::Result<std::process::Child> {
    let ns = ns.clone();
    let overlays = if private {
        Some(Overlays::new(cmd.get_current_dir())?)
    } else {
        None
    };
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
            if let Some(fd) = pass {
                inherit_as(fd, PASSED_FD)?;
            }
            // Before rt_tables: an overlay on /etc would hide its bind mount.
            if let Some(o) = &overlays {
                private_writes(o)?;
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
pub fn rt_tables_path() -> io::Result<CString> {
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

/// Where [`private_scratch`] mounts its tmpfs: a folder every Linux system has that no tool
/// reads a path from (not /tmp, which may hold the scenario, the rules, the installer).
const SCRATCH: &CStr = c"/dev/shm";

/// A private mount namespace for the calling process (nothing it mounts propagates back), with
/// a tmpfs mounted over [`SCRATCH`] (`opts`) as scratch space. Only syscalls on prepared values: safe
/// between fork and exec.
fn private_scratch(opts: &CStr) -> io::Result<()> {
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
        Some(opts),
    )?;
    Ok(())
}

/// Moves the calling process into a private mount namespace in which `bytes` are iproute2's
/// rt_tables file (at `target`): a tmpfs is mounted over /dev/shm, the file written into it and
/// bound over rt_tables, and the tmpfs detached. Only syscalls on prepared values: safe to
/// call between fork and exec.
pub fn private_rt_tables(bytes: &[u8], target: &CStr) -> io::Result<()> {
    const FILE: &CStr = c"/dev/shm/rt_tables";
    private_scratch(c"size=64k,mode=0755")?;
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

/// What [`private_writes`] mounts, prepared before the fork: for each folder of
/// [`PRIVATE_WRITES`], its upper and work folders in the scratch tmpfs, and the overlay's
/// options (plain, and with `userxattr` for a user namespace that needs it).
pub struct Overlays {
    /// (folder, upper, work, options, options for a user namespace, the folder's mode)
    each: Vec<(
        &'static CStr,
        CString,
        CString,
        CString,
        CString,
        libc::mode_t,
    )>,
    /// The program's working folder, entered again once the overlays are mounted: the one it
    /// was given names the folder beneath them, where its writes would reach the host.
    cwd: Option<CString>,
}

impl Overlays {
    fn new(cwd: Option<&Path>) -> io::Result<Overlays> {
        let c = |s: String| CString::new(s).map_err(|_| io::Error::other("NUL in a path"));
        let mut each = Vec::new();
        for (i, dir) in PRIVATE_WRITES.iter().enumerate() {
            let lower = dir.to_str().map_err(io::Error::other)?;
            let (upper, work) = (format!("/dev/shm/u{i}"), format!("/dev/shm/w{i}"));
            let opts = format!("lowerdir={lower},upperdir={upper},workdir={work}");
            // The overlay's top shows its upper folder's mode: /tmp's 1777 must stay 1777.
            let mode = std::fs::metadata(lower).map_or(0o755, |m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
            });
            each.push((
                *dir,
                c(upper)?,
                c(work)?,
                c(opts.clone())?,
                c(format!("{opts},userxattr"))?,
                mode as libc::mode_t,
            ));
        }
        let cwd = match cwd {
            Some(p) => Some(cstr(&std::path::absolute(p)?)?),
            None => None,
        };
        Ok(Overlays { each, cwd })
    }
}

/// Moves the calling process into a private mount namespace in which each folder of
/// [`PRIVATE_WRITES`] is an overlay whose writable layer is a tmpfs (the folder's files
/// show through; what is written stays in the namespace), /dev/shm is a tmpfs of its own, and
/// the working folder is entered again through the overlays (a repository under /tmp stays
/// where it was). A folder the kernel will not overlay stays as it is.
/// The scratch tmpfs holding the writable layers is detached: it lives while the overlays
/// do. Only syscalls on prepared values: safe to call between fork and exec.
pub fn private_writes(o: &Overlays) -> io::Result<()> {
    private_scratch(c"mode=0755")?;
    for (dir, upper, work, opts, userxattr, mode) in &o.each {
        for d in [upper, work] {
            // SAFETY: mkdir on a NUL-terminated path.
            if unsafe { libc::mkdir(d.as_ptr(), 0o755) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: chmod on a NUL-terminated path (mkdir's mode is cut by the umask).
        if unsafe { libc::chmod(upper.as_ptr(), *mode) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let plain = mount(
            Some(c"overlay"),
            *dir,
            Some(c"overlay"),
            MsFlags::empty(),
            Some(opts.as_c_str()),
        );
        if plain.is_err() {
            // In a user namespace (rootless), overlayfs wants `userxattr`, and refuses some
            // folders (/run) outright: those stay the host's, which root of a user namespace
            // of its own cannot write anyway.
            let _ = mount(
                Some(c"overlay"),
                *dir,
                Some(c"overlay"),
                MsFlags::empty(),
                Some(userxattr.as_c_str()),
            );
        }
    }
    umount2(SCRATCH, MntFlags::MNT_DETACH)?;
    mount(
        Some(c"harness"),
        SCRATCH,
        Some(c"tmpfs"),
        MsFlags::empty(),
        Some(c"mode=1777"),
    )?;
    if let Some(cwd) = &o.cwd {
        // SAFETY: chdir on a NUL-terminated path.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("path with a NUL byte"))
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

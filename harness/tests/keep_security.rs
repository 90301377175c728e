//! Kept labs that another local user cannot hijack (#14 §3).
//!
//! `harness down` signals the process a state file names and `harness shell` opens its fds
//! for setns: whoever can write a state file chooses the process. These trials plant what a
//! hostile local user could, and check that `down`, `shell` and `run --keep` refuse (exit 2,
//! saying what is wrong and where) and that the planted "keeper" — a `sleep` of the very user
//! running the harness, the victim — survives untouched:
//!  * a state directory that is world-writable, owned by another user, or a symlink to
//!    another user's directory (as ssh-agent and tmux refuse for their sockets);
//!  * a state file, in the user's own sound directory, naming a live process of the user
//!    that is not a harness keeper (as if written by mistake, or a pid reused);
//!  * a state file naming a real keeper, but other namespaces than the ones it holds.
//!
//! And the keeper's life cycle:
//!  * `kill -9` of `run --keep` at any moment around the keeper's start never leaves a keeper
//!    holding the lab that `harness down` cannot find;
//!  * `down` removes the state directory once it is empty, also when the keeper was killed.
//!
//! The trials run the real binary as `nobody` (uid 65534, through setpriv), with
//! `XDG_RUNTIME_DIR` pointing into a temporary directory, so the state directory is the
//! harness's own choice (`$XDG_RUNTIME_DIR/harness`) and nothing on the host is touched.
//! They need real root (to plant other users' files); without it they are reported ignored,
//! or fail under CI (see `common::Needs`).

mod common;

use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

const SCENARIO: &str = "scenarios/dual-isp.yaml";
const NOBODY: u32 = 65534;
/// The other local user, who plants things.
const ATTACKER: u32 = 12345;

/// One trial at a time: the killed-harness trial counts this process's children.
static ONE: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// `$XDG_RUNTIME_DIR/harness` is the user's, but mode 0777: anyone may plant files.
    WorldWritable,
    /// `$XDG_RUNTIME_DIR/harness` belongs to another user.
    ForeignOwner,
    /// `$XDG_RUNTIME_DIR/harness` is a symlink to another user's directory.
    Symlink,
    /// `$HARNESS_STATE_DIR` names a group-writable directory.
    GroupWritableEnv,
}

fn main() {
    let args = Arguments::from_args();
    let root = common::Needs::real_root();
    let privileged = root.and(&common::Needs::netns());
    if privileged.met() {
        // Whatever a killed harness leaves running is re-parented here, where it is seen.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
            panic!(
                "PR_SET_CHILD_SUBREAPER: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let mut trials = Vec::new();
    for h in [
        Hostile::WorldWritable,
        Hostile::ForeignOwner,
        Hostile::Symlink,
        Hostile::GroupWritableEnv,
    ] {
        let name = format!("hostile_state_dir_{h:?}").to_lowercase();
        trials.push(root.trial(name, move || hostile_state_dir(h)));
    }
    trials.push(root.trial("planted_keeper_file_in_own_dir", planted_keeper_file));
    trials.push(root.trial("stale_state_file_down_removes_dir", stale_state_file));
    trials.push(privileged.trial("killed_keeper_down_removes_dir", killed_keeper));
    trials.push(privileged.trial("killed_harness_leaves_no_orphan_keeper", killed_harness));
    trials.push(privileged.trial("keeper_of_other_namespaces_refused", other_namespaces));
    trials.push(root.trial("uncreatable_state_dir_refused_before_the_run", uncreatable));
    libtest_mimic::run(&args, trials).exit();
}

/// A world-readable copy of what a dual-isp run reads, and an `XDG_RUNTIME_DIR` in it that
/// belongs to `nobody` (mode 0700).
struct Place {
    copy: tempfile::TempDir,
    runtime: PathBuf,
}

impl Place {
    fn new() -> Result<Place, Failed> {
        let copy = common::world_readable_copy(&[SCENARIO, "scenarios/dual-isp", "topologies"])?;
        fs::set_permissions(copy.path(), fs::Permissions::from_mode(0o755))?;
        let runtime = copy.path().join("run");
        fs::create_dir(&runtime)?;
        chown(&runtime, Some(NOBODY), Some(NOBODY))?;
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700))?;
        Ok(Place { copy, runtime })
    }

    /// The state directory the harness picks for `nobody` here.
    fn state_dir(&self) -> PathBuf {
        self.runtime.join("harness")
    }

    /// `harness ARGS…` as `nobody`: exit code and everything it said.
    fn harness(&self, args: &[&str], env: &[(&str, &Path)]) -> Result<(i32, String), Failed> {
        let mut cmd = common::as_nobody(self.copy.path(), args);
        cmd.env_remove("HARNESS_STATE_DIR")
            .env("XDG_RUNTIME_DIR", &self.runtime);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        Ok((out.status.code().unwrap_or(-1), text))
    }
}

/// A process of `nobody` that has nothing to do with the harness.
struct Victim(Child);

impl Victim {
    fn spawn() -> Result<Victim, Failed> {
        let child = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "600",
            ])
            .stdin(Stdio::null())
            .spawn()?;
        let v = Victim(child);
        // setpriv execs sleep in the same process: wait until it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_to_string(format!("/proc/{}/comm", v.pid()))?.trim() != "sleep" {
            if Instant::now() > deadline {
                return Err("the victim `sleep` did not start".into());
            }
            sleep(Duration::from_millis(2));
        }
        Ok(v)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Its start time, as a forger reads it from /proc/PID/stat.
    fn start(&self) -> Result<u64, Failed> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .ok_or("stat")?
            .1
            .split_whitespace()
            .collect();
        Ok(f[19].parse()?)
    }

    /// Alive, and neither stopped nor signalled.
    fn untouched(&mut self) -> Result<(), String> {
        match self.0.try_wait() {
            Ok(None) => {}
            Ok(Some(s)) => return Err(format!("the victim `sleep` was ended: {s}")),
            Err(e) => return Err(format!("waiting for the victim: {e}")),
        }
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, t)| t.trim_start().chars().next());
        match state {
            Some(Some('S' | 'R')) => Ok(()),
            s => Err(format!("the victim `sleep` is in state {s:?}")),
        }
    }

    /// A state file of the current format naming the victim, as a forger writes it.
    fn planted(&self) -> Result<String, Failed> {
        Ok(format!(
            r#"{{"scenario": "dual-isp", "file": "scenarios/dual-isp.yaml", "pid": {}, "start": {}, "nodes": [["jupiter", 0], ["saturn", 1]], "mount_ns": false}}"#,
            self.pid(),
            self.start()?
        ))
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `text` to `path`, owned by `uid`.
fn plant(path: &Path, text: &str, uid: u32) -> Result<(), Failed> {
    fs::write(path, text)?;
    chown(path, Some(uid), Some(uid))?;
    Ok(())
}

/// Processes of `nobody` whose command line says they are harness keepers, kept by a run
/// from `place` (their state files are in `dir`): ended, so no trial leaves one behind.
fn end_keepers_in(dir: &Path) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(text) = fs::read_to_string(e.path()) else {
            continue;
        };
        let Some(pid) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["pid"].as_i64())
        else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("harness") {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// The checks every refusal shares: exit 2, the reason said with the directory's path, the
/// victim untouched.
fn refused(
    what: &str,
    (code, said): (i32, String),
    reason: &str,
    dir: &Path,
    victim: &mut Victim,
    problems: &mut Vec<String>,
) {
    let shown = dir.display().to_string();
    if code != 2 || !said.contains(reason) || !said.contains(&shown) {
        problems.push(format!(
            "`harness {what}`: exit {code}, want 2 saying `{reason}` about `{shown}`; said:\n{said}"
        ));
    }
    if let Err(m) = victim.untouched() {
        problems.push(format!("after `harness {what}`: {m}"));
    }
}

fn hostile_state_dir(h: Hostile) -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let place = Place::new()?;
    let mut victim = Victim::spawn()?;
    let planted = victim.planted()?;
    let name = format!("dual-isp-{}.json", victim.pid());
    let default = place.state_dir();
    let (dir, env, reason): (PathBuf, Vec<(&str, &Path)>, &str) = match h {
        Hostile::WorldWritable => {
            fs::create_dir(&default)?;
            chown(&default, Some(NOBODY), Some(NOBODY))?;
            fs::set_permissions(&default, fs::Permissions::from_mode(0o777))?;
            plant(&default.join(&name), &planted, ATTACKER)?;
            (default.clone(), vec![], "writable by others")
        }
        Hostile::ForeignOwner => {
            fs::create_dir(&default)?;
            chown(&default, Some(ATTACKER), Some(ATTACKER))?;
            fs::set_permissions(&default, fs::Permissions::from_mode(0o755))?;
            plant(&default.join(&name), &planted, ATTACKER)?;
            (default.clone(), vec![], "owned by uid 12345")
        }
        Hostile::Symlink => {
            let theirs = place.copy.path().join("attacker");
            fs::create_dir(&theirs)?;
            chown(&theirs, Some(ATTACKER), Some(ATTACKER))?;
            fs::set_permissions(&theirs, fs::Permissions::from_mode(0o755))?;
            plant(&theirs.join(&name), &planted, ATTACKER)?;
            symlink(&theirs, &default)?;
            (default.clone(), vec![], "symbolic link")
        }
        Hostile::GroupWritableEnv => {
            let given = place.copy.path().join("given");
            fs::create_dir(&given)?;
            chown(&given, Some(NOBODY), Some(NOBODY))?;
            fs::set_permissions(&given, fs::Permissions::from_mode(0o770))?;
            plant(&given.join(&name), &planted, NOBODY)?;
            (given, vec![], "writable by others")
        }
    };
    let env: Vec<(&str, &Path)> = match h {
        Hostile::GroupWritableEnv => vec![("HARNESS_STATE_DIR", dir.as_path())],
        _ => env,
    };
    let mut problems = Vec::new();
    for args in [
        &["down"][..],
        &["down", "--lab", "dual-isp"],
        &["shell", "jupiter", "--", "true"],
        &[
            "shell",
            "--lab",
            &victim.pid().to_string(),
            "jupiter",
            "--",
            "true",
        ],
        &["run", "--keep", SCENARIO],
    ] {
        let out = place.harness(args, &env)?;
        refused(
            &args.join(" "),
            out,
            reason,
            &dir,
            &mut victim,
            &mut problems,
        );
    }
    if !dir.join(&name).exists() {
        problems.push(format!("the planted {name} was removed"));
    }
    end_keepers_in(&dir);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The user's own directory, sound, with a state file naming a live process of the user that
/// is not a keeper: nothing is signalled or entered.
fn planted_keeper_file() -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let place = Place::new()?;
    let mut victim = Victim::spawn()?;
    let dir = place.state_dir();
    fs::create_dir(&dir)?;
    chown(&dir, Some(NOBODY), Some(NOBODY))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let name = format!("dual-isp-{}.json", victim.pid());
    plant(&dir.join(&name), &victim.planted()?, NOBODY)?;
    let file = dir.join(&name);
    let mut problems = Vec::new();
    for args in [
        &["down"][..],
        &["down", "--lab", "dual-isp"],
        &["shell", "jupiter", "--", "true"],
        &["shell", "--lab", "dual-isp", "saturn"],
    ] {
        let out = place.harness(args, &[])?;
        refused(
            &args.join(" "),
            out,
            "is not a harness keeper",
            &file,
            &mut victim,
            &mut problems,
        );
    }
    end_keepers_in(&dir);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A state file whose keeper is gone, and the temporary file of a keeper killed before its
/// rename: `down` removes them, and the directory with them.
fn stale_state_file() -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let place = Place::new()?;
    let dir = place.state_dir();
    fs::create_dir(&dir)?;
    chown(&dir, Some(NOBODY), Some(NOBODY))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let mut gone = Command::new("true").spawn()?;
    let pid = gone.id();
    gone.wait()?;
    let text = format!(
        r#"{{"scenario": "dual-isp", "file": "x", "pid": {pid}, "start": 1, "nodes": [["jupiter", 100]], "mount_ns": false}}"#
    );
    plant(&dir.join(format!("dual-isp-{pid}.json")), &text, NOBODY)?;
    // And what a keeper killed between writing and renaming its state file leaves.
    plant(&dir.join(format!(".dual-isp-{pid}.json.tmp")), "{", NOBODY)?;
    let (code, said) = place.harness(&["down"], &[])?;
    let mut problems = Vec::new();
    if code != 0 || !said.contains("no kept lab") {
        problems.push(format!("`harness down`: exit {code}, said:\n{said}"));
    }
    if dir.exists() {
        let left: Vec<_> = fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        problems.push(format!(
            "{} is still there after `down` (holding {left:?})",
            dir.display()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The pid in the only state file in `dir`.
fn kept_pid(dir: &Path) -> Result<i32, Failed> {
    let files: Vec<PathBuf> = fs::read_dir(dir)?.flatten().map(|e| e.path()).collect();
    let [file] = files.as_slice() else {
        return Err(format!("want one state file in {}, found {files:?}", dir.display()).into());
    };
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(file)?)?;
    Ok(v["pid"].as_i64().ok_or("no pid in the state file")? as i32)
}

/// `run --keep`, then the keeper is killed: `down` finds nothing and leaves no directory.
fn killed_keeper() -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let place = Place::new()?;
    let dir = place.state_dir();
    let (code, said) = place.harness(&["run", "--keep", SCENARIO], &[])?;
    if code != 0 {
        return Err(format!("run --keep: exit {code}, said:\n{said}").into());
    }
    let pid = kept_pid(&dir)?;
    let m = fs::symlink_metadata(&dir)?;
    let mut problems = Vec::new();
    if !m.is_dir() || m.uid() != NOBODY || m.mode() & 0o7777 != 0o700 {
        problems.push(format!(
            "the harness made {} with uid {} and mode {:o}; want a directory of uid {NOBODY}, \
             mode 700",
            dir.display(),
            m.uid(),
            m.mode() & 0o7777
        ));
    }
    kill(Pid::from_raw(pid), Signal::SIGKILL)?;
    // The keeper is re-parented here (subreaper): reap it, so it is gone, not a zombie.
    let _ = waitpid(Pid::from_raw(pid), None);
    let (code, said) = place.harness(&["down"], &[])?;
    if code != 0 || !said.contains("no kept lab") {
        problems.push(format!("`harness down`: exit {code}, said:\n{said}"));
    }
    if dir.exists() {
        problems.push(format!("{} is still there after `down`", dir.display()));
    }
    // And the ordinary way: keep, down, nothing left.
    let (code, said) = place.harness(&["run", "--keep", SCENARIO], &[])?;
    if code != 0 {
        return Err(format!("second run --keep: exit {code}, said:\n{said}").into());
    }
    let pid = kept_pid(&dir)?;
    let (code, said) = place.harness(&["down"], &[])?;
    let _ = waitpid(Pid::from_raw(pid), None);
    if code != 0 || !said.contains("removed lab `dual-isp`") {
        problems.push(format!("`harness down`: exit {code}, said:\n{said}"));
    }
    if dir.exists() {
        end_keepers_in(&dir);
        problems.push(format!(
            "{} is still there after `down` of a live lab",
            dir.display()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The children of `pid` (of all its threads).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for t in fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    out
}

/// Whether `pid` is (or is becoming) the keeper: named `harness-keep`, or running the hidden
/// keeper command.
fn is_keeper(pid: i32) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    comm.trim() == "harness-keep" || String::from_utf8_lossy(&cmdline).contains("keeper")
}

/// `kill -9` of `run --keep` as soon as its keeper shows, and a little later: afterwards each
/// keeper either is gone or is found and removed by `down`; none is left holding the lab.
///
/// The keeper is the run's child only for a few milliseconds: the run gets nice 19 so the
/// watcher here sees it, and runs repeat until `CAUGHT` of them were killed that way (a run
/// that ends before it is caught is checked all the same).
fn killed_harness() -> Result<(), Failed> {
    const CAUGHT: usize = 5;
    const DELAYS_US: [u64; CAUGHT] = [0, 0, 100, 300, 1000];
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let state = tempfile::tempdir()?;
    let dir = state.path().join("labs");
    let me = std::process::id() as i32;
    let mut problems = Vec::new();
    let (mut caught, mut rounds) = (0, 0);
    while caught < CAUGHT && rounds < 25 {
        rounds += 1;
        let delay_us = DELAYS_US[caught];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args(["run", "--keep", SCENARIO])
            .current_dir(repo_path("."))
            .env("HARNESS_STATE_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: signal(2) and setpriority(2) are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                Ok(())
            });
        }
        let mut run = cmd.spawn()?;
        let pid = run.id() as i32;
        // The keeper is spawned by the run's main thread.
        let main_kids = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + Duration::from_secs(30);
        let keeper = loop {
            let text = fs::read_to_string(&main_kids).unwrap_or_default();
            let mut kids = text.split_whitespace().filter_map(|c| c.parse().ok());
            if let Some(k) = kids.find(|&c| is_keeper(c)) {
                break Some(k);
            }
            if run.try_wait()?.is_some() || Instant::now() > deadline {
                break None;
            }
            std::hint::spin_loop();
        };
        if keeper.is_some() {
            caught += 1;
            if delay_us > 0 {
                sleep(Duration::from_micros(delay_us));
            }
        }
        let _ = run.kill();
        let status = run.wait()?;
        // Give the keeper time to finish starting (or to die), then ask `down`.
        sleep(Duration::from_millis(300));
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("down")
            .current_dir(repo_path("."))
            .env("HARNESS_STATE_DIR", &dir)
            .stdin(Stdio::null())
            .output()?;
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        // Reap what `down` ended; anything still alive here is an orphan keeper.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                if s == nix::sys::wait::WaitStatus::StillAlive {
                    break;
                }
            }
            if children(me).is_empty() || Instant::now() > deadline {
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let left = children(me);
        if !left.is_empty() {
            let when = match keeper {
                Some(k) => format!("killed {delay_us} µs after keeper {k} showed"),
                None => format!("not caught, the run ended: {status}"),
            };
            problems.push(format!(
                "round {rounds} ({when}): `down` said {said:?} (exit {:?}) and left {left:?} \
                 running",
                out.status.code()
            ));
            for c in left {
                let _ = kill(Pid::from_raw(c), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(c), None);
            }
        }
    }
    if caught < CAUGHT {
        problems.push(format!(
            "the keeper was seen starting in only {caught} of {rounds} runs: the window was not \
             tested enough (machine too busy?)"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A real keeper, its state file changed to record another network namespace for one node:
/// `shell` and `down` refuse and the keeper lives on; with the file restored, `down` works.
fn other_namespaces() -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let state = tempfile::tempdir()?;
    let dir = state.path().join("labs");
    let harness = |args: &[&str]| -> Result<(i32, String), Failed> {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .current_dir(repo_path("."))
            .env("HARNESS_STATE_DIR", &dir)
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        Ok((out.status.code().unwrap_or(-1), text))
    };
    let (code, said) = harness(&["run", "--keep", SCENARIO])?;
    if code != 0 {
        return Err(format!("run --keep: exit {code}, said:\n{said}").into());
    }
    let pid = kept_pid(&dir)?;
    let file = dir.join(format!("dual-isp-{pid}.json"));
    let original = fs::read_to_string(&file)?;
    let mut v: serde_json::Value = serde_json::from_str(&original)?;
    // This process's own network namespace: one the keeper does not hold at its fd.
    let own = fs::metadata("/proc/self/ns/net")?;
    v["nets"][0] = own.ino().into();
    fs::write(&file, v.to_string())?;
    let mut problems = Vec::new();
    for args in [&["down"][..], &["shell", "internet", "--", "true"]] {
        let (code, said) = harness(args)?;
        if code != 2 || !said.contains("is not the network namespace of node `internet`") {
            problems.push(format!(
                "`harness {}`: exit {code}, said:\n{said}",
                args.join(" ")
            ));
        }
        if fs::read_to_string(format!("/proc/{pid}/comm"))?.trim() != "harness-keep" {
            problems.push(format!(
                "after `harness {}` the keeper is gone",
                args.join(" ")
            ));
        }
    }
    fs::write(&file, original)?;
    let (code, said) = harness(&["down"])?;
    let _ = waitpid(Pid::from_raw(pid), None);
    if code != 0 || !said.contains("removed lab `dual-isp`") {
        problems.push(format!(
            "`harness down` after the restore: exit {code}, said:\n{said}"
        ));
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// `$XDG_RUNTIME_DIR` not writable by the user (another user's, kept across `su`): `run
/// --keep` says so and runs nothing, rather than running the scenario and then failing to
/// keep the lab.
fn uncreatable() -> Result<(), Failed> {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let place = Place::new()?;
    let theirs = place.copy.path().join("theirs");
    fs::create_dir(&theirs)?;
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o755))?;
    let (code, said) = place.harness(
        &["run", "--keep", SCENARIO],
        &[("XDG_RUNTIME_DIR", &theirs)],
    )?;
    let want = format!("`{}` is not writable", theirs.display());
    if code != 2 || !said.contains(&want) || said.contains("dual-isp: ") || said.contains("flow ") {
        return Err(format!(
            "`harness run --keep`: exit {code}, want 2 saying {want} before any run; said:\n{said}"
        )
        .into());
    }
    Ok(())
}

//! What the integration tests share: running the harness as `nobody`, and what a trial does
//! on a machine that cannot give it what it needs ([`Needs`]).

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use harness::model::repo_path;
use libtest_mimic::{Failed, Trial};

/// The harness binary, run from the repository's root: its exit code, stdout and stderr.
pub fn harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`harness`], with what it printed on stdout and stderr together.
pub fn harness_said(args: &[&str]) -> (i32, String) {
    let (code, out, err) = harness(args);
    (code, out + &err)
}

/// Whether a trial this machine cannot run (no namespaces, no real root) fails rather than
/// being reported ignored: under `CI` (set and neither empty, `0` nor `false`), or with
/// `HARNESS_REQUIRE_LAB=1`; `HARNESS_REQUIRE_LAB=0` reports them ignored even under CI. A CI
/// run that judged nothing must not pass.
pub fn lab_required() -> bool {
    let set = |v: &str| !matches!(v.trim(), "" | "0" | "false" | "no");
    match std::env::var("HARNESS_REQUIRE_LAB") {
        Ok(v) => set(&v),
        Err(_) => std::env::var("CI").is_ok_and(|v| set(&v)),
    }
}

/// What some trials need of this machine, and why it is missing if it is.
#[derive(Clone, Debug)]
pub struct Needs {
    /// What is missing and why; `None` when the machine has it.
    missing: Option<String>,
}

impl Needs {
    /// Says on stderr, once, what is missing and what becomes of the trials that need it.
    fn new(missing: Option<String>) -> Needs {
        if let Some(why) = &missing {
            let fate = if lab_required() {
                "fail (CI is set)"
            } else {
                "are reported ignored"
            };
            eprintln!("{why}: the trials that need it {fate}");
        }
        Needs { missing }
    }

    /// Labs: when not root, become root of a user namespace of our own as the harness does
    /// (so call this first in `main`, while the process has one thread), then create a
    /// network namespace to see that the kernel allows it.
    pub fn lab() -> Needs {
        let entered = harness::rootless::enter();
        harness::rootless::raise_fd_limit();
        Needs::probe(entered.err().map(|e| e.to_string()))
    }

    /// Labs, in the user namespace this process is in: for trials that must not enter one.
    pub fn netns() -> Needs {
        Needs::probe(None)
    }

    fn probe(not_entered: Option<String>) -> Needs {
        let missing = match (harness::lab::Netns::new("probe"), not_entered) {
            (Ok(_), _) => None,
            (Err(_), Some(why)) => Some(why),
            (Err(e), None) => Some(format!("the kernel refused a network namespace: {e}")),
        };
        Needs::new(missing.map(|why| {
            format!(
                "cannot build a lab here: {why}; run the tests as root, or in a privileged \
                 container (ci/README.md)"
            )
        }))
    }

    /// Real root, not root of a user namespace: to drop to `nobody` with setpriv.
    pub fn real_root() -> Needs {
        let root = nix::unistd::geteuid().is_root() && !harness::rootless::in_user_namespace();
        Needs::new((!root).then(|| {
            format!(
                "needs real root to run the harness as `nobody`, and runs as uid {}{}",
                harness::rootless::outer_uid(),
                if harness::rootless::in_user_namespace() {
                    " (root of a user namespace only)"
                } else {
                    ""
                }
            )
        }))
    }

    /// Root, as this process was started (a container's root counts): to run the harness as
    /// `nobody` with setpriv.
    pub fn root() -> Needs {
        let uid = nix::unistd::geteuid();
        Needs::new(
            (!uid.is_root()).then(|| {
                format!("needs root to run the harness as `nobody`, and runs as uid {uid}")
            }),
        )
    }

    /// `program` on `PATH` (Debian package `package`), which the trials run.
    pub fn tool(program: &str, package: &str) -> Needs {
        let found = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(program))
            .any(|p| {
                std::fs::metadata(&p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            });
        Needs::new((!found).then(|| {
            format!(
                "`{program}` is not on PATH: install it with `apt-get install -y {package}` \
                     (ci/install-deps installs every tool the tests run)"
            )
        }))
    }

    /// Both.
    pub fn and(&self, other: &Needs) -> Needs {
        Needs {
            missing: match (&self.missing, &other.missing) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.clone().or_else(|| b.clone()),
            },
        }
    }

    /// Whether the machine has it.
    pub fn met(&self) -> bool {
        self.missing.is_none()
    }

    /// Trial `name` running `f` where the machine has what it needs. Where it has not: a
    /// trial that fails saying why and what to do when [`lab_required`], else `f` reported
    /// ignored, not passed.
    pub fn trial(
        &self,
        name: impl Into<String>,
        f: impl FnOnce() -> Result<(), Failed> + Send + 'static,
    ) -> Trial {
        match &self.missing {
            None => Trial::test(name, f),
            Some(why) if lab_required() => {
                let msg = format!(
                    "{why}.\nCI is set (or HARNESS_REQUIRE_LAB=1): a trial that cannot run here \
                     fails rather than being reported ignored (HARNESS_REQUIRE_LAB=0 reports it \
                     ignored)"
                );
                Trial::test(name, move || Err(msg.into()))
            }
            Some(_) => Trial::test(name, f).with_ignored_flag(true),
        }
    }
}

/// The harness binary inside a [`world_readable_copy`].
pub const UNDER_TEST: &str = "./harness-under-test";

/// `paths` (files or folders, relative to the checkout) with the same layout, so relative
/// paths in them hold, and the binary as [`UNDER_TEST`], in a directory `nobody` can read: the
/// checkout itself may be closed to it.
pub fn world_readable_copy(paths: &[&str]) -> Result<tempfile::TempDir, Failed> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let copied = Command::new("cp")
        .args(["-r", "--parents"])
        .args(paths)
        .arg(root)
        .current_dir(repo_path("."))
        .status()?;
    if !copied.success() {
        return Err(format!("copying {paths:?} for `nobody` failed").into());
    }
    let bin = root.join(UNDER_TEST);
    std::fs::copy(env!("CARGO_BIN_EXE_harness"), &bin)?;
    let readable = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(root)
        .status()?;
    if !readable.success() {
        return Err("chmod -R a+rX on the copy failed".into());
    }
    std::fs::set_permissions(bin, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// `harness ARGS…` as `nobody` (uid 65534, through setpriv), in a [`world_readable_copy`].
pub fn as_nobody(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        UNDER_TEST,
    ])
    .args(args)
    .current_dir(dir)
    .stdin(Stdio::null());
    cmd
}

/// A trial's folder, removed when the trial ends, failed or not.
pub struct Folder(pub std::path::PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scenario on `topologies/{topology}.yaml` whose lab a trial builds itself (no rules in
/// the router, one UDP flow), in a fresh folder named after the test binary `what` and
/// trial `tag`.
pub fn lab_plan(
    topology: &str,
    what: &str,
    tag: &str,
) -> Result<(harness::model::Plan, Folder), Failed> {
    let dir = std::env::temp_dir().join(format!("harness-{what}-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = Folder(dir);
    std::fs::write(dir.0.join("none.ip"), "# the main tables route\n")?;
    let file = dir.0.join("lab.yaml");
    std::fs::write(
        &file,
        format!(
            "topology: {}\nrules:\n  jupiter:\n    files:\n      - ip: none.ip\n\
             traffic:\n  - {{ name: dns, proto: udp, from: saturn, to: neptune, port: 53 }}\n\
             expect:\n  - {{ name: out, flows: all, via: wan1 }}\n",
            repo_path(&format!("topologies/{topology}.yaml")).display()
        ),
    )?;
    let plan = harness::model::load(&file)?;
    Ok((plan, dir))
}

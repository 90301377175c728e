//! What the integration tests share: running the harness as `nobody`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use harness::spec::repo_path;
use libtest_mimic::Failed;

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

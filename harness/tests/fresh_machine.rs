//! Two commands on a fresh machine, and no green run that judged nothing.
//!
//! The README's first command and `ci/Containerfile` install the system packages with one
//! script, `ci/install-deps`, whose list holds every tool the tests run; `.ci/run` installs
//! the same list with apt-get itself, word for word, so that it reads whole on a fresh
//! machine. These trials fail when one of them installs packages another way, the two lists
//! differ, or the list loses a tool.
//!
//! Where a lab cannot be built, a trial is reported ignored, or under `CI=true` (or
//! `HARNESS_REQUIRE_LAB=1`) fails saying why, and every test file leaves that decision to
//! tests/common/mod.rs. The policy trials run this very binary where no network namespace can
//! be made — in a user namespace without a uid mapping (`unshare --user`), and as root of a
//! user namespace whose `user.max_net_namespaces` is 0 (set inside that namespace only; the
//! host's limit is untouched) — and check what it reports.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use harness::model::repo_path;
use libtest_mimic::{Arguments, Failed, Trial};

/// Set in the child: it then lists only [`LAB_FIXTURE`] and [`TOOL_FIXTURE`], trials that
/// need a lab or a tool nowhere on PATH, and do nothing.
const FIXTURE_ENV: &str = "HARNESS_TEST_POLICY_FIXTURE";
const LAB_FIXTURE: &str = "policy fixture: needs a lab";
const TOOL_FIXTURE: &str = "policy fixture: needs a tool";
const NO_SUCH_TOOL: &str = "harness-test-no-such-tool";

fn read(rel: &str) -> Result<String, Failed> {
    std::fs::read_to_string(repo_path(rel)).map_err(|e| format!("reading `{rel}`: {e}").into())
}

/// The lines of a script that do something: no comments, no blank lines, continuations joined.
fn commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for l in script.lines() {
        let l = l.trim();
        if l.starts_with('#') || (l.is_empty() && line.is_empty()) {
            continue;
        }
        line.push_str(l.trim_end_matches('\\'));
        line.push(' ');
        if !l.ends_with('\\') {
            out.push(line.trim().to_string());
            line.clear();
        }
    }
    out
}

/// Whether a command installs packages itself.
fn installs(command: &str) -> bool {
    [
        "apt-get install",
        "apt install",
        "dpkg -i",
        "apk add",
        "dnf install",
        "yum install",
    ]
    .iter()
    .any(|w| command.contains(w))
}

/// The packages `ci/install-deps` installs: the words of its `packages="…"` line.
fn packages() -> Result<Vec<String>, Failed> {
    let script = read("ci/install-deps")?;
    let lists: Vec<&str> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("packages=\""))
        .collect();
    match lists.as_slice() {
        [one] => Ok(one
            .trim_end_matches('"')
            .split_whitespace()
            .map(str::to_string)
            .collect()),
        _ => Err(format!(
            "ci/install-deps must hold one `packages=\"…\"` line, found {}",
            lists.len()
        )
        .into()),
    }
}

/// The code blocks of the README's section `## Two commands`.
fn two_commands() -> Result<Vec<String>, Failed> {
    let readme = read("README.md")?;
    let start = readme
        .find("\n## Two commands\n")
        .ok_or("README.md has no section `## Two commands`")?;
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let end = body
            .find("```")
            .ok_or("README.md: a ```sh block is not closed")?;
        blocks.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    Ok(blocks)
}

fn readme_commands() -> Result<(), Failed> {
    let blocks = two_commands()?;
    let [first, second] = blocks.as_slice() else {
        return Err(format!(
            "README.md's `## Two commands` must hold two ```sh blocks: {blocks:?}"
        )
        .into());
    };
    let lines: Vec<&str> = first.lines().collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "the README's first command must be one line to copy and paste:\n{first}"
        )
        .into());
    };
    if !line.starts_with("ci/install-deps && ") {
        return Err(format!(
            "the README's first command must install with `ci/install-deps`, as .ci/run does:\n{line}"
        )
        .into());
    }
    if installs(line) {
        return Err(
            format!("the README's first command installs packages of its own: {line}").into(),
        );
    }
    if !line.ends_with("-- run scenarios/dual-isp.yaml") {
        return Err(format!(
            "the README's first command must run the harness on scenarios/dual-isp.yaml:\n{line}"
        )
        .into());
    }
    if second.trim() != "cargo test" {
        return Err(format!("the README's second command must be `cargo test`:\n{second}").into());
    }
    Ok(())
}

fn ci_run() -> Result<(), Failed> {
    let cmds = commands(&read(".ci/run")?);
    // .ci/run installs the packages itself, so that whoever reads it sees them installed on a
    // fresh machine; its list must be ci/install-deps' list, word for word.
    let update = cmds.iter().position(|c| c == "apt-get update");
    let install = cmds
        .iter()
        .position(|c| c.starts_with("apt-get install -y --no-install-recommends "));
    let (Some(update), Some(install)) = (update, install) else {
        return Err(format!(
            ".ci/run must run `apt-get update`, then `apt-get install -y --no-install-recommends` of the list:\n{cmds:#?}"
        )
        .into());
    };
    let listed: Vec<String> = cmds[install]["apt-get install -y --no-install-recommends ".len()..]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let list = packages()?;
    if update > install || listed != list {
        return Err(format!(
            ".ci/run must install, after `apt-get update`, exactly ci/install-deps' list:\n  .ci/run:         {}\n  ci/install-deps: {}",
            listed.join(" "),
            list.join(" ")
        )
        .into());
    }
    if cmds.iter().filter(|c| installs(c)).count() != 1 {
        return Err(
            format!(".ci/run must install packages once, with the list:\n{cmds:#?}").into(),
        );
    }
    if !cmds.iter().any(|c| c.starts_with("export CI=true"))
        || cmds.last().map(String::as_str) != Some("cargo test")
    {
        return Err(
            format!(".ci/run must end with `cargo test` under `CI=true`:\n{cmds:#?}").into(),
        );
    }
    Ok(())
}

fn containerfile() -> Result<(), Failed> {
    let cmds = commands(&read("ci/Containerfile")?);
    if !cmds.iter().any(|c| c.starts_with("COPY install-deps "))
        || !cmds.iter().any(|c| c.starts_with("RUN install-deps"))
    {
        return Err(format!("ci/Containerfile must copy and run install-deps:\n{cmds:#?}").into());
    }
    if let Some(c) = cmds.iter().find(|c| installs(c)) {
        return Err(format!("ci/Containerfile installs packages of its own: {c}").into());
    }
    Ok(())
}

/// Every tool a test or the harness runs, and the Debian package that has it.
const TOOLS: [(&str, &str); 11] = [
    ("ip", "iproute2"),
    ("iptables-restore", "iptables"),
    ("nft", "nftables"),
    ("ipset", "ipset"),
    ("sysctl", "procps"),
    ("setpriv, unshare", "util-linux"),
    ("the example generators", "python3"),
    ("tcpdump", "tcpdump"),
    ("xmllint", "libxml2-utils"),
    ("chromium", "chromium"),
    ("cargo's https", "ca-certificates"),
];

fn install_deps() -> Result<(), Failed> {
    let list = packages()?;
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(_, p)| !list.iter().any(|l| l == p))
        .map(|(t, p)| format!("{p} ({t})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("ci/install-deps does not install {}", missing.join(", ")).into());
    }
    let mode = std::fs::metadata(repo_path("ci/install-deps"))?
        .permissions()
        .mode();
    if mode & 0o111 != 0o111 {
        return Err(format!("ci/install-deps must be executable (mode {mode:o})").into());
    }
    Ok(())
}

/// What `ci/install-deps extra-package` runs, with an `apt-get` that only writes down its
/// arguments: `update`, then `install` of the whole list and the extra package, without asking.
fn install_deps_runs_apt_get() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("calls");
    let stub = dir.path().join("apt-get");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"$DEBIAN_FRONTEND apt-get $*\" >> '{}'\n",
            log.display()
        ),
    )?;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))?;
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(repo_path("ci/install-deps"))
        .arg("extra-package")
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "ci/install-deps failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let calls = std::fs::read_to_string(&log)?;
    let want = format!(
        "noninteractive apt-get update\nnoninteractive apt-get install -y --no-install-recommends {} extra-package\n",
        packages()?.join(" ")
    );
    if calls != want {
        return Err(format!("ci/install-deps ran:\n{calls}\nnot:\n{want}").into());
    }
    Ok(())
}

/// No test file ignores trials by itself: tests/common/mod.rs decides, CI or not.
fn one_policy() -> Result<(), Failed> {
    let dir = repo_path("harness/tests");
    let mut wrong = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        for (n, l) in text.lines().enumerate() {
            // Spelled in two parts so this file does not match itself.
            if [
                concat!("with_ignored", "_flag"),
                concat!("can_create", "_netns"),
                concat!("#[", "ignore"),
            ]
            .iter()
            .any(|w| l.contains(w))
            {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                wrong.push(format!("harness/tests/{name}:{}: {}", n + 1, l.trim()));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "trials skipped outside tests/common/mod.rs (use `common::Needs`, so CI fails them):\n{}",
            wrong.join("\n")
        )
        .into())
    }
}

/// Where this binary runs in the policy trials.
#[derive(Clone, Copy)]
enum Denied {
    /// `unshare --user`: no uid mapping, so no user namespace of its own, no network namespace.
    Unmapped,
    /// Root of a user namespace whose `user.max_net_namespaces` is 0.
    NoNetns,
    /// A tool that is nowhere on PATH.
    NoTool,
}

/// Runs a fixture trial of this binary where it cannot run, with `env`; exit code and stdout.
fn fixture(denied: Denied, env: &[(&str, &str)]) -> Result<(Option<i32>, String), Failed> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(if matches!(denied, Denied::NoTool) {
        exe.clone()
    } else {
        "unshare".into()
    });
    match denied {
        Denied::Unmapped => cmd.arg("--user").arg(&exe),
        Denied::NoNetns => cmd
            .args(["--user", "--map-root-user", "sh", "-c"])
            .arg("echo 0 > /proc/sys/user/max_net_namespaces || exit 90; exec \"$@\"")
            .arg("sh")
            .arg(&exe),
        Denied::NoTool => &mut cmd,
    };
    let fixture = match denied {
        Denied::NoTool => TOOL_FIXTURE,
        _ => LAB_FIXTURE,
    };
    cmd.args(["--exact", fixture])
        .env_remove("CI")
        .env_remove("HARNESS_REQUIRE_LAB")
        .env(FIXTURE_ENV, "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| format!("running unshare (apt-get install util-linux): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(90) {
        return Err(format!(
            "could not set user.max_net_namespaces inside a user namespace:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((out.status.code(), stdout))
}

/// `env` given, the fixture must fail (saying why and what to do) or be reported ignored.
fn policy(
    denied: Denied,
    env: &'static [(&'static str, &'static str)],
    fails: bool,
) -> Result<(), Failed> {
    let (code, stdout) = fixture(denied, env)?;
    let why = match denied {
        Denied::Unmapped => "cannot build a lab here: running as uid",
        Denied::NoNetns => "cannot build a lab here: the kernel refused a network namespace: No space left on device (os error 28); run the tests as root",
        Denied::NoTool => "`harness-test-no-such-tool` is not on PATH: install it with `apt-get install -y no-such-package`",
    };
    let ok = if fails {
        code == Some(101)
            && stdout.contains("1 failed")
            && stdout.contains(why)
            && stdout.contains("CI is set (or HARNESS_REQUIRE_LAB=1)")
    } else {
        code == Some(0) && stdout.contains("0 passed; 0 failed; 1 ignored")
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "with {env:?} the trial must {} (exit {:?}):\n{stdout}",
            if fails {
                format!("fail saying `{why}` and what to do")
            } else {
                "be reported ignored".into()
            },
            code
        )
        .into())
    }
}

fn main() {
    let lab = common::Needs::lab();
    let args = Arguments::from_args();
    if std::env::var_os(FIXTURE_ENV).is_some() {
        let tool = common::Needs::tool(NO_SUCH_TOOL, "no-such-package");
        let trials = vec![
            lab.trial(LAB_FIXTURE, || Ok(())),
            tool.trial(TOOL_FIXTURE, || Ok(())),
        ];
        libtest_mimic::run(&args, trials).exit();
    }
    let mut trials = vec![
        Trial::test(
            "README: one line installs with ci/install-deps and runs dual-isp",
            readme_commands,
        ),
        Trial::test(
            ".ci/run: installs ci/install-deps' list, then cargo test under CI=true",
            ci_run,
        ),
        Trial::test(
            "ci/Containerfile: installs with install-deps",
            containerfile,
        ),
        Trial::test("ci/install-deps: every tool the tests run", install_deps),
        Trial::test(
            "ci/install-deps: apt-get update, then install the list and its arguments",
            install_deps_runs_apt_get,
        ),
        Trial::test("tests: every skip goes through tests/common", one_policy),
    ];
    const CI: &[(&str, &str)] = &[("CI", "true")];
    const NONE: &[(&str, &str)] = &[];
    const REQUIRE: &[(&str, &str)] = &[("HARNESS_REQUIRE_LAB", "1")];
    const OPT_OUT: &[(&str, &str)] = &[("CI", "true"), ("HARNESS_REQUIRE_LAB", "0")];
    for (denied, d) in [
        (Denied::Unmapped, "no uid mapping"),
        (Denied::NoNetns, "max_net_namespaces 0"),
        (Denied::NoTool, "a tool missing"),
    ] {
        for (env, e, fails) in [
            (CI, "CI=true: fails, saying why", true),
            (NONE, "no CI: ignored", false),
            (REQUIRE, "HARNESS_REQUIRE_LAB=1: fails", true),
            (OPT_OUT, "CI=true HARNESS_REQUIRE_LAB=0: ignored", false),
        ] {
            trials.push(Trial::test(format!("policy, {d}, {e}"), move || {
                policy(denied, env, fails)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit()
}

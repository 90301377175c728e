//! The line between pure data and kernel code, kept: the pure modules (`model`, `observe`,
//! `verdict`, `report` but for `report/files.rs`, which writes files) name nothing of the
//! kernel-facing ones (`lab`, `install`, `traffic`, `run`, `watch`) nor the crates that talk
//! to the kernel (`nix`, `rtnetlink`). The compiler would let such an import through; this
//! reads every line of their code (comments aside) and names each one that does.

use std::path::{Path, PathBuf};

/// The pure modules, as folders of `harness/src`.
const PURE: &[&str] = &["model", "observe", "verdict", "report"];
/// Files of those folders that are not pure, and why.
const EXCEPT: &[(&str, &str)] = &[(
    "report/files.rs",
    "writes the result files, and takes `run::RunResult`",
)];
/// Modules of this crate that touch the kernel.
const KERNEL_MODULES: &[&str] = &["lab", "install", "traffic", "run", "watch"];
/// Crates that talk to the kernel.
const KERNEL_CRATES: &[&str] = &["nix", "rtnetlink"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, in name order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a folder entry").path())
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for p in entries {
        if p.is_dir() {
            files.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
    files
}

/// Whether `word` occurs in `line` as a whole path segment followed by `::` (`nix::` but not
/// `unix::`).
fn names_path(line: &str, word: &str) -> bool {
    let needle = format!("{word}::");
    line.match_indices(&needle).any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Whether `word` is a module named at the top of a `crate::{…}` group in `line` (the group
/// ends at its closing brace: `crate::{lab, model::{Plan}}`).
fn in_crate_group(line: &str, word: &str) -> bool {
    line.split("crate::{").skip(1).any(|rest| {
        let mut depth = 1;
        // The name being read, and whether it follows `::` (then it is not the group's own).
        let (mut name, mut nested) = (String::new(), false);
        let mut last = ' ';
        for c in rest.chars() {
            if c.is_alphanumeric() || c == '_' {
                if name.is_empty() {
                    nested = last == ':';
                }
                name.push(c);
            } else {
                if depth == 1 && !nested && name == word {
                    return true;
                }
                name.clear();
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    return false;
                }
            }
            last = c;
        }
        false
    })
}

/// What in `line` crosses the line, if anything.
fn crossing(line: &str) -> Option<String> {
    for m in KERNEL_MODULES {
        if line.contains(&format!("crate::{m}::"))
            || line.contains(&format!("crate::{m};"))
            || line.contains(&format!("crate::{m} "))
            || line.contains(&format!("crate::{m},"))
            || line.contains(&format!("crate::{m})"))
            || in_crate_group(line, m)
        {
            return Some(format!("crate::{m}"));
        }
    }
    KERNEL_CRATES
        .iter()
        .find(|c| names_path(line, c) || line.trim_start().starts_with(&format!("use {c}")))
        .map(|c| format!("{c}::"))
}

#[test]
fn the_pure_modules_name_nothing_that_touches_the_kernel() {
    let root = src();
    let mut found = Vec::new();
    let mut read = 0;
    for module in PURE {
        for file in rust_files(&root.join(module)) {
            let rel = file
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            if EXCEPT.iter().any(|(f, _)| *f == rel) {
                continue;
            }
            read += 1;
            let text = std::fs::read_to_string(&file).expect("readable");
            // A use spread over lines (`use crate::{\n lab,`) is read as one.
            let joined = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join(" ");
            let before = found.len();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                if let Some(what) = crossing(line) {
                    found.push(format!("src/{rel}:{}: {what}: {}", n + 1, line.trim()));
                }
            }
            if found.len() == before {
                if let Some(what) = crossing(&joined) {
                    found.push(format!("src/{rel}: {what} (in a `use` over several lines)"));
                }
            }
        }
    }
    assert!(read > 20, "only {read} files read: is `src` where it was?");
    assert!(
        found.is_empty(),
        "the pure modules must not reach kernel code (move what needs it to `watch`, `lab` \
         or `run`):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_check_sees_what_it_is_meant_to() {
    for crossing_line in [
        "use crate::lab::Lab;",
        "use crate::watch::capture;",
        "    let lab: crate::lab::Lab = todo!();",
        "use crate::{model::Plan, traffic};",
        "use crate::{   observe::Sighting,   lab::Lab, };",
        "use crate::run;",
        "use nix::sched::setns;",
        "    rtnetlink::new_connection()",
        "use rtnetlink;",
    ] {
        assert!(crossing(crossing_line).is_some(), "missed: {crossing_line}");
    }
    for fine in [
        "use std::os::unix::fs::PermissionsExt;",
        "use crate::observe::Observations;",
        "use crate::model::{Plan, Topology};",
        "let labels = crate::report::ranges(&ids);",
        "fn rerun() {}",
        "use crate::{model::Plan, observe::{Observations, Sighting}}; let lab = 1;",
    ] {
        assert_eq!(crossing(fine), None, "{fine}");
    }
}

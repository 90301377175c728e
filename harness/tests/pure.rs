//! The line between pure data and kernel code, kept by construction and checked here: the pure
//! half of harness (the YAML model, observations as data, the verdict, every report) is its own
//! crate, `harness-core`, which `harness` depends on and not the other way round, so no module
//! of it can name a lab, a rule tool, the traffic or a capture. What the compiler cannot see is
//! a kernel-facing crate added to harness-core's dependencies; this test reads them, direct and
//! transitive (`cargo tree`), and names any.

use std::collections::BTreeSet;
use std::process::Command;

/// Crates that talk to the kernel's network stack or run the lab: none of them may be
/// anywhere in harness-core's dependency tree. (`libc` is allowed: the model opens files with
/// `O_NONBLOCK`.)
const KERNEL_CRATES: &[&str] = &[
    "nix",
    "rtnetlink",
    "netlink-packet-route",
    "netlink-proto",
    "netlink-sys",
    "pnet_datalink",
    "tokio",
    "harness",
];

/// A workspace crate's normal (not dev, not build) dependencies for this machine, direct and
/// transitive, by name (`cargo tree`, from the lock file, offline).
fn dependencies(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_pure_crate_depends_on_nothing_that_talks_to_the_kernel() {
    let deps = dependencies("harness-core");
    assert!(
        deps.contains("serde") && deps.contains("pnet_packet"),
        "the dependency walk found too little: {deps:?}"
    );
    let found: Vec<&&str> = KERNEL_CRATES
        .iter()
        .filter(|c| deps.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "harness-core must not reach the kernel, but depends on {found:?}; keep what needs \
         them in harness (lab, watch, run) and hand harness-core plain data"
    );
}

#[test]
fn the_same_walk_from_harness_finds_the_kernel_crates() {
    // The check can fail: from the crate that runs the labs it sees them.
    let deps = dependencies("harness");
    for c in ["nix", "rtnetlink", "tokio", "harness-core"] {
        assert!(
            deps.contains(c),
            "`{c}` not found in harness's dependencies"
        );
    }
}

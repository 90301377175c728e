//! harness: proves, on the real Linux kernel, which path every connection takes through a
//! multi-WAN router.
//!
//! # Layout
//! The folders follow the pipeline: model → lab → install → traffic → watch → observe →
//! verdict → report. The pure half is its own crate, `harness-core` (`model`, `observe`,
//! `verdict`, `report`, `mutate`, re-exported here under the same names): it depends on
//! nothing that talks to the kernel, so none of it can reach a lab (`tests/pure.rs` checks its
//! dependencies). This crate is the kernel half, the pipeline and the command line.
//!
//! In `harness-core` (pure, tested without privileges):
//! * [`model`] YAML → validated [`model::Plan`]: `topology`, `iproute` (the `ip route`/`ip
//!   rule` grammar), `rules`, `traffic`, `craft`, `events`, `expect`, `plan` (the validated
//!   types), `raw` + `schema` (the files' serde types and JSON Schemas), `limits` and
//!   `hostsafe` (hostile input), `bundle`, `facts`, `generate`, `doc`/`locate`/`error`
//!   (`file:line:col` messages).
//! * [`observe`] what was seen, as data: packets and sightings, conntrack entries, frames,
//!   rule hits, loss counters, and the parsers that make them.
//! * [`verdict`] observations → each flow's path → findings (wordless): `paths` (hops
//!   computed once), `checks` (a typed finding per broken expectation), `declared` ("as
//!   declared", decided once), `compare` (`harness diff`), `stats` (binomial bounds).
//! * [`report`] every word about a verdict: `words` (each sentence), the table, failures,
//!   summary and snapshot (`mod`), `results` (JSON with its schema, JUnit), `html` (page, SVG,
//!   sections, CSS), `pcap`. [`report::files`] (here) writes them, whole or not at all.
//! * [`mutate`] mutants of a rule set, and a campaign's results.
//!
//! Here (the kernel, the pipeline, the command line):
//! * [`lab`] namespaces, veth pairs, addresses, routes, sysctls; `spawn` (every tool run
//!   inside a node), `keep` (a lab kept for `harness shell`).
//! * [`install`] rule sets through the real tools: `schedule` (nodes in parallel), `sources`
//!   (files, bundles with their `### rt_tables`, generators), `snapshot` (installers, which
//!   load rules themselves, and what they loaded read back), `load` (running a tool), `reject`
//!   (which line a tool refused), `commits` (nf_tables commits seen from the kernel),
//!   `generator` (limits).
//! * [`traffic`] the harness's own clients and servers in the nodes, crafted packets.
//! * [`watch`] reads what happened from the kernel: `capture` (every link), `conntrack`,
//!   `losses`, `coverage` (rule counters), handing back `observe`'s data.
//! * [`run`] the pipeline: bring up (lab, rules and captures overlapping) → drive → collect →
//!   judge, retried in a new lab when the lab itself failed.
//! * [`cli`] one module per command, typed results and errors; `main` only parses and picks
//!   the exit code. [`error`] what stops a run (exit 2); [`rootless`], [`wait`], [`progress`]
//!   small helpers.

pub use harness_core::{model, mutate, observe, verdict};

pub mod cli;
pub mod error;
pub mod install;
pub mod lab;
pub mod progress;
pub mod rootless;
pub mod run;
pub mod traffic;
pub mod wait;
pub mod watch;

/// Every word about a verdict ([`harness_core::report`]), and `files`, which writes the
/// result files whole or not at all.
pub mod report {
    pub use harness_core::report::*;
    pub mod files;
}

pub use error::{Error, Exit};

//! harness: proves, on the real Linux kernel, which path every connection takes through a
//! multi-WAN router.
//!
//! # Layout
//! The folders follow the pipeline: model → lab → install → traffic → watch → observe →
//! verdict → report. The pure half (`model`, `observe`, `verdict`, `report` but `report::files`,
//! `mutate`) names nothing of the kernel half; `tests/pure.rs` keeps it so.
//!
//! * [`model`] YAML → validated [`model::Plan`] (pure): `topology`, `iproute` (the `ip
//!   route`/`ip rule` grammar), `rules`, `traffic`, `craft`, `events`, `expect`, `plan` (the
//!   validated types), `raw` + `schema` (the files' serde types and JSON Schemas), `limits`
//!   and `hostsafe` (hostile input), `bundle`, `facts`, `generate`, `doc`/`locate`/`error`
//!   (`file:line:col` messages).
//! * [`lab`] namespaces, veth pairs, addresses, routes, sysctls (kernel); `spawn` (every
//!   tool run inside a node), `keep` (a lab kept for `harness shell`).
//! * [`install`] rule sets through the real tools (kernel): `schedule` (nodes in parallel),
//!   `sources` (files, bundles, generators), `load` (running a tool), `reject` (which line a
//!   tool refused), `commits` (nf_tables commits seen from the kernel), `generator` (limits).
//! * [`traffic`] the harness's own clients and servers in the nodes, crafted packets (kernel).
//! * [`watch`] reads what happened from the kernel: `capture` (every link), `conntrack`,
//!   `losses`, `coverage` (rule counters).
//! * [`observe`] what was seen, as data (pure): packets and sightings, conntrack entries,
//!   frames, rule hits, loss counters, and the parsers that make them.
//! * [`verdict`] observations → each flow's path → findings (pure, wordless): `paths` (hops
//!   computed once), `checks` (a typed finding per broken expectation), `declared` ("as
//!   declared", decided once), `compare` (`harness diff`), `stats` (binomial bounds).
//! * [`report`] every word about a verdict (pure): `words` (each sentence), the table,
//!   failures, summary and snapshot (`mod`), `results` (JSON with its schema, JUnit), `html`
//!   (page, SVG, sections, CSS), `pcap`; `files` writes them, whole or not at all.
//! * [`run`] the pipeline: bring up (lab, rules and captures overlapping) → drive → collect →
//!   judge, retried in a new lab when the lab itself failed.
//! * [`cli`] one module per command, typed results and errors; `main` only parses and picks
//!   the exit code. [`mutate`] mutants and their campaign (pure); [`error`] what stops a run
//!   (exit 2); [`rootless`], [`wait`], [`progress`] small helpers.

pub mod cli;
pub mod error;
pub mod install;
pub mod lab;
pub mod model;
pub mod mutate;
pub mod observe;
pub mod progress;
pub mod report;
pub mod rootless;
pub mod run;
pub mod traffic;
pub mod verdict;
pub mod wait;
pub mod watch;

pub use error::{Error, Exit};

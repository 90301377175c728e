//! harness: proves, on the real Linux kernel, which path every connection takes through a
//! multi-WAN router.
//!
//! # Layout
//! * [`model`] YAML → validated [`model::Plan`] (pure)
//! * [`lab`], [`install`] namespaces, veth, addresses, routes, sysctls; rule files through
//!   iptables-restore, nft, ip (kernel)
//! * [`traffic`], [`watch`] drive flows, capture every link, read conntrack and counters (kernel)
//! * [`observe`] what was seen: packets, sightings, conntrack entries, frames, rule hits (pure)
//! * [`verdict`], [`report`] judge each flow's path, render (pure)
//! * [`run`] the pipeline, with the time each phase took

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

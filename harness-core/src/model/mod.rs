//! YAML → validated [`Plan`]. Pure: reads files, touches nothing else. Every input error is
//! found here, before anything is built, with `file:line:col`.
//!
//! [`load`] reads the scenario and checks it part by part: `topology` (nodes, links, the
//! router; routes and rules in the `ip route`/`ip rule` grammar of `iproute`), `rules` (each
//! node's rule sources), `traffic` (flows), `craft` (crafted packets), `expect` (expectations
//! and `expect_failure`), `events` (links set down or up). `doc` is the YAML file being
//! checked, [`plan`] the validated result.

pub mod bundle;
mod craft;
mod doc;
mod error;
mod events;
mod expect;
mod facts;
pub mod generate;
pub mod hostsafe;
mod iproute;
pub mod limits;
pub mod locate;
pub mod plan;
mod raw;
mod rules;
pub mod schema;
mod topology;
mod traffic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use doc::{parse, stem, Doc};
pub use error::{RulesArgError, SpecError};
pub use facts::{facts, uplinks_env};
pub use iproute::{parse_route, parse_rule};
use locate::YamlIndex;
pub use plan::*;
pub use topology::topology;
pub use traffic::{human, parse_duration};

/// The largest routing table id a scenario may name.
pub const MAX_TABLE: u32 = i32::MAX as u32;
/// The most round trips one flow may make (the catalog's longest flows make 50).
pub const MAX_ROUND_TRIPS: u32 = 10_000;
/// The most flows a scenario may have, traffic and crafted packets together.
pub const MAX_FLOWS: u32 = 25_000;
/// The most expectations a scenario may state (each holds the ids of the flows it selects).
pub const MAX_EXPECTATIONS: usize = 1_000;

/// The most flow ids all expectations together may select (4 MB of ids; 25000 flows under
/// 40 expectations that each select all).
pub const MAX_SELECTED: usize = 1_000_000;

/// The default time a flow has to finish all its round trips.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

fn read(file: &Path, named_at: Option<(&Doc, &str)>) -> Result<String, SpecError> {
    limits::read_regular(file, limits::MAX_YAML_BYTES).map_err(|e| {
        let msg = e.describe(file);
        let todo = match (&e, named_at.is_some()) {
            (limits::ReadError::TooBig { .. }, _) => {
                "the most a scenario or topology may hold: is it the right file?"
            }
            (limits::ReadError::Io(_), true) => "paths are relative to the file that names them",
            (limits::ReadError::Io(_), false) => "check the path",
            (_, true) => "name a topology file (YAML), relative to this file",
            (_, false) => "name a scenario file (YAML)",
        };
        match named_at {
            Some((doc, path)) => doc.err(path, format!("{msg}; {todo}")),
            None => SpecError::new(file, None, format!("{msg}; {todo}")),
        }
    })
}
/// Reads and validates a scenario and the topology it names.
pub fn load(scenario: &Path) -> Result<Plan, SpecError> {
    let text = read(scenario, None)?;
    load_text(scenario, &text)
}

/// Validates a scenario given as text; `scenario` names it in messages, and relative paths
/// in it are taken from its folder.
pub fn load_text(scenario: &Path, text: &str) -> Result<Plan, SpecError> {
    let raw: raw::Scenario = parse(scenario, text)?;
    let doc = Doc {
        file: scenario,
        index: YamlIndex::new(text),
    };
    // `x.yaml`'s folder is `` (files named in it are shown as written); generators run in
    // `.` then (see `node_rules`).
    let dir = scenario.parent().unwrap_or(Path::new(""));

    let topology = match &raw.topology {
        raw::TopologyDef::File(f) => {
            let topo_file = dir.join(f);
            let topo_text = read(&topo_file, Some((&doc, "topology")))?;
            let t = topology(&topo_file, &topo_text)?;
            let topo_doc = Doc {
                file: &topo_file,
                index: YamlIndex::new(&topo_text),
            };
            topology::crossing_uplinks(&doc, &topo_doc, &t, &raw.traffic)?;
            t
        }
        raw::TopologyDef::Generated(g) => {
            let n = u32::try_from(g.uplinks).unwrap_or(0);
            if !(1..=generate::MAX_UPLINKS).contains(&n) {
                return Err(doc.err(
                    "topology.uplinks",
                    format!(
                        "`uplinks: {}`: a generated lab has 1 to {} uplinks",
                        g.uplinks,
                        generate::MAX_UPLINKS
                    ),
                ));
            }
            // Errors in the generated text (there should be none) name the scenario.
            topology(scenario, &generate::multi_wan(n))?
        }
    };

    let rules = rules::node_rules(&doc, dir, &topology, raw.rules)?;
    let mut flows = traffic::flows(&doc, &topology, &raw.traffic)?;
    craft::crafted(&doc, &topology, &raw.craft, &mut flows)?;
    if flows.is_empty() {
        return Err(doc.err(
            "traffic",
            "no traffic: add at least one entry under `traffic:` (or `craft:`)",
        ));
    }
    let events = events::events(&doc, &topology, &flows, &raw.events)?;
    let expectations = expect::expectations(&doc, &topology, &flows, &events, raw.expect)?;
    let expected_failure = match raw.expect_failure {
        None => None,
        Some(ef) => Some(expect::expected_failure(&doc, &flows, &expectations, ef)?),
    };
    let plan = Plan {
        events,
        name: stem(scenario),
        file: scenario.to_path_buf(),
        description: raw.description,
        topology,
        rules,
        flows,
        expectations,
        expected_failure,
    };
    hostsafe::check_plan(&plan)?;
    Ok(plan)
}

/// Looks up a file relative to the crate's repository root (for tests and benches).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

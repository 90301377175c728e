//! `harness check`: scenario files validated without building anything (no root needed).

use std::path::PathBuf;

use super::inputs::load_all;
use super::{CliError, Finding};

/// Loads every scenario `paths` name and prints a line about each.
///
/// # Errors
/// [`CliError::Spec`] for the first that does not load; [`CliError::NoScenarios`].
pub fn check(paths: &[PathBuf]) -> Result<Finding, CliError> {
    for plan in load_all(paths)? {
        println!(
            "{}: ok ({} nodes, {} links, {} flows, {} expectations{})",
            plan.file.display(),
            plan.topology.nodes.len(),
            plan.topology.links.len(),
            plan.flows.len(),
            plan.expectations.len(),
            if plan.expected_failure.is_some() {
                ", declared broken"
            } else {
                ""
            }
        );
    }
    Ok(Finding::Held)
}

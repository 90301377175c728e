//! What the commands read from the command line before anything is built: scenario files
//! (files, or folders of them) and `--rules` overrides.

use std::path::{Path, PathBuf};

use super::{CliError, RuleArgs};
use crate::model::{self, Plan, RuleSource};
use crate::run::Options;

/// `--rules` overrides: (node, where its rules come from), in order.
pub type Overrides = Vec<(String, RuleSource)>;

/// Scenario files: files as given, folders searched for `*.yaml`, in name order.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// `--rules` arguments, parsed against the current directory, in order.
///
/// # Errors
/// [`CliError::Rules`] for the first that names no usable rules.
pub fn overrides(rules: &[String]) -> Result<Overrides, CliError> {
    let cwd = std::env::current_dir().map_err(CliError::CurrentDir)?;
    rules
        .iter()
        .map(|r| RuleSource::parse_override(r, &cwd).map_err(CliError::Rules))
        .collect()
}

/// Applies overrides: each node named gets exactly the sources given for it, in order.
///
/// # Errors
/// [`CliError::Rules`] when the scenario refuses them (a node it does not have).
pub fn with_rules(plan: &Plan, rules: &[(String, RuleSource)]) -> Result<Plan, CliError> {
    let mut plan = plan.clone();
    let mut nodes: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    nodes.dedup();
    for node in nodes {
        let sources = rules
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, s)| s.clone())
            .collect();
        plan.override_rules(node, sources)?;
    }
    Ok(plan)
}

/// Every scenario the paths name, loaded and validated.
///
/// # Errors
/// [`CliError::Spec`] for the first that does not load; [`CliError::NoScenarios`] when the
/// paths hold none.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Plan>, CliError> {
    let plans = expand(paths)
        .iter()
        .map(|p| model::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    if plans.is_empty() {
        return Err(CliError::NoScenarios);
    }
    Ok(plans)
}

/// What gate and diff start from: the `--rules` overrides, the scenarios, the run options.
///
/// # Errors
/// As [`overrides`], then as [`load_all`].
pub fn prepare(
    paths: &[PathBuf],
    args: &RuleArgs,
) -> Result<(Overrides, Vec<Plan>, Options), CliError> {
    let rules = overrides(&args.rules)?;
    let plans = load_all(paths)?;
    Ok((
        rules,
        plans,
        Options {
            backend: args.backend.into(),
            ..Default::default()
        },
    ))
}

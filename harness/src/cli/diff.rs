//! `harness diff`: scenarios run with two rule sets for one node; only what changed is
//! printed, per flow (splits compared with a two-sample test).

use std::path::PathBuf;

use super::inputs::{prepare, with_rules};
use super::{CliError, Finding, RuleArgs};
use crate::run::run_with;
use crate::verdict::compare;

/// Runs every scenario `paths` name with each of the two `--rules`; [`Finding::Broke`] when
/// anything changed.
///
/// # Errors
/// [`CliError::DiffNeedsTwo`] without two rule sets for one node; bad input; a run that
/// could not judge.
pub fn diff(paths: &[PathBuf], args: &RuleArgs) -> Result<Finding, CliError> {
    let (rules, plans, opts) = prepare(paths, args)?;
    if rules.len() != 2 || rules[0].0 != rules[1].0 {
        return Err(CliError::DiffNeedsTwo);
    }
    let mut changed = false;
    for plan in &plans {
        let name = plan.file.display();
        let mut verdicts = Vec::new();
        for r in &rules {
            let mut p = with_rules(plan, std::slice::from_ref(r))?;
            // Both sides are judged by what they do, not by a declared breakage.
            p.expected_failure = None;
            verdicts.push(run_with(&p, opts)?.verdict);
        }
        let c = compare::compare(&verdicts[0], &verdicts[1]);
        if c.is_empty() {
            println!("{name}: no change");
            continue;
        }
        changed = true;
        println!("{name}:");
        for line in crate::report::words::changes(&c) {
            println!("  {line}");
        }
    }
    Ok(Finding::broke_if(changed))
}

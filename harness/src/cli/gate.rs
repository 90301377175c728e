//! `harness gate`: scenarios against given rules, one line each; scenarios declared broken,
//! or without the node the rules are for, are skipped.

use std::path::PathBuf;

use super::inputs::{prepare, with_rules};
use super::{CliError, Finding, RuleArgs};
use crate::progress::Progress;
use crate::run::run_with;
use crate::verdict::Outcome;

/// Runs every scenario `paths` name with `args`' rules; [`Finding::Broke`] when one fails.
///
/// # Errors
/// [`CliError::GateNeedsRules`] without `--rules`; bad input; a run that could not judge.
pub fn gate(paths: &[PathBuf], args: &RuleArgs) -> Result<Finding, CliError> {
    if args.rules.is_empty() {
        return Err(CliError::GateNeedsRules);
    }
    let (rules, plans, opts) = prepare(paths, args)?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let progress = Progress::new(plans.len(), "scenarios");
    for plan in &plans {
        let name = plan.file.display();
        progress.doing(name.to_string());
        let line = if plan.expected_failure.is_some() {
            skipped += 1;
            format!("skip {name}: declared broken (it tests the harness, not the rules)")
        } else if let Some((node, _)) = rules.iter().find(|(n, _)| plan.topology.node(n).is_none())
        {
            skipped += 1;
            format!("skip {name}: its topology has no node `{node}`")
        } else {
            let plan = with_rules(plan, &rules)?;
            let r = run_with(&plan, opts)?;
            if r.verdict.outcome == Outcome::Pass {
                passed += 1;
                format!(
                    "PASS {name} ({} flows, {} expectations)",
                    r.verdict.flows.len(),
                    r.verdict.results.len()
                )
            } else {
                failed += 1;
                format!(
                    "FAIL {name}: {}",
                    crate::report::first_failures(&r.verdict, 3)
                )
            }
        };
        progress.print(&(line + "\n"));
        progress.step();
    }
    drop(progress);
    println!("gate: {passed} passed, {failed} failed, {skipped} skipped");
    Ok(Finding::broke_if(failed > 0))
}

//! `harness gate`: scenarios against given rules, one line each; scenarios declared broken,
//! or without the node the rules are for, are skipped (and written to the result files as
//! skipped, neither passed nor failed). Rules a tool rejects, or a generator
//! that fails, fail the scenario, as broken expectations do, and the gate goes on to the
//! next; only the harness's own trouble stops it ([`crate::Error::is_rules_fault`]).

use std::path::PathBuf;
use std::time::Instant;

use super::inputs::{prepare, with_rules};
use super::{CliError, Finding, RuleArgs};
use crate::error::chain;
use crate::install::{generator, InstallError};
use crate::model::{Plan, RuleSource};
use crate::progress::Progress;
use crate::report::files::{self, Outputs, Ran};
use crate::run::{run_with, RunResult};
use crate::verdict::Outcome;

/// What became of one scenario the gate ran.
enum Gated {
    Judged(Box<RunResult>),
    /// The rules did not load: the error in words, and how long finding out took.
    RulesNotLoaded {
        router: String,
        error: String,
        seconds: f64,
    },
    /// Not run: declared broken, or its topology lacks the node `--rules` names; why, as the
    /// `skip` line says it.
    Skipped(String),
}

/// Runs every scenario `paths` name with `args`' rules, one line each, then the tally
/// `gate: N passed, M failed, K skipped`, last on stdout (on stderr with `--json -`), then
/// the result files `outputs` names, the skipped scenarios in them too, in their place.
/// [`Finding::Broke`] when one failed: a flow broke an
/// expectation, a tool rejected the rules, or their generator failed.
///
/// # Errors
/// [`CliError::GateNeedsRules`] without `--rules`; bad input; the harness's own trouble on a
/// run (missing tools or privileges, a lab that did not come up); a result file that could
/// not be written.
pub fn gate(paths: &[PathBuf], args: &RuleArgs, outputs: &Outputs) -> Result<Finding, CliError> {
    if args.rules.is_empty() {
        return Err(CliError::GateNeedsRules);
    }
    let (rules, plans, mut opts) = prepare(paths, args)?;
    opts.keep_frames = outputs.needs_frames();
    opts.traces = outputs.needs_traces();
    outputs.check_pcaps(&plans)?;
    // A generator's limits that cannot be set are the environment's trouble, not the rules':
    // found here, once, rather than as every scenario's failure.
    if rules
        .iter()
        .any(|(_, s)| matches!(s, RuleSource::Command { .. }))
    {
        generator::Limits::current().map_err(|msg| {
            crate::Error::from(InstallError::Source {
                shown: "the environment".into(),
                msg,
            })
        })?;
    }
    let say = |progress: &Progress, text: &str| {
        if outputs.json_to_stdout() {
            progress.eprint(text);
        } else {
            progress.print(text);
        }
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut gated: Vec<(Plan, Gated)> = Vec::new();
    let progress = Progress::new(plans.len(), "scenarios");
    for plan in &plans {
        let name = plan.file.display();
        progress.doing(name.to_string());
        let skip = if plan.expected_failure.is_some() {
            Some("declared broken (it tests the harness, not the rules)".to_string())
        } else {
            rules
                .iter()
                .find(|(n, _)| plan.topology.node(n).is_none())
                .map(|(node, _)| format!("its topology has no node `{node}`"))
        };
        let line = if let Some(reason) = skip {
            skipped += 1;
            let line = format!("skip {name}: {reason}");
            gated.push((plan.clone(), Gated::Skipped(reason)));
            line
        } else {
            let plan = with_rules(plan, &rules)?;
            let started = Instant::now();
            let (line, result) = match run_with(&plan, opts) {
                Ok(r) if r.verdict.outcome == Outcome::Pass => {
                    passed += 1;
                    let line = format!(
                        "PASS {name} ({} flows, {} expectations)",
                        r.verdict.flows.len(),
                        r.verdict.results.len()
                    );
                    (line, Gated::Judged(Box::new(r)))
                }
                Ok(r) => {
                    failed += 1;
                    let line = format!(
                        "FAIL {name}: {}",
                        crate::report::first_failures(&r.verdict, 3)
                    );
                    (line, Gated::Judged(Box::new(r)))
                }
                Err(e) if e.is_rules_fault() => {
                    failed += 1;
                    let error = chain(&e);
                    let line = format!("FAIL {name}: the rules did not load: {error}");
                    let router = rules_node(&rules, &e);
                    let seconds = started.elapsed().as_secs_f64();
                    (
                        line,
                        Gated::RulesNotLoaded {
                            router,
                            error,
                            seconds,
                        },
                    )
                }
                Err(e) => return Err(e.into()),
            };
            gated.push((plan, result));
            line
        };
        say(&progress, &(line + "\n"));
        progress.step();
    }
    drop(progress);
    let runs: Vec<(&Plan, Ran)> = gated
        .iter()
        .map(|(plan, g)| {
            let ran = match g {
                Gated::Judged(r) => Ran::Judged(r),
                Gated::RulesNotLoaded {
                    router,
                    error,
                    seconds,
                } => Ran::RulesNotLoaded {
                    router,
                    error,
                    seconds: *seconds,
                },
                Gated::Skipped(reason) => Ran::Skipped { reason },
            };
            (plan, ran)
        })
        .collect();
    files::write_all(outputs, &runs)?;
    let tally = format!("gate: {passed} passed, {failed} failed, {skipped} skipped");
    if outputs.json_to_stdout() {
        eprintln!("{tally}");
    } else {
        println!("{tally}");
    }
    Ok(Finding::broke_if(failed > 0))
}

/// The node whose rules `e` is about: the one it names, else the first `--rules` names.
fn rules_node(rules: &[(String, RuleSource)], e: &crate::Error) -> String {
    let named = match e {
        crate::Error::Install(
            InstallError::RejectedLine { node, .. }
            | InstallError::Rejected { node, .. }
            | InstallError::Generator { node, .. }
            | InstallError::Outside(_, node)
            | InstallError::Spawn { node, .. },
        ) => Some(node.clone()),
        _ => None,
    };
    named
        .or_else(|| rules.first().map(|(n, _)| n.clone()))
        .unwrap_or_default()
}

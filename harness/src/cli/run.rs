//! `harness run`: build each scenario's lab, install the rules, drive the traffic, judge
//! every flow; print the full report of each, write the result files, keep the lab if asked.

use std::path::PathBuf;

use super::inputs::{load_all, overrides, with_rules};
use super::{ms, CliError, Finding, RuleArgs};
use crate::progress::Progress;
use crate::report::{self, files::Outputs};
use crate::run::{self as pipeline, Options};

/// `run`'s switches.
pub struct RunFlags {
    /// `--coverage`: list the iptables rules no packet hit.
    pub coverage: bool,
    /// `--dump`: print every packet seen and the router's conntrack table.
    pub dump: bool,
    /// `--keep`: leave the lab up after the run.
    pub keep: bool,
}

/// Runs every scenario `paths` name, with `args`' rules; [`Finding::Broke`] when one does not
/// say what it should.
///
/// # Errors
/// Bad input (found before any lab is built), a run that could not judge, a result file that
/// could not be written, a lab that could not be kept.
pub fn run(
    paths: &[PathBuf],
    args: &RuleArgs,
    flags: &RunFlags,
    outputs: &Outputs,
) -> Result<Finding, CliError> {
    if flags.keep && paths.len() != 1 {
        return Err(CliError::KeepOneLab { given: paths.len() });
    }
    // Validate everything first: bad input is found before any lab is built.
    let rules = overrides(&args.rules)?;
    let plans = load_all(paths)?
        .iter()
        .map(|p| with_rules(p, &rules))
        .collect::<Result<Vec<_>, _>>()?;
    outputs.check_pcaps(&plans)?;
    let opts = Options {
        backend: args.backend.into(),
        coverage: flags.coverage,
        keep_frames: outputs.needs_frames(),
        traces: outputs.needs_traces(),
    };
    let mut worst = Finding::Held;
    let mut judged = Vec::new();
    let progress = Progress::new(plans.len(), "scenarios");
    for (i, plan) in plans.iter().enumerate() {
        progress.doing(&plan.name);
        let result = if flags.keep {
            pipeline::run_keeping(plan, opts).map(|(r, lab)| (r, Some(lab)))
        } else {
            pipeline::run_with(plan, opts).map(|r| (r, None))
        };
        progress.step();
        let (r, lab) = result?;
        let mut text = String::from(if i > 0 { "\n" } else { "" });
        if flags.dump {
            super::dump::observations(plan, &r);
        }
        text += &report::full(&r.verdict);
        if let Some(hits) = &r.coverage {
            text += &report::coverage(hits);
        }
        let phases: Vec<String> = r
            .timings
            .phases()
            .iter()
            .map(|(n, d)| format!("{n} {:.1}", ms(*d)))
            .collect();
        text += &format!(
            "  time (ms): {}; total {:.1}\n",
            phases.join(", "),
            ms(r.timings.total())
        );
        // A daemon that exited before the run ended, and every daemon of a run that failed.
        let failed = Finding::of(&r.verdict.outcome) != Finding::Held;
        text += &report::daemons(&r.daemons, failed);
        if outputs.json_to_stdout() {
            progress.eprint(&text);
        } else {
            progress.print(&text);
        }
        worst = worst.max(Finding::of(&r.verdict.outcome));
        judged.push((plan, r, lab));
    }
    drop(progress);
    let runs: Vec<_> = judged.iter().map(|(p, r, _)| (*p, r)).collect();
    report::files::write(outputs, &runs)?;
    for (plan, _, lab) in judged {
        if let Some(lab) = lab {
            if outputs.json_to_stdout() {
                super::keep::hand_over(lab, plan, &mut std::io::stderr())?;
            } else {
                super::keep::hand_over(lab, plan, &mut std::io::stdout())?;
            }
        }
    }
    Ok(worst)
}

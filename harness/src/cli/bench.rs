//! `harness bench`: the time each phase takes, the median over repeated runs, for a scenario
//! scaled to given flow counts or for the built-in scale test (`--uplinks`).

use std::path::Path;

use super::{ms, CliError, Finding};
use crate::install::Backend;
use crate::model::{self, Plan};
use crate::report;
use crate::run::{run_with, Options, Timings};

/// Past 25000 flows, each further 25000 go to the next server port (80, 81, …): this keeps
/// that well inside the port range.
const MAX_FLOWS: usize = 1_000_000;

/// Prints a row of medians per (uplinks, flows), smallest first; [`Finding::Broke`] (with the
/// failing run's report on stderr) when a run does not hold, as its timings would not compare.
///
/// # Errors
/// [`CliError::TooManyFlows`]; a scenario that does not load; a run that could not judge.
pub fn bench(
    path: Option<&Path>,
    flow_counts: &[usize],
    runs: usize,
    uplinks: &[u32],
    backend: Backend,
) -> Result<Finding, CliError> {
    if let Some(&flows) = flow_counts.iter().find(|&&n| n > MAX_FLOWS) {
        return Err(CliError::TooManyFlows { flows });
    }
    let rows = rows(path, flow_counts, uplinks)?;
    let name = rows.first().map_or(String::new(), |(_, p)| p.name.clone());
    let opts = Options {
        backend,
        ..Default::default()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "{name}: median of {} runs, ms; lab = build + rules + teardown; flows/s = flows / (drive + collect + judge)",
        runs.max(1)
    );
    print!("  {:<26}", "");
    for (s, _) in Timings::default().phases() {
        print!(" {s:>8}");
    }
    println!(
        " {:>8} {:>8} {:>9} {:>9}",
        "lab", "total", "flows/s", "peak MiB"
    );
    for (label, plan) in &rows {
        let mut all = Vec::new();
        for _ in 0..runs.max(1) {
            let r = run_with(plan, opts)?;
            if !r.verdict.outcome.ok() {
                eprint!("{}", report::full(&r.verdict));
                eprintln!("bench: {label}: the scenario did not hold; timings of a failing run are not comparable");
                return Ok(Finding::Broke);
            }
            all.push(r.timings);
        }
        print!("  {label:<26}");
        for i in 0..Timings::default().phases().len() {
            print!(
                " {:>8.1}",
                median(all.iter().map(|t| ms(t.phases()[i].1)).collect())
            );
        }
        let judged_ms = median(
            all.iter()
                .map(|t| ms(t.traffic + t.collect + t.judge))
                .collect(),
        );
        println!(
            " {:>8.1} {:>8.1} {:>9.0} {:>9.1}",
            median(
                all.iter()
                    .map(|t| ms(t.build + t.install + t.teardown))
                    .collect()
            ),
            median(all.iter().map(|t| ms(t.total())).collect()),
            plan.flows.len() as f64 / (judged_ms / 1000.0),
            peak_mib()
        );
    }
    Ok(Finding::Held)
}

/// (label, plan) for every row, smallest first: the peak memory column is the process's.
fn rows(
    path: Option<&Path>,
    flow_counts: &[usize],
    uplinks: &[u32],
) -> Result<Vec<(String, Plan)>, CliError> {
    let mut flow_counts = flow_counts.to_vec();
    flow_counts.sort_unstable();
    let mut uplinks = uplinks.to_vec();
    uplinks.sort_unstable();
    let mut rows = Vec::new();
    if uplinks.is_empty() {
        let plan = model::load(path.expect("clap: a scenario without --uplinks"))?;
        for &n in &flow_counts {
            rows.push((format!("{} flows", n), plan.with_flow_count(n)));
        }
    } else {
        for &flows in &flow_counts {
            for &n in &uplinks {
                let p = model::generate::nth_scenario(n, flows)?;
                rows.push((format!("{n} uplinks, {flows} flows"), p));
            }
        }
    }
    Ok(rows)
}

/// Peak resident memory of this process so far, in MiB.
fn peak_mib() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| u.max_rss() as f64 / 1024.0)
}

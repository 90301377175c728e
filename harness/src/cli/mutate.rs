//! `harness mutate`: scenarios run against mutants of their router's rule files, several at
//! once; the kill score, and every mutant no expectation noticed. An installer's rules are
//! mutated as it loaded them: mutants of its snapshot's texts (iptables-save, nft, ip, ipset), loaded (with the rest
//! of the snapshot) as inline rules in the installer's place.

use std::path::PathBuf;
use std::sync::Mutex;

use super::inputs::load_all;
use super::{CliError, Finding};
use crate::error::chain;
use crate::install::Backend;
use crate::model::{Plan, RuleSource};
use crate::mutate::campaign::{Campaign, MutantFate, MutantResult};
use crate::mutate::{mutants, Mutant};
use crate::progress::Progress;
use crate::run::{run_with, Options};
use crate::verdict::Outcome;

/// One mutant to run: the scenario with one rule file replaced.
struct Job {
    /// The scenario file, as shown.
    scenario: String,
    /// `FILE:LINE` of the mutant's first change.
    place: String,
    mutant: Mutant,
    plan: Plan,
}

/// Runs the campaign on every scenario `paths` name, `jobs` mutants at once, and prints its
/// report; [`Finding::Broke`] when a mutant survived.
///
/// # Errors
/// Bad input; a scenario that could not be judged, or does not hold, with its own rules.
pub fn mutate(paths: &[PathBuf], jobs: usize, backend: Backend) -> Result<Finding, CliError> {
    let plans = load_all(paths)?;
    let opts = Options {
        backend,
        ..Default::default()
    };
    let mut queue = Vec::new();
    for plan in &plans {
        queue.extend(jobs_for(plan, opts)?);
    }
    let campaign = run_all(queue, jobs, opts);
    print!("{}", campaign.report());
    Ok(Finding::broke_if(campaign.has_survivors()))
}

/// The mutants of `plan`'s router's rule files, each a job, after checking that the scenario
/// holds with its own rules; none for a scenario declared broken.
fn jobs_for(plan: &Plan, opts: Options) -> Result<Vec<Job>, CliError> {
    let name = plan.file.display().to_string();
    if plan.expected_failure.is_some() {
        println!("skip {name}: declared broken");
        return Ok(Vec::new());
    }
    let r = run_with(plan, opts)?;
    if r.verdict.outcome != Outcome::Pass {
        return Err(CliError::DoesNotHold {
            scenario: name,
            failures: crate::report::first_failures(&r.verdict, 3),
        });
    }
    let mut out = Vec::new();
    let router = &plan.topology.router.node;
    let Some(rules) = plan.rules.iter().position(|r| r.node == *router) else {
        return Ok(out);
    };
    for (i, source) in plan.rules[rules].sources.iter().enumerate() {
        if let RuleSource::Install { line, cwd } = source {
            out.extend(installer_jobs(plan, &name, rules, i, line, cwd));
            continue;
        }
        let RuleSource::File { kind, path } = source else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for m in mutants(*kind, &text) {
            let mut p = plan.clone();
            // One name per file, however a scenario reaches it (`a/../b/x` is `b/x`).
            let canonical = path.canonicalize().ok();
            let cwd = std::env::current_dir().unwrap_or_default();
            let file = canonical
                .as_deref()
                .map(|c| c.strip_prefix(&cwd).unwrap_or(c))
                .unwrap_or(path);
            let place = format!("{}:{}", file.display(), m.line);
            p.rules[rules].sources[i] = RuleSource::Inline {
                kind: *kind,
                shown: format!("{} (mutant: {})", path.display(), m.change),
                text: m.text.clone(),
            };
            out.push(Job {
                scenario: name.clone(),
                place,
                mutant: m,
                plan: p,
            });
        }
    }
    Ok(out)
}

/// The mutants of what installer `line` loaded (its snapshot, taken when the scenario ran
/// with its own rules): each replaces the installer (source `i` of rule set `rules`) with the
/// snapshot's texts, loaded as inline rules, its iptables text mutated.
fn installer_jobs(
    plan: &Plan,
    name: &str,
    rules: usize,
    i: usize,
    line: &str,
    cwd: &std::path::Path,
) -> Vec<Job> {
    let node = &plan.rules[rules].node;
    let Some(snapshot) = crate::install::snapshot::recorded(node, line, cwd) else {
        return Vec::new();
    };
    let inline = |l: &crate::install::Loadable, text: String, shown: String| RuleSource::Inline {
        kind: l.kind,
        shown,
        text,
    };
    let mut out = Vec::new();
    for (k, part) in snapshot.iter().enumerate() {
        for m in mutants(part.kind, &part.text) {
            let mut p = plan.clone();
            let texts: Vec<RuleSource> = snapshot
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    if j == k {
                        inline(
                            l,
                            m.text.clone(),
                            format!("{} (mutant: {})", l.shown, m.change),
                        )
                    } else {
                        inline(l, l.text.clone(), l.shown.clone())
                    }
                })
                .collect();
            p.rules[rules].sources.splice(i..=i, texts);
            out.push(Job {
                scenario: name.to_string(),
                place: format!("{}:{}", part.shown, m.line),
                mutant: m,
                plan: p,
            });
        }
    }
    out
}

/// Runs every job, `jobs` at once; the results in the queue's order.
fn run_all(queue: Vec<Job>, jobs: usize, opts: Options) -> Campaign {
    let total = queue.len();
    let queue = Mutex::new(queue.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let progress = Progress::new(total, "mutants");
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let Some((k, job)) = queue.lock().expect("queue").pop() else {
                    break;
                };
                progress.doing(&job.scenario);
                let fate = fate(&job.plan, opts);
                results.lock().expect("results").push((
                    k,
                    MutantResult {
                        scenario: job.scenario,
                        place: job.place,
                        change: job.mutant.change,
                        fate,
                    },
                ));
                progress.step();
            });
        }
    });
    drop(progress);
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(k, _)| *k);
    Campaign {
        results: results.into_iter().map(|(_, r)| r).collect(),
    }
}

/// What a run of a mutant shows.
fn fate(plan: &Plan, opts: Options) -> MutantFate {
    match run_with(plan, opts) {
        Ok(r) if r.verdict.outcome == Outcome::Pass => MutantFate::Survived,
        Ok(r) => MutantFate::Killed {
            by: r
                .verdict
                .results
                .iter()
                .filter(|e| e.broke())
                .map(|e| e.name.clone())
                .collect(),
        },
        // A mutant the tool rejects (or a run that could not judge) says nothing.
        Err(e) => MutantFate::Invalid {
            why: chain(&e).lines().next().unwrap_or("").to_string(),
        },
    }
}

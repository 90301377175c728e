use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use harness::error::chain;
use harness::{report, run, spec, Exit};

/// Proves, on the real Linux kernel, which path every connection takes through a multi-WAN
/// router.
///
/// Exit codes: 0 every expectation held (or a scenario declared broken broke exactly as
/// declared); 1 a flow broke an expectation; 2 could not judge (bad input, missing privileges
/// or tools, the kernel refused the lab).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab, install the rules, drive the traffic, judge every flow.
    Run {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Print every packet seen and the router's conntrack table (for debugging the harness).
        #[arg(long, hide = true)]
        dump: bool,
    },
    /// Validate scenario files without building anything (no root needed).
    Check {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Time each phase over repeated runs of a scenario, with a given number of flows.
    Bench {
        scenario: PathBuf,
        /// Flows per run (the scenario's traffic groups are scaled to this).
        #[arg(long, default_value_t = 100)]
        flows: usize,
        /// Runs; the median of each phase is reported.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Run { scenarios, dump } => run_all(&scenarios, dump),
        Cmd::Check { scenarios } => check_all(&scenarios),
        Cmd::Bench {
            scenario,
            flows,
            runs,
        } => bench(&scenario, flows, runs),
    };
    ExitCode::from(code)
}

fn fail(e: &dyn std::error::Error) -> u8 {
    eprintln!("error: {}", chain(e));
    Exit::CANNOT_JUDGE
}

fn run_all(paths: &[PathBuf], dump: bool) -> u8 {
    // Validate everything first: bad input is found before any lab is built.
    let mut plans = Vec::new();
    for p in paths {
        match spec::load(p) {
            Ok(plan) => plans.push(plan),
            Err(e) => return fail(&e),
        }
    }
    let mut worst = Exit::PASS;
    for (i, plan) in plans.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match run::run(plan) {
            Err(e) => return fail(&e),
            Ok(r) => {
                if dump {
                    for s in &r.observations.sightings {
                        let l = &plan.topology.links[s.link];
                        let p = &s.pkt;
                        let from = if p.src_mac == l.a.mac {
                            &l.a.node
                        } else {
                            &l.b.node
                        };
                        eprintln!("{:>9} {:<6} from {:<8} {}:{} > {}:{} proto {} id {} flags {:#04x} len {}", s.t_ns / 1000, l.name, from, p.src, p.sport, p.dst, p.dport, p.proto, p.ip_id, p.flags, p.payload_len);
                    }
                    for c in &r.observations.conntrack {
                        eprintln!("ct {c:?}");
                    }
                }
                print!("{}", report::full(&r.verdict));
                let phases: Vec<String> = r
                    .timings
                    .phases()
                    .iter()
                    .map(|(n, d)| format!("{} {:.1}", n.split(' ').next().unwrap_or(n), ms(*d)))
                    .collect();
                println!(
                    "  time (ms): {}; total {:.1}",
                    phases.join(", "),
                    ms(r.timings.total())
                );
                worst = worst.max(r.verdict.outcome.exit_code());
            }
        }
    }
    worst
}

fn check_all(paths: &[PathBuf]) -> u8 {
    for p in paths {
        match spec::load(p) {
            Ok(plan) => println!(
                "{}: ok ({} nodes, {} links, {} flows, {} expectations{})",
                p.display(),
                plan.topology.nodes.len(),
                plan.topology.links.len(),
                plan.flows.len(),
                plan.expectations.len(),
                if plan.expected_failure.is_some() {
                    ", declared broken"
                } else {
                    ""
                }
            ),
            Err(e) => return fail(&e),
        }
    }
    Exit::PASS
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench(path: &std::path::Path, flows: usize, runs: usize) -> u8 {
    let plan = match spec::load(path) {
        Ok(p) => p.with_flow_count(flows),
        Err(e) => return fail(&e),
    };
    let mut all = Vec::new();
    for _ in 0..runs.max(1) {
        match run::run(&plan) {
            Ok(r) => {
                if !r.verdict.outcome.ok() {
                    eprint!("{}", report::full(&r.verdict));
                    eprintln!("bench: the scenario did not hold with {flows} flows; timings of a failing run are not comparable");
                    return Exit::FLOW_FAILED;
                }
                all.push(r.timings);
            }
            Err(e) => return fail(&e),
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "{}: {flows} flows, median of {} runs (ms)",
        plan.name,
        all.len()
    );
    for (i, (name, _)) in all[0].phases().iter().enumerate() {
        println!(
            "  {name:<48} {:>9.2}",
            median(all.iter().map(|t| ms(t.phases()[i].1)).collect())
        );
    }
    println!(
        "  {:<48} {:>9.2}",
        "total",
        median(all.iter().map(|t| ms(t.total())).collect())
    );
    Exit::PASS
}

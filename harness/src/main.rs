use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use harness::error::chain;
use harness::install::Backend;
use harness::model::{self, Plan, RuleSource};
use harness::progress::Progress;
use harness::report::files::Outputs;
use harness::run::{self, Options, Timings};
use harness::verdict::{compare, Outcome};
use harness::{report, Exit};

/// Proves, on the real Linux kernel, which path every connection takes through a multi-WAN
/// router.
///
/// Exit codes: 0 every expectation held (or a scenario declared broken broke exactly as
/// declared); 1 a flow broke an expectation (`diff`: something changed); 2 could not judge
/// (bad input, a generator or tool that failed, missing privileges or tools, the kernel refused
/// the lab, a capture that lost packets).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Seconds a generator may run before it is killed, with every process it started (exit
    /// 2); default 60, or HARNESS_GENERATOR_TIMEOUT. Its output is limited to 64 MiB
    /// (HARNESS_GENERATOR_MAX_OUTPUT).
    #[arg(long, global = true, value_name = "SECS", value_parser = harness::install::generator::parse_seconds)]
    generator_timeout: Option<std::time::Duration>,
}

#[derive(Args, Clone)]
struct RuleArgs {
    /// Replace NODE's rule set: NODE=FILE (a bundle: sections headed `### iptables`, `### ip`,
    /// …; one section may go without a header) or NODE=COMMAND (a generator: it gets the
    /// topology's facts as JSON and prints a bundle). Repeat for more parts or nodes.
    #[arg(long = "rules", value_name = "NODE=FILE|COMMAND")]
    rules: Vec<String>,
    /// The iptables implementation that loads `iptables:` rules.
    #[arg(long, value_enum, default_value_t = BackendArg::System)]
    backend: BackendArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// `iptables-restore`, as the system's alternatives choose
    System,
    /// `iptables-nft-restore`
    Nft,
    /// `iptables-legacy-restore`
    Legacy,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::System => Backend::System,
            BackendArg::Nft => Backend::Nft,
            BackendArg::Legacy => Backend::Legacy,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab, install the rules, drive the traffic, judge every flow.
    Run {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
        /// After the traffic, list the iptables rules no packet hit, with their file and line.
        #[arg(long)]
        coverage: bool,
        /// Write the whole verdict as JSON (flows, paths, expectations, observations, counters).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write JUnit XML: a testsuite per scenario, a testcase per expectation.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write one pcap file per link into DIR (`SCENARIO-LINK.pcap`); flow N has client port
        /// 40000+N and payload `HXQ N …`.
        #[arg(long, value_name = "DIR")]
        pcap: Option<PathBuf>,
        /// Write one self-contained HTML page: the topology with each flow's path drawn on
        /// it, failing flows first, their packets hop by hop.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Leave the lab up after the run (one scenario only) and print how to enter each
        /// node; `harness down` removes it.
        #[arg(long)]
        keep: bool,
        /// Print every packet seen and the router's conntrack table (for debugging the harness).
        #[arg(long, hide = true)]
        dump: bool,
    },
    /// Enter a node of a lab kept by `run --keep`: run COMMAND there (`harness shell jupiter
    /// -- iptables-save`), or a shell.
    Shell {
        node: String,
        /// Which kept lab (scenario name or keeper pid), when more than one is.
        #[arg(long)]
        lab: Option<String>,
        /// The command and its arguments; `$SHELL` when none.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove every lab kept by `run --keep` (or only `--lab NAME`).
    Down {
        #[arg(long)]
        lab: Option<String>,
    },
    /// Run scenarios (files, or folders of them) against given rules: one line each; exit 1
    /// when a flow takes another path than a scenario expects. Scenarios declared broken are
    /// skipped: they test the harness, not the rules.
    Gate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Run scenarios with two rule sets (`--rules NODE=A --rules NODE=B`) and print only what
    /// changed, per flow; splits are compared with a two-sample test. Exit 1 when anything did.
    Diff {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Run scenarios against mutants of their router's rule files (each rule deleted in turn,
    /// two marks swapped, a state dropped, nth packet numbers swapped, two policy rules
    /// flipped): the kill score, and every mutant no expectation noticed. Exit 1 when some
    /// survive.
    Mutate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Mutants run at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        #[arg(long, value_enum, default_value_t = BackendArg::System)]
        backend: BackendArg,
    },
    /// Validate scenario files without building anything (no root needed).
    Check {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Time each phase over repeated runs of a scenario, with a given number of flows.
    ///
    /// With `--uplinks 2,4,8,16` the scenario is the built-in scale test instead: the lab
    /// generated with N ISPs, seed 002's rules for N uplinks, TCP flows that must rotate
    /// wan1…wanN. One row per (uplinks, flows); peak memory is the process's so far (rows run
    /// smallest first).
    Bench {
        #[arg(required_unless_present = "uplinks")]
        scenario: Option<PathBuf>,
        /// Flows per run (the scenario's traffic groups are scaled to this); a list gives a row
        /// each.
        #[arg(long, value_delimiter = ',', default_value = "100")]
        flows: Vec<usize>,
        /// Runs; the median of each phase is reported.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Uplink counts for the built-in scale test.
        #[arg(long, value_delimiter = ',', conflicts_with = "scenario")]
        uplinks: Vec<u32>,
        #[arg(long, value_enum, default_value_t = BackendArg::System)]
        backend: BackendArg,
    },
}

impl Cmd {
    fn builds_labs(&self) -> bool {
        !matches!(
            self,
            Cmd::Check { .. } | Cmd::Shell { .. } | Cmd::Down { .. }
        )
    }
}

fn main() -> ExitCode {
    // A kept lab's keeper is this binary run afresh by `run --keep` (see lab::keep).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == harness::lab::keep::KEEPER_ARG)
    {
        harness::lab::keep::keeper_main();
    }
    fixed_mmap_threshold();
    let cli = Cli::parse();
    // Result files that could not be written are refused before anything is built.
    if let Cmd::Run {
        json,
        junit,
        pcap,
        html,
        ..
    } = &cli.cmd
    {
        let outputs = Outputs {
            json: json.clone(),
            junit: junit.clone(),
            pcap: pcap.clone(),
            html: html.clone(),
        };
        if let Err(m) = outputs.check() {
            return ExitCode::from(fail_msg(&m.to_string()));
        }
    }
    if let Some(limit) = cli.generator_timeout {
        harness::install::generator::set_time_limit(limit);
    }
    // A state directory for kept labs that is not to be trusted is refused before any lab is
    // built, and before the user namespace, where other users' files show as overflow uids.
    if let Cmd::Run { keep: true, .. } = cli.cmd {
        if let Err(m) = harness::lab::keep::check_state_dir() {
            return ExitCode::from(fail_msg(&m.to_string()));
        }
    }
    // Commands that build labs run as root in a user namespace of their own when not root.
    if cli.cmd.builds_labs() {
        if let Err(m) = harness::rootless::enter() {
            return ExitCode::from(fail_msg(&m));
        }
        harness::rootless::raise_fd_limit();
    }
    let code = match cli.cmd {
        Cmd::Run {
            scenarios,
            rules,
            coverage,
            json,
            junit,
            pcap,
            html,
            keep,
            dump,
        } => run_all(
            &scenarios,
            &rules,
            &RunFlags {
                coverage,
                dump,
                keep,
            },
            &Outputs {
                json,
                junit,
                pcap,
                html,
            },
        ),
        Cmd::Shell { node, lab, command } => shell(&node, lab.as_deref(), &command),
        Cmd::Down { lab } => down(lab.as_deref()),
        Cmd::Gate { scenarios, rules } => gate(&scenarios, &rules),
        Cmd::Diff { scenarios, rules } => diff(&scenarios, &rules),
        Cmd::Mutate {
            scenarios,
            jobs,
            backend,
        } => mutate(&scenarios, jobs, backend.into()),
        Cmd::Check { scenarios } => check_all(&scenarios),
        Cmd::Bench {
            scenario,
            flows,
            runs,
            uplinks,
            backend,
        } => bench(scenario.as_deref(), &flows, runs, &uplinks, backend.into()),
    };
    ExitCode::from(code)
}

fn fail(e: &dyn std::error::Error) -> u8 {
    eprintln!("error: {}", chain(e));
    Exit::CANNOT_JUDGE
}

fn fail_msg(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    Exit::CANNOT_JUDGE
}

/// Scenario files: files as given, folders searched for `*.yaml`, in name order.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
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
fn overrides(rules: &[String]) -> Result<Overrides, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    rules
        .iter()
        .map(|r| RuleSource::parse_override(r, &cwd).map_err(|e| e.to_string()))
        .collect()
}

/// Applies overrides: each node named gets exactly the sources given for it, in order.
fn with_rules(plan: &Plan, rules: &[(String, RuleSource)]) -> Result<Plan, String> {
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

fn load_all(paths: &[PathBuf]) -> Result<Vec<Plan>, u8> {
    let mut plans = Vec::new();
    for p in expand(paths) {
        match model::load(&p) {
            Ok(plan) => plans.push(plan),
            Err(e) => return Err(fail(&e)),
        }
    }
    if plans.is_empty() {
        return Err(fail_msg("no scenario files found in the paths given"));
    }
    Ok(plans)
}

/// `run`'s switches.
struct RunFlags {
    coverage: bool,
    dump: bool,
    keep: bool,
}

fn run_all(paths: &[PathBuf], args: &RuleArgs, flags: &RunFlags, outputs: &Outputs) -> u8 {
    if flags.keep && paths.len() != 1 {
        return fail_msg(&format!(
            "--keep keeps one lab: give one scenario, not {}",
            paths.len()
        ));
    }
    // Validate everything first: bad input is found before any lab is built.
    let rules = match overrides(&args.rules) {
        Ok(r) => r,
        Err(m) => return fail_msg(&m),
    };
    let plans = match load_all(paths).and_then(|ps| {
        ps.iter()
            .map(|p| with_rules(p, &rules))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| fail_msg(&m))
    }) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(m) = outputs.check_pcaps(&plans) {
        return fail_msg(&m.to_string());
    }
    let opts = Options {
        backend: args.backend.into(),
        coverage: flags.coverage,
        keep_frames: outputs.needs_frames(),
        traces: outputs.needs_traces(),
    };
    let mut worst = Exit::PASS;
    let mut judged = Vec::new();
    let progress = Progress::new(plans.len(), "scenarios");
    for (i, plan) in plans.iter().enumerate() {
        progress.doing(&plan.name);
        let result = if flags.keep {
            run::run_keeping(plan, opts).map(|(r, lab)| (r, Some(lab)))
        } else {
            run::run_with(plan, opts).map(|r| (r, None))
        };
        progress.step();
        match result {
            Err(e) => return fail(&e),
            Ok((r, lab)) => {
                let mut text = String::from(if i > 0 { "\n" } else { "" });
                if flags.dump {
                    dump_observations(plan, &r);
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
                progress.print(&text);
                worst = worst.max(r.verdict.outcome.exit_code());
                judged.push((plan, r, lab));
            }
        }
    }
    drop(progress);
    let runs: Vec<_> = judged.iter().map(|(p, r, _)| (*p, r)).collect();
    if let Err(m) = report::files::write(outputs, &runs) {
        return fail_msg(&m.to_string());
    }
    for (plan, _, lab) in judged {
        if let Some(lab) = lab {
            if let Err(m) = keep(lab, plan) {
                return fail_msg(&m);
            }
        }
    }
    worst
}

/// Hands the lab to a keeper process and says how to get in.
fn keep(lab: harness::lab::Lab, plan: &Plan) -> Result<(), String> {
    let tables: Vec<(String, u32)> = plan
        .rules
        .iter()
        .flat_map(|r| r.tables.iter().cloned())
        .collect();
    let k = harness::lab::keep::keep(lab, &plan.name, &plan.file, &tables)
        .map_err(|e| e.to_string())?;
    println!(
        "\nlab `{}` kept (keeper process {}); enter a node with `harness shell NODE [-- COMMAND]`:",
        k.scenario, k.pid
    );
    let width = k.nodes.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (node, _) in &k.nodes {
        println!(
            "  harness shell {node:width$}   # or: {}",
            k.nsenter(node).unwrap_or_default()
        );
    }
    println!("remove it with `harness down`");
    Ok(())
}

/// `harness shell NODE [-- COMMAND]`: becomes COMMAND (or a shell) inside the node.
fn shell(node: &str, which: Option<&str>, command: &[String]) -> u8 {
    use std::os::unix::process::CommandExt;
    let k = match harness::lab::keep::find(which) {
        Ok(k) => k,
        Err(m) => return fail_msg(&m.to_string()),
    };
    if let Err(m) = harness::lab::keep::enter(&k, node) {
        return fail_msg(&m.to_string());
    }
    let (program, args) = match command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => {
            eprintln!(
                "harness: in node `{node}` of lab `{}`; `exit` to leave",
                k.scenario
            );
            (
                std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
                Vec::new(),
            )
        }
    };
    let err = std::process::Command::new(&program)
        .args(&args)
        .env("HARNESS_LAB", &k.scenario)
        .env("HARNESS_NODE", node)
        .exec();
    fail_msg(&format!("running `{program}` in node `{node}`: {err}"))
}

/// `harness down`: removes every kept lab, or the one `--lab` names. State files that are
/// not to be trusted are reported (exit 2) and their processes left alone.
fn down(which: Option<&str>) -> u8 {
    let (labs, refused) = match which {
        Some(_) => match harness::lab::keep::find(which) {
            Ok(k) => (vec![k], Vec::new()),
            Err(m) => return fail_msg(&m.to_string()),
        },
        None => match harness::lab::keep::list() {
            Ok(l) => (l.labs, l.refused),
            Err(m) => return fail_msg(&m.to_string()),
        },
    };
    if labs.is_empty() && refused.is_empty() {
        println!("no kept lab");
    }
    let mut code = Exit::PASS;
    for k in labs {
        match harness::lab::keep::remove(&k) {
            Err(m) => code = fail_msg(&m.to_string()),
            Ok(holders) if holders.is_empty() => {
                println!("removed lab `{}` (keeper process {})", k.scenario, k.pid)
            }
            Ok(holders) => println!(
                "removed lab `{}` (keeper process {}); processes still inside keep its nodes \
                 alive until they exit: {}",
                k.scenario,
                k.pid,
                holders.join(", ")
            ),
        }
    }
    for m in refused {
        code = fail_msg(&m.to_string());
    }
    code
}

fn dump_observations(plan: &Plan, r: &run::RunResult) {
    let sightings = &r.observations.sightings;
    for id in sightings.by_time() {
        let s = sightings.get(id);
        let l = &plan.topology.links[s.link];
        let p = &s.pkt;
        let from = if s.from_a { &l.a.node } else { &l.b.node };
        eprintln!(
            "{:>9} {:<6} from {:<8} {}:{} > {}:{} proto {} id {} flags {:#04x} len {}",
            s.t_ns / 1000,
            l.name,
            from,
            p.src,
            p.sport,
            p.dst,
            p.dport,
            p.proto,
            p.ip_id,
            p.flags,
            p.payload_len
        );
    }
    for c in &r.observations.conntrack {
        eprintln!("ct {c:?}");
    }
}

/// `--rules` overrides: (node, where its rules come from), in order.
type Overrides = Vec<(String, RuleSource)>;

/// What gate and diff start from: the `--rules` overrides, the scenarios, the run options.
fn prepare(paths: &[PathBuf], args: &RuleArgs) -> Result<(Overrides, Vec<Plan>, Options), u8> {
    let rules = overrides(&args.rules).map_err(|m| fail_msg(&m))?;
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

fn gate(paths: &[PathBuf], args: &RuleArgs) -> u8 {
    if args.rules.is_empty() {
        return fail_msg("`harness gate` needs the rules to judge: `--rules NODE=FILE-or-COMMAND`");
    }
    let (rules, plans, opts) = match prepare(paths, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
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
            let plan = match with_rules(plan, &rules) {
                Ok(p) => p,
                Err(m) => return fail_msg(&m),
            };
            match run::run_with(&plan, opts) {
                Err(e) => return fail(&e),
                Ok(r) if r.verdict.outcome == Outcome::Pass => {
                    passed += 1;
                    format!(
                        "PASS {name} ({} flows, {} expectations)",
                        r.verdict.flows.len(),
                        r.verdict.results.len()
                    )
                }
                Ok(r) => {
                    failed += 1;
                    format!(
                        "FAIL {name}: {}",
                        harness::report::first_failures(&r.verdict, 3)
                    )
                }
            }
        };
        progress.print(&(line + "\n"));
        progress.step();
    }
    drop(progress);
    println!("gate: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        Exit::FLOW_FAILED
    } else {
        Exit::PASS
    }
}

fn diff(paths: &[PathBuf], args: &RuleArgs) -> u8 {
    let (rules, plans, opts) = match prepare(paths, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if rules.len() != 2 || rules[0].0 != rules[1].0 {
        return fail_msg(
            "`harness diff` compares two rule sets for one node: `--rules NODE=A --rules NODE=B`",
        );
    }
    let mut changed = false;
    for plan in &plans {
        let name = plan.file.display();
        let mut verdicts = Vec::new();
        for r in &rules {
            let mut p = match with_rules(plan, std::slice::from_ref(r)) {
                Ok(p) => p,
                Err(m) => return fail_msg(&m),
            };
            // Both sides are judged by what they do, not by a declared breakage.
            p.expected_failure = None;
            match run::run_with(&p, opts) {
                Ok(res) => verdicts.push(res.verdict),
                Err(e) => return fail(&e),
            }
        }
        let c = compare::compare(&verdicts[0], &verdicts[1]);
        if c.is_empty() {
            println!("{name}: no change");
            continue;
        }
        changed = true;
        println!("{name}:");
        for line in harness::report::words::changes(&c) {
            println!("  {line}");
        }
    }
    if changed {
        Exit::FLOW_FAILED
    } else {
        Exit::PASS
    }
}

/// One mutant to run: the scenario with one rule file replaced.
struct Job {
    scenario: String,
    shown: String,
    mutant: harness::mutate::Mutant,
    plan: Plan,
}

fn mutate(paths: &[PathBuf], jobs: usize, backend: Backend) -> u8 {
    let plans = match load_all(paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = Options {
        backend,
        ..Default::default()
    };
    let mut queue = Vec::new();
    for plan in &plans {
        let name = plan.file.display().to_string();
        if plan.expected_failure.is_some() {
            println!("skip {name}: declared broken");
            continue;
        }
        match run::run_with(plan, opts) {
            Err(e) => return fail(&e),
            Ok(r) if r.verdict.outcome != Outcome::Pass => {
                return fail_msg(&format!(
                    "{name} does not hold with its own rules; fix it before mutating them:\n{}",
                    harness::report::first_failures(&r.verdict, 3)
                ));
            }
            Ok(_) => {}
        }
        let router = &plan.topology.router.node;
        let Some(rules) = plan.rules.iter().position(|r| r.node == *router) else {
            continue;
        };
        for (i, source) in plan.rules[rules].sources.iter().enumerate() {
            let RuleSource::File { kind, path } = source else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for m in harness::mutate::mutants(*kind, &text) {
                let mut p = plan.clone();
                // One name per file, however a scenario reaches it (`a/../b/x` is `b/x`).
                let canonical = path.canonicalize().ok();
                let cwd = std::env::current_dir().unwrap_or_default();
                let file = canonical
                    .as_deref()
                    .map(|c| c.strip_prefix(&cwd).unwrap_or(c))
                    .unwrap_or(path);
                let shown = format!("{}:{}", file.display(), m.line);
                p.rules[rules].sources[i] = RuleSource::Inline {
                    kind: *kind,
                    shown: format!("{} (mutant: {})", path.display(), m.change),
                    text: m.text.clone(),
                };
                queue.push(Job {
                    scenario: name.clone(),
                    shown,
                    mutant: m,
                    plan: p,
                });
            }
        }
    }
    let total = queue.len();
    let queue = std::sync::Mutex::new(queue.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    let progress = Progress::new(total, "mutants");
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let Some((k, job)) = queue.lock().expect("queue").pop() else {
                    break;
                };
                progress.doing(&job.scenario);
                let fate = match run::run_with(&job.plan, opts) {
                    Ok(r) if r.verdict.outcome == Outcome::Pass => "survived".to_string(),
                    Ok(r) => format!(
                        "killed by {}",
                        r.verdict
                            .results
                            .iter()
                            .filter(|e| e.broke())
                            .map(|e| format!("`{}`", e.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    // A mutant the tool rejects (or a run that could not judge) says nothing.
                    Err(e) => format!("invalid: {}", chain(&e).lines().next().unwrap_or("")),
                };
                results.lock().expect("results").push((k, job, fate));
                progress.step();
            });
        }
    });
    drop(progress);
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(k, ..)| *k);
    let mut by_scenario: Vec<(String, Vec<(Job, String)>)> = Vec::new();
    for (_, job, fate) in results {
        match by_scenario.iter_mut().find(|(n, _)| *n == job.scenario) {
            Some((_, v)) => v.push((job, fate)),
            None => by_scenario.push((job.scenario.clone(), vec![(job, fate)])),
        }
    }
    // Per scenario: how many of its mutants it killed.
    for (name, list) in &by_scenario {
        let k = list.iter().filter(|(_, f)| f.starts_with("killed")).count();
        let inv = list
            .iter()
            .filter(|(_, f)| f.starts_with("invalid"))
            .count();
        println!(
            "{name}: {} mutants, {k} killed{}",
            list.len(),
            if inv > 0 {
                format!(", {inv} invalid")
            } else {
                String::new()
            }
        );
    }
    // Per distinct mutant (a rule file is shared by several scenarios): killed when any scenario
    // that loads the file notices it.
    let mut distinct: Vec<(String, String, bool, bool)> = Vec::new();
    for (job, fate) in by_scenario.iter().flat_map(|(_, l)| l.iter()) {
        let (killed, invalid) = (fate.starts_with("killed"), fate.starts_with("invalid"));
        match distinct
            .iter_mut()
            .find(|(sh, ch, ..)| *sh == job.shown && *ch == job.mutant.change)
        {
            Some(d) => {
                d.2 |= killed;
                d.3 &= invalid;
            }
            None => distinct.push((
                job.shown.clone(),
                job.mutant.change.clone(),
                killed,
                invalid,
            )),
        }
    }
    let survivors: Vec<&(String, String, bool, bool)> =
        distinct.iter().filter(|d| !d.2 && !d.3).collect();
    let killed = distinct.iter().filter(|d| d.2).count();
    let invalid = distinct.iter().filter(|d| d.3).count();
    if !survivors.is_empty() {
        println!("mutants no scenario noticed:");
        for (shown, change, ..) in &survivors {
            println!("  {shown}: {change}");
        }
    }
    let judged = killed + survivors.len();
    println!(
        "mutate: {total} mutant runs, {} distinct mutants: {killed} killed, {} survived, {invalid} invalid; kill score {:.0}%",
        distinct.len(),
        survivors.len(),
        if judged == 0 { 100.0 } else { 100.0 * killed as f64 / judged as f64 }
    );
    if survivors.is_empty() {
        Exit::PASS
    } else {
        println!("A surviving mutant changed the rules and no expectation noticed: it is equivalent (no packet can show the change), or a scenario or expectation is missing.");
        Exit::FLOW_FAILED
    }
}

fn check_all(paths: &[PathBuf]) -> u8 {
    let plans = match load_all(paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for plan in plans {
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
    Exit::PASS
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Peak resident memory of this process so far, in MiB.
fn peak_mib() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| u.max_rss() as f64 / 1024.0)
}

/// Large blocks (a run's sightings, its flows' paths) straight from mmap, given back whole when
/// freed. glibc otherwise raises its mmap threshold each time such a block is freed, and
/// later ones stay in the heap: in one process, a second run of 100000 flows peaked at
/// 290 MiB where the first did at 243 (with a fixed threshold: 215 and 218).
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes a tunable of the allocator, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

fn bench(
    path: Option<&Path>,
    flow_counts: &[usize],
    runs: usize,
    uplinks: &[u32],
    backend: harness::install::Backend,
) -> u8 {
    // Past 25000 flows, each further 25000 go to the next server port (80, 81, …): keep
    // that well inside the port range.
    if let Some(n) = flow_counts.iter().find(|&&n| n > 1_000_000) {
        return fail_msg(&format!("--flows {n}: at most 1000000 flows per run"));
    }
    // (label, plan) for every row, smallest first: the peak memory column is the process's.
    let mut flow_counts = flow_counts.to_vec();
    flow_counts.sort_unstable();
    let mut uplinks = uplinks.to_vec();
    uplinks.sort_unstable();
    let mut rows: Vec<(String, Plan)> = Vec::new();
    if uplinks.is_empty() {
        let plan = match model::load(path.expect("clap: a scenario without --uplinks")) {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
        for &n in &flow_counts {
            rows.push((format!("{} flows", n), plan.with_flow_count(n)));
        }
    } else {
        for &flows in &flow_counts {
            for &n in &uplinks {
                match model::generate::nth_scenario(n, flows) {
                    Ok(p) => rows.push((format!("{n} uplinks, {flows} flows"), p)),
                    Err(e) => return fail(&e),
                }
            }
        }
    }
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
            match run::run_with(plan, opts) {
                Ok(r) => {
                    if !r.verdict.outcome.ok() {
                        eprint!("{}", report::full(&r.verdict));
                        eprintln!("bench: {label}: the scenario did not hold; timings of a failing run are not comparable");
                        return Exit::FLOW_FAILED;
                    }
                    all.push(r.timings);
                }
                Err(e) => return fail(&e),
            }
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
    Exit::PASS
}

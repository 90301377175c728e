//! The command line: what each `harness` command does, as a module of its own; `main` only
//! parses ([`Cli`]), calls [`dispatch`], and turns what it returns into the exit code.
//!
//! Every command returns a [`Finding`] (exit 0 or 1) when it ran to the end, or a
//! [`CliError`] (exit 2, printed once by `main` as `error: …`) when it could not judge.
//!
//! * [`run`] `harness run` (and [`dump`], its hidden `--dump`)
//! * [`keep`] `run --keep`'s hand-over, `harness shell`, `harness down`
//! * [`gate`], [`diff`], [`mutate`], [`bench`](mod@bench), [`check`] the other commands
//! * [`inputs`] scenario paths and `--rules`, as every command reads them

pub mod bench;
pub mod check;
pub mod diff;
pub mod dump;
pub mod error;
pub mod gate;
pub mod inputs;
pub mod keep;
pub mod mutate;
pub mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use error::CliError;

use crate::error::Exit;
use crate::install::Backend;
use crate::report::files::Outputs;
use crate::verdict::Outcome;

/// Proves, on the real Linux kernel, which path every connection takes through a multi-WAN
/// router.
///
/// Exit codes: 0 every expectation held (or a scenario declared broken broke exactly as
/// declared); 1 a flow broke an expectation (`diff`: something changed; `gate`: also rules a
/// tool rejected or a generator that failed); 2 could not judge (bad input, a generator or
/// tool that failed, missing privileges or tools, the kernel refused the lab, a capture that
/// lost packets).
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Seconds a generator may run before it is killed, with every process it started (exit
    /// 2; for `gate` the scenario fails, exit 1); default 60, or HARNESS_GENERATOR_TIMEOUT. Its output is limited to 64 MiB
    /// (HARNESS_GENERATOR_MAX_OUTPUT).
    #[arg(long, global = true, value_name = "SECS", value_parser = crate::install::generator::parse_seconds)]
    generator_timeout: Option<std::time::Duration>,
}

/// The result files `run` and `gate` write, each whole or not at all.
#[derive(Args, Clone)]
pub struct OutputArgs {
    /// Write the results as JSON (schema/results.schema.json: each flow, its packets hop by
    /// hop, expectations, findings, counters; from `gate`, a scenario whose rules did not load
    /// has `verdict: null` and its `error`, a skipped one its `skipped`). `-` writes it to
    /// stdout, and everything else goes to stderr.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML: a testsuite per scenario, a testcase per expectation (a `<failure>`
    /// when it broke); from `gate`, rules that did not load are one testcase with an `<error>`
    /// holding the tool's or generator's message, a skipped scenario one with `<skipped>`.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write one pcap file per link into DIR (`SCENARIO-LINK.pcap`); flow N has client port
    /// 40000+N and payload `HXQ N …`.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Write one self-contained HTML page: the topology with each flow's path drawn on it,
    /// failing flows first, their packets hop by hop (a FILE in every command).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

impl OutputArgs {
    fn outputs(&self) -> Outputs {
        Outputs {
            json: self.json.clone(),
            junit: self.junit.clone(),
            pcap: self.pcap.clone(),
            html: self.html.clone(),
        }
    }
}

#[derive(Args, Clone)]
pub struct RuleArgs {
    /// Replace NODE's rule set: NODE=FILE (a bundle: sections headed `### iptables`,
    /// `### ip6tables`, `### ip`, `### nft`, `### ipset`, `### sysctl`, and `### rt_tables`
    /// naming the routing tables the others use; one section may go without a header),
    /// NODE=COMMAND (a generator: it gets the topology's facts as JSON and prints a bundle) or
    /// NODE=install:COMMAND (an installer: it gets the same facts and loads the rules itself,
    /// which are then read back). Repeat for more parts or nodes.
    #[arg(long = "rules", value_name = "NODE=FILE|COMMAND|install:COMMAND")]
    rules: Vec<String>,
    /// The iptables implementation that loads `iptables:` and `ip6tables:` rules.
    #[arg(long, value_enum, default_value_t = BackendArg::System)]
    backend: BackendArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendArg {
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
pub enum Cmd {
    /// Build the lab, install the rules, drive the traffic, judge every flow.
    Run {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
        /// After the traffic, list the iptables and ip6tables rules no packet hit, with their
        /// file and line.
        #[arg(long)]
        coverage: bool,
        #[command(flatten)]
        outputs: OutputArgs,
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
    /// Run scenarios (files, or folders of them) against given rules: one line each, then
    /// `gate: N passed, M failed, K skipped`. A scenario fails when a flow takes another path
    /// than it expects, when a tool rejects the rules, or when their generator fails or prints
    /// nothing usable: the gate goes on to the next and exits 1 at the end. Exit 2 is the
    /// harness's own trouble (a bad scenario, missing tools or privileges, a lab that did not
    /// come up, a result file that cannot be written). Scenarios declared broken are skipped:
    /// they test the harness, not the rules.
    Gate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        outputs: OutputArgs,
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
    /// Whether the command builds labs (and so needs root, or a user namespace of its own).
    fn builds_labs(&self) -> bool {
        !matches!(
            self,
            Cmd::Check { .. } | Cmd::Shell { .. } | Cmd::Down { .. }
        )
    }
}

/// What a command that ran to the end found; a [`CliError`] is what stopped one that did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// Every expectation held (a scenario declared broken broke exactly as declared);
    /// `diff`: nothing changed; `mutate`: no mutant survived.
    Held,
    /// A flow broke an expectation; `diff`: something changed; `mutate`: a mutant survived;
    /// `bench`: the scenario did not hold.
    Broke,
}

impl Finding {
    /// [`Finding::Broke`] when `broke`, else [`Finding::Held`].
    pub fn broke_if(broke: bool) -> Finding {
        if broke {
            Finding::Broke
        } else {
            Finding::Held
        }
    }

    /// What a scenario's outcome says: held when it says what it should.
    pub fn of(outcome: &Outcome) -> Finding {
        Finding::broke_if(!outcome.ok())
    }

    /// 0 held, 1 broke.
    pub fn exit_code(self) -> u8 {
        match self {
            Finding::Held => Exit::PASS,
            Finding::Broke => Exit::FLOW_FAILED,
        }
    }
}

/// Runs the command `cli` names. What is refused before any lab is built is refused here
/// first: result files that could not be written, a state directory for kept labs that is
/// not to be trusted; then the commands that build labs enter a user namespace of their own
/// when not root.
///
/// # Errors
/// Whatever stopped the command before it could judge; see [`CliError`].
pub fn dispatch(cli: Cli) -> Result<Finding, CliError> {
    // Result files that could not be written are refused before anything is built.
    if let Cmd::Run { outputs, .. } | Cmd::Gate { outputs, .. } = &cli.cmd {
        outputs.outputs().check()?;
    }
    if let Some(limit) = cli.generator_timeout {
        crate::install::generator::set_time_limit(limit);
    }
    // A state directory for kept labs that is not to be trusted is refused before any lab is
    // built, and before the user namespace, where other users' files show as overflow uids.
    if let Cmd::Run { keep: true, .. } = cli.cmd {
        crate::lab::keep::check_state_dir()?;
    }
    // Commands that build labs run as root in a user namespace of their own when not root.
    if cli.cmd.builds_labs() {
        crate::rootless::enter()?;
        crate::rootless::raise_fd_limit();
    }
    match cli.cmd {
        Cmd::Run {
            scenarios,
            rules,
            coverage,
            outputs,
            keep,
            dump,
        } => run::run(
            &scenarios,
            &rules,
            &run::RunFlags {
                coverage,
                dump,
                keep,
            },
            &outputs.outputs(),
        ),
        Cmd::Shell { node, lab, command } => keep::shell(&node, lab.as_deref(), &command),
        Cmd::Down { lab } => keep::down(lab.as_deref()),
        Cmd::Gate {
            scenarios,
            rules,
            outputs,
        } => gate::gate(&scenarios, &rules, &outputs.outputs()),
        Cmd::Diff { scenarios, rules } => diff::diff(&scenarios, &rules),
        Cmd::Mutate {
            scenarios,
            jobs,
            backend,
        } => mutate::mutate(&scenarios, jobs, backend.into()),
        Cmd::Check { scenarios } => check::check(&scenarios),
        Cmd::Bench {
            scenario,
            flows,
            runs,
            uplinks,
            backend,
        } => bench::bench(scenario.as_deref(), &flows, runs, &uplinks, backend.into()),
    }
}

/// Milliseconds, for the timing lines.
fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

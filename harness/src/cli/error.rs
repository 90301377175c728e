//! Why a command stopped before it could judge, and the exit code each reason gets.
//!
//! Commands return these; `main` prints them (`error: …`, with [`crate::error::chain`]) and
//! exits with [`CliError::exit_code`], in one place.

use thiserror::Error;

use crate::error::Exit;
use crate::lab::keep::KeepError;
use crate::model::{RulesArgError, SpecError};
use crate::report::files::ResultFileError;
use crate::rootless::RootlessError;

/// Everything that stops a command before it can say whether the rules hold: exit code 2.
#[derive(Debug, Error)]
pub enum CliError {
    /// A scenario file (or the generated scale lab) that does not load: its file, line and
    /// column, and what to write instead.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A run that could not judge: a missing tool or privilege, the kernel refused the lab,
    /// a tool rejected the rules, the capture lost packets, the lab itself failed.
    #[error(transparent)]
    Judge(#[from] crate::Error),
    /// The paths given (files and folders) hold no `*.yaml` scenario file.
    #[error("no scenario files found in the paths given")]
    NoScenarios,
    /// The current directory, which `--rules` paths and commands start from, is unreadable
    /// (removed while the harness started, say).
    #[error("{0}")]
    CurrentDir(std::io::Error),
    /// A `--rules NODE=FILE|COMMAND` argument that names no usable rules (no `=`, a missing
    /// file, a folder, a bundle with an unknown section header, no such command).
    #[error(transparent)]
    Rules(#[from] RulesArgError),
    /// `harness gate` without `--rules`: it has nothing to judge.
    #[error("`harness gate` needs the rules to judge: `--rules NODE=FILE-or-COMMAND`")]
    GateNeedsRules,
    /// `harness diff` without exactly two `--rules` for one node.
    #[error("`harness diff` compares two rule sets for one node: `--rules NODE=A --rules NODE=B`")]
    DiffNeedsTwo,
    /// A result file (`--json`, `--junit`, `--html`, `--pcap`) that cannot be written: found
    /// before anything is built, or when writing it after the runs.
    #[error(transparent)]
    Outputs(#[from] ResultFileError),
    /// Not root, and the kernel refused the unprivileged user namespace the harness would
    /// build its labs in.
    #[error(transparent)]
    Rootless(#[from] RootlessError),
    /// `run --keep` with more than one scenario: a kept lab is one scenario's.
    #[error("--keep keeps one lab: give one scenario, not {given}")]
    KeepOneLab {
        /// How many scenario paths were given.
        given: usize,
    },
    /// A kept lab that could not be kept, found, entered or removed, or a state directory
    /// or state file that is not to be trusted (`run --keep`, `shell`, `down`).
    #[error(transparent)]
    Keep(#[from] KeepError),
    /// `harness shell NODE -- COMMAND`: COMMAND could not be started inside the kept node.
    #[error("running `{program}` in node `{node}`: {err}")]
    Exec {
        program: String,
        node: String,
        /// Shown in the message (so not a `source`, which would repeat it).
        err: std::io::Error,
    },
    /// `harness mutate`: a scenario that fails with its own, unmutated rules; its mutants
    /// would be killed by that failure, not by what they change.
    #[error(
        "{scenario} does not hold with its own rules; fix it before mutating them:\n{failures}"
    )]
    DoesNotHold {
        scenario: String,
        /// Its first failures, on one line.
        failures: String,
    },
    /// `harness bench --flows N` with N past what the server ports hold.
    #[error("--flows {flows}: at most 1000000 flows per run")]
    TooManyFlows { flows: usize },
    /// `harness down` went on past these (a kept lab it could not remove, a state file not
    /// to be trusted); each is its own `error:` line, in the order met.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<CliError>),
}

impl CliError {
    /// The exit code for this error: 2 (could not judge) for every one, as for grep and rg.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Judge(e) => e.exit_code(),
            CliError::Spec(_)
            | CliError::NoScenarios
            | CliError::CurrentDir(_)
            | CliError::Rules(_)
            | CliError::GateNeedsRules
            | CliError::DiffNeedsTwo
            | CliError::Outputs(_)
            | CliError::Rootless(_)
            | CliError::KeepOneLab { .. }
            | CliError::Keep(_)
            | CliError::Exec { .. }
            | CliError::DoesNotHold { .. }
            | CliError::TooManyFlows { .. }
            | CliError::Several(_) => Exit::CANNOT_JUDGE,
        }
    }

    /// Each error to print on its own `error:` line: the several of [`CliError::Several`],
    /// else this one.
    pub fn each(&self) -> Vec<&CliError> {
        match self {
            CliError::Several(all) => all.iter().flat_map(CliError::each).collect(),
            one => vec![one],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_print_one_line_each_and_exit_2() {
        let e = CliError::Several(vec![
            CliError::Keep(KeepError::KeeperGone {
                scenario: "a".into(),
                pid: 7,
            }),
            CliError::NoScenarios,
        ]);
        let lines: Vec<String> = e.each().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "the keeper of lab `a` (process 7) is gone",
                "no scenario files found in the paths given"
            ]
        );
        assert_eq!(e.exit_code(), Exit::CANNOT_JUDGE);
    }

    #[test]
    fn an_error_from_another_module_reads_as_it_words_it_once() {
        let e = CliError::from(ResultFileError::IsAFolder {
            flag: "--json",
            path: "x".into(),
        });
        assert_eq!(
            crate::error::chain(&e),
            "--json `x`: is a folder; give the name of a file to write"
        );
    }
}

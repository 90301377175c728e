//! What stops a rule set from going in.

use std::io;

use thiserror::Error;

/// A rule set that did not go in: a tool or generator refused or failed, or a rule source
/// could not be read.
#[derive(Debug, Error)]
pub enum InstallError {
    /// A tool rejected the rules, and the line it rejected was found (`line` counts in
    /// `file`, the section's place in a bundle included); `text` is that line.
    #[error("{file}:{line}: {tool} rejected this line on node `{node}`:\n    {text}\n  {tool} said: {said}")]
    RejectedLine {
        file: String,
        line: usize,
        text: String,
        tool: &'static str,
        node: String,
        /// The tool's message; then, when the tool did not point at the line itself, how it
        /// was found.
        said: String,
    },
    /// A tool rejected the rules without naming a line that could be found.
    #[error("{file}: {tool} rejected the file on node `{node}`:\n  {said}")]
    Rejected {
        file: String,
        tool: &'static str,
        node: String,
        said: String,
    },
    /// A rule source could not be read or split into sections (`shown` names it), or a
    /// generator's limits could not be set.
    #[error("{shown}: {msg}")]
    Source { shown: String, msg: String },
    /// A generator printed what no rule file may hold (see `model::hostsafe`).
    #[error("{0} (printed for node `{1}`)")]
    Outside(crate::model::SpecError, String),
    /// A generator could not run, exited with an error, ran too long, printed too much or
    /// printed what is not text; `said` tells which, with what it printed on stderr.
    #[error("generator `{line}` for node `{node}` failed: {said}")]
    Generator {
        line: String,
        node: String,
        said: String,
    },
    /// An installer could not run, exited with an error (its stderr quoted), ran too long or
    /// printed too much.
    #[error("installer `{line}` for node `{node}` failed: {said}")]
    Installer {
        line: String,
        node: String,
        said: String,
    },
    /// A tool could not be started in the node (or waited for). The cause is part of the
    /// message, so it is not also a `source` (it would print twice in a chain).
    #[error("running `{tool}` in node `{node}`: {error} (is it installed? apt-get install iptables nftables iproute2 ipset procps)")]
    Spawn {
        tool: &'static str,
        node: String,
        error: io::Error,
    },
}

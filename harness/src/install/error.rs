//! What stops a rule set from going in.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
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
    #[error("{file}: {tool} rejected the file on node `{node}`:\n  {said}")]
    Rejected {
        file: String,
        tool: &'static str,
        node: String,
        said: String,
    },
    #[error("{shown}: {msg}")]
    Source { shown: String, msg: String },
    /// A generator printed what no rule file may hold (see `model::hostsafe`).
    #[error("{0} (printed for node `{1}`)")]
    Outside(crate::model::SpecError, String),
    #[error("generator `{line}` for node `{node}` failed: {said}")]
    Generator {
        line: String,
        node: String,
        said: String,
    },
    #[error("running `{tool}` in node `{node}`: {source} (is it installed? apt-get install iptables nftables iproute2 ipset procps)")]
    Spawn {
        tool: &'static str,
        node: String,
        #[source]
        source: io::Error,
    },
}

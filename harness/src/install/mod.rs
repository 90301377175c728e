//! Rule sets into a node with the real tools (iptables-restore, `nft -f`, `ip -batch`,
//! `ipset restore`, `sysctl -p`), each spawned inside the node's namespace and fed the rules on
//! its stdin: from a rule file, a section of a bundle, or what a generator printed.
//!
//! Named routing tables (`table rt_link1`) resolve without touching the host: the tool runs
//! in a private mount namespace where a generated rt_tables file is bind-mounted over
//! /etc/iproute2/rt_tables. Children die with the harness (PR_SET_PDEATHSIG). Both are
//! [`crate::lab::spawn`]'s, which spawns every tool.
//!
//! * `schedule`: every node at once; in a node, netfilter and the rest in two lanes
//! * `sources`: the texts a rule source stands for (files, bundle sections, generators)
//! * `load`: one tool loading one text, waited for until its rules are in
//! * `reject`: a tool's complaint → the rejected line, quoted
//! * `snapshot`: installers, which load the rules themselves, and what they loaded, read back
//! * [`commits`]: the kernel's nf_tables commits, seen as they happen
//! * [`generator`]: a generator bounded: a time limit, an output limit, its own PID namespace

pub mod commits;
mod error;
pub mod generator;
mod load;
mod reject;
mod schedule;
pub mod snapshot;
mod sources;

use crate::model::RuleKind;

pub use error::InstallError;
pub use reject::find_line;
pub use schedule::{start, Installed, Installing};

pub use crate::model::bundle::split_bundle;

/// The iptables implementation `iptables:` and `ip6tables:` rule files are loaded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// `iptables-restore`, whichever implementation the system's alternatives choose.
    #[default]
    System,
    /// iptables-nft: the rules become nf_tables (Debian's default).
    Nft,
    /// iptables-legacy: the old x_tables.
    Legacy,
}

/// The program that loads rules of `kind`.
pub fn tool(kind: RuleKind, backend: Backend) -> &'static str {
    match (kind, backend) {
        (RuleKind::Iptables, Backend::System) => "iptables-restore",
        (RuleKind::Iptables, Backend::Nft) => "iptables-nft-restore",
        (RuleKind::Iptables, Backend::Legacy) => "iptables-legacy-restore",
        (RuleKind::Ip6tables, Backend::System) => "ip6tables-restore",
        (RuleKind::Ip6tables, Backend::Nft) => "ip6tables-nft-restore",
        (RuleKind::Ip6tables, Backend::Legacy) => "ip6tables-legacy-restore",
        (k, _) => k.tool(),
    }
}

/// One text a tool loads: a rule file, a section of a bundle, or what a generator printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Loadable {
    pub kind: RuleKind,
    /// Where it came from, for messages.
    pub shown: String,
    /// The line of `shown` that the text's first line is.
    pub first_line: usize,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::{tool, Backend, RuleKind};

    #[test]
    fn ip6tables_is_loaded_by_the_backend_asked_for() {
        assert_eq!(
            tool(RuleKind::Ip6tables, Backend::System),
            "ip6tables-restore"
        );
        assert_eq!(
            tool(RuleKind::Ip6tables, Backend::Nft),
            "ip6tables-nft-restore"
        );
        assert_eq!(
            tool(RuleKind::Ip6tables, Backend::Legacy),
            "ip6tables-legacy-restore"
        );
        assert_eq!(
            tool(RuleKind::Iptables, Backend::Nft),
            "iptables-nft-restore"
        );
        assert_eq!(tool(RuleKind::Nft, Backend::Legacy), "nft");
    }
}

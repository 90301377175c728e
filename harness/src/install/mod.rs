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
//! * [`daemon`]: daemons, left running beside the rules through the traffic, stopped at the end

pub mod commits;
pub mod daemon;
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

/// The xtables programs for rules of `kind` under `backend`: the one that loads them and the one
/// that prints what is loaded (with its counters). `None` for kinds that are not xtables.
fn xtables(kind: RuleKind, backend: Backend) -> Option<(&'static str, &'static str)> {
    Some(match (kind, backend) {
        (RuleKind::Iptables, Backend::System) => ("iptables-restore", "iptables-save"),
        (RuleKind::Iptables, Backend::Nft) => ("iptables-nft-restore", "iptables-nft-save"),
        (RuleKind::Iptables, Backend::Legacy) => {
            ("iptables-legacy-restore", "iptables-legacy-save")
        }
        (RuleKind::Ip6tables, Backend::System) => ("ip6tables-restore", "ip6tables-save"),
        (RuleKind::Ip6tables, Backend::Nft) => ("ip6tables-nft-restore", "ip6tables-nft-save"),
        (RuleKind::Ip6tables, Backend::Legacy) => {
            ("ip6tables-legacy-restore", "ip6tables-legacy-save")
        }
        _ => return None,
    })
}

/// The program that loads rules of `kind`.
pub fn tool(kind: RuleKind, backend: Backend) -> &'static str {
    xtables(kind, backend).map_or(kind.tool(), |(restore, _)| restore)
}

/// The program that prints the loaded rules of `kind` (iptables or ip6tables; any other kind
/// is read as iptables) under `backend`, with `-c` their counters.
pub fn save_tool(kind: RuleKind, backend: Backend) -> &'static str {
    let kind = if kind == RuleKind::Ip6tables {
        kind
    } else {
        RuleKind::Iptables
    };
    xtables(kind, backend).map_or("iptables-save", |(_, save)| save)
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
    /// An `ip` text of `-6` lines: run by `ip -6 -batch`.
    pub ipv6: bool,
}

#[cfg(test)]
mod tests {
    use super::{save_tool, tool, Backend, RuleKind};

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

    #[test]
    fn each_family_and_backend_has_its_save() {
        for (kind, backend, save) in [
            (RuleKind::Iptables, Backend::System, "iptables-save"),
            (RuleKind::Iptables, Backend::Legacy, "iptables-legacy-save"),
            (RuleKind::Ip6tables, Backend::System, "ip6tables-save"),
            (RuleKind::Ip6tables, Backend::Nft, "ip6tables-nft-save"),
            (
                RuleKind::Ip6tables,
                Backend::Legacy,
                "ip6tables-legacy-save",
            ),
        ] {
            assert_eq!(save_tool(kind, backend), save, "{kind:?} {backend:?}");
            // Each save reads what its restore loaded.
            assert_eq!(tool(kind, backend).replace("-restore", "-save"), save);
        }
    }
}

use thiserror::Error;

use crate::install::InstallError;
use crate::lab::LabError;
use crate::model::SpecError;

/// Everything that stops the harness from judging: exit code 2.
#[derive(Debug, Error)]
pub enum Error {
    /// A scenario file, or a file it names, that does not load: its file, line and column,
    /// and what to write instead.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A tool the scenario's rule files need (`iptables-restore`, `nft`, `ip`, …) is not in
    /// PATH; found before any lab is built.
    #[error("`{tool}` is not in PATH (needed for {why}); install it: apt-get install {package}")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
        /// The rule files that need it.
        why: String,
    },
    /// The probe namespace could not be created: not root, and no CAP_SYS_ADMIN and
    /// CAP_NET_ADMIN (the kernel's reason).
    #[error("cannot create network namespaces: {0}; run as root (or with CAP_SYS_ADMIN and CAP_NET_ADMIN)")]
    Privilege(String),
    /// The kernel refused a part of the lab (a namespace, link, address, route, sysctl).
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A rule file that could not be installed: a tool rejected a line, a generator failed.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// The capture dropped packets on these links (named, comma-separated), so what was not
    /// seen cannot be judged.
    #[error("the capture lost packets ({0}): the machine was too busy to read them in time, and a verdict on what was not seen would be wrong; run again on a quieter machine")]
    CaptureLost(String),
    /// The lab, not the rules, let flows down (what was seen, a line each): nothing is judged.
    #[error("the lab itself failed, so the rules are not judged:\n  {}\nthe machine was too busy for the lab (many runs at once?): run fewer at once, or run again", .0.join("\n  "))]
    LabFault(Vec<String>),
    /// A step of the run that failed on a system call (starting the captures, reading the
    /// lab's loss counters, injecting crafted packets): `what` says which; the system's
    /// reason is the source, which [`chain`] prints on its own `caused by:` line.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// 2 (could not judge), for every one.
    pub fn exit_code(&self) -> u8 {
        Exit::CANNOT_JUDGE
    }

    /// Whether the rule set, not the harness, is at fault: whoever wrote it (a generator, an
    /// installer, a person) must change it, and the harness could judge nothing because of
    /// it. A tool rejected the rules (a line, or the file); the rule source could not be
    /// read or split into sections (a bundle with an unknown header, a generator that
    /// printed nothing usable); a generator printed what no rule file may hold; a generator
    /// failed, ran too long or printed too much. `harness gate` reports these as the rule
    /// set's failures of the scenario and goes on to the next (exit 1 at the end).
    ///
    /// Everything else is the harness's own trouble (exit 2 at once): a bad scenario,
    /// a missing tool or one that could not be started, missing privileges, a lab the kernel
    /// refused or that did not come up, a capture that lost packets, a failed system call.
    /// (A generator's limits that cannot be set, `InstallError::Source` on "the environment",
    /// is found by `gate` before any scenario runs.)
    ///
    /// The one place that decides: every variant is named, so a new one must be decided here.
    pub fn is_rules_fault(&self) -> bool {
        match self {
            Error::Install(e) => match e {
                InstallError::RejectedLine { .. }
                | InstallError::Rejected { .. }
                | InstallError::Source { .. }
                | InstallError::Outside(..)
                | InstallError::Generator { .. }
                | InstallError::Installer { .. } => true,
                InstallError::Spawn { .. } => false,
            },
            Error::Spec(_)
            | Error::MissingTool { .. }
            | Error::Privilege(_)
            | Error::Lab(_)
            | Error::CaptureLost(_)
            | Error::LabFault(_)
            | Error::Io { .. } => false,
        }
    }

    /// Whether the lab itself failed on a machine too busy for it (a link that did not come
    /// up, a capture that lost packets, the kernel's own losses, flows the harness kept
    /// waiting): the rules were not judged, and a run in a new lab may judge them.
    pub fn is_lab_fault(&self) -> bool {
        matches!(
            self,
            Error::LabFault(_) | Error::CaptureLost(_) | Error::Lab(LabError::NotReady { .. })
        )
    }
}

/// Exit codes, like grep and rg.
pub struct Exit;
impl Exit {
    /// Every expectation held (or a declared-broken scenario broke as declared).
    pub const PASS: u8 = 0;
    /// A flow broke an expectation.
    pub const FLOW_FAILED: u8 = 1;
    /// Could not judge: bad input, missing privileges or tools, the kernel refused the lab.
    pub const CANNOT_JUDGE: u8 = 2;
}

/// The message of `e`, then each cause on its own `caused by:` line. Every error in the
/// crate either words its cause in its message or leaves it to this as a `source`, never
/// both, so each cause shows once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!("\n  caused by: {c}"));
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the rule set's author must fix is the rules' fault; what the harness's operator
    /// must fix is not.
    #[test]
    fn the_rules_fault_is_what_their_author_must_fix() {
        let rejected = |e| Error::Install(e);
        let rules = [
            rejected(InstallError::RejectedLine {
                file: "gen.rules".into(),
                line: 3,
                text: "-A FORWARD -j NOPE".into(),
                tool: "iptables-restore",
                node: "jupiter".into(),
                said: "Couldn't load target `NOPE'".into(),
            }),
            rejected(InstallError::Rejected {
                file: "gen.rules".into(),
                tool: "nft",
                node: "jupiter".into(),
                said: "syntax error".into(),
            }),
            rejected(InstallError::Source {
                shown: "output of generator `./gen`".into(),
                msg: "there are no rules in it".into(),
            }),
            rejected(InstallError::Generator {
                line: "./gen".into(),
                node: "jupiter".into(),
                said: "exit status 1".into(),
            }),
            rejected(InstallError::Installer {
                line: "./install".into(),
                node: "jupiter".into(),
                said: "exit status 2: shorewall: ERROR: …".into(),
            }),
        ];
        for e in &rules {
            assert!(e.is_rules_fault(), "{e}");
        }
        let harness = [
            rejected(InstallError::Spawn {
                tool: "ipset",
                node: "jupiter".into(),
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            Error::MissingTool {
                tool: "nft",
                package: "nftables",
                why: "jupiter.nft".into(),
            },
            Error::Privilege("Operation not permitted".into()),
            Error::LabFault(vec!["flow 1: no SYN seen".into()]),
            Error::CaptureLost("wan1".into()),
            Error::Io {
                what: "starting the captures".into(),
                source: std::io::Error::other("no buffer space"),
            },
        ];
        for e in &harness {
            assert!(!e.is_rules_fault(), "{e}");
        }
    }

    /// A cause left to `source` gets its own line; one worded in the message gets none.
    #[test]
    fn each_cause_shows_once() {
        let e = Error::Io {
            what: "starting the captures".into(),
            source: std::io::Error::other("no buffer space"),
        };
        assert_eq!(
            chain(&e),
            "starting the captures\n  caused by: no buffer space"
        );
        let e = Error::Lab(LabError::Thread {
            node: "jupiter".into(),
            error: std::io::Error::other("thread panicked"),
        });
        assert_eq!(chain(&e), "node `jupiter`: thread panicked");
    }
}

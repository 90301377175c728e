//! One tool loading one text in a node: started on a thread of its own that waits for it,
//! and waited for until the kernel has its rules (or it has exited, and its status says how).

use std::io;
use std::os::fd::AsFd;
use std::process::Command;

use super::commits::{CommitWatch, Outcome};
use super::reject::rejection;
use super::{tool, Backend, InstallError, Loadable};
use crate::lab::spawn::{feed_and_wait, spawn_piped};
use crate::lab::Lab;
use crate::model::RuleKind;

/// Starts the tool that loads `l` in `node`, on a thread of its own that waits for it.
pub(super) fn run_tool(
    lab: &Lab,
    node: &str,
    l: &Loadable,
    tables: Option<&[u8]>,
    backend: Backend,
    open_watch: bool,
) -> Result<(Settling, Option<CommitWatch>), InstallError> {
    let tool = tool(l.kind, backend);
    let mut cmd = Command::new(tool);
    // Every tool reads the rules on its stdin: generated rules never touch the disk.
    match (l.kind, backend) {
        (RuleKind::Iptables | RuleKind::Ip6tables, Backend::Legacy) => cmd.arg("-w"),
        (RuleKind::Iptables | RuleKind::Ip6tables, Backend::Nft | Backend::System) => &mut cmd,
        (RuleKind::Nft, _) => cmd.arg("-f").arg("/dev/stdin"),
        (RuleKind::Ip, _) if l.ipv6 => cmd.arg("-6").arg("-batch").arg("-"),
        (RuleKind::Ip, _) => cmd.arg("-batch").arg("-"),
        (RuleKind::Ipset, _) => cmd.arg("restore"),
        (RuleKind::Sysctl, _) => cmd.arg("-q").arg("-p").arg("/dev/stdin"),
    };
    let spawn_failed = |error| InstallError::Spawn {
        tool,
        node: node.to_string(),
        error,
    };
    let ns = lab.ns(node).clone();
    let tables = tables.map(<[u8]>::to_vec);
    let text = l.text.clone();
    // The write end is dropped when the tool has exited (it is close-on-exec: the tool does
    // not hold it).
    let (exited, exiting) = io::pipe().map_err(spawn_failed)?;
    let (watch_tx, watch_rx) = std::sync::mpsc::sync_channel(1);
    // The tool dies with the thread that spawned it (PR_SET_PDEATHSIG): this one waits for it.
    // It is in the node, where it opens the commit watch first (one thread start less before
    // the tool: on a loaded machine each takes a millisecond or more).
    let thread = lab
        .ns(node)
        .spawn(tool, move || {
            let watch = open_watch.then(|| CommitWatch::here().ok()).flatten();
            let child = spawn_piped(&ns, cmd, tables.as_deref(), None);
            // Handed over once the tool runs.
            let _ = watch_tx.send(watch);
            let out = child.and_then(|c| feed_and_wait(c, text.as_bytes()));
            drop(exiting);
            out
        })
        .map_err(spawn_failed)?;
    // Without a watch the tool's exit is waited for, as for any other.
    let watch = watch_rx.recv().ok().flatten();
    Ok((
        Settling {
            node: node.to_string(),
            loadable: l.clone(),
            tool,
            exited,
            thread,
        },
        watch,
    ))
}

/// A tool loading rules, on the thread that waits for it.
pub(super) struct Settling {
    node: String,
    loadable: Loadable,
    tool: &'static str,
    /// Readable (at end of file) once the tool has exited.
    exited: io::PipeReader,
    thread: std::thread::JoinHandle<io::Result<io::Result<std::process::Output>>>,
}

impl Settling {
    /// Waits until the rules are in: until `watch` has seen the kernel commit `batches`
    /// batches (then the tool is handed back, still exiting), or until the tool has exited
    /// (then its status is checked here).
    pub(super) fn wait(
        self,
        watch: Option<&mut CommitWatch>,
        batches: usize,
    ) -> Result<Option<Settling>, InstallError> {
        let outcome = match watch {
            Some(w) => w
                .wait(batches, self.exited.as_fd())
                .unwrap_or(Outcome::Exited),
            None => Outcome::Exited,
        };
        match outcome {
            Outcome::Committed => Ok(Some(self)),
            Outcome::Exited => self.finish().map(|()| None),
        }
    }

    /// Waits for the tool to exit: an error names the line it rejected.
    pub(super) fn finish(self) -> Result<(), InstallError> {
        let Settling {
            node,
            loadable: l,
            tool,
            thread,
            ..
        } = self;
        let out = thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread waiting for it panicked")))
            .and_then(|r| r)
            .map_err(|error| InstallError::Spawn {
                tool,
                node: node.clone(),
                error,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let said = if said.is_empty() {
            format!("exit status {}", out.status)
        } else {
            said
        };
        Err(rejection(&node, &l, tool, &said))
    }
}

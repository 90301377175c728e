//! What each daemon (`- daemon: COMMAND` in a node's rules) did during a run: how it ended
//! and the last of what it printed. Pure data; the harness crate's `install::daemon` runs them.

/// How a daemon's run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum DaemonEnd {
    /// It ran until the run ended, and SIGTERM to its process group ended it.
    Stopped,
    /// It ran until the run ended and was still there [`GRACE_MS`] after SIGTERM: SIGKILL
    /// ended it.
    Killed,
    /// It exited by itself while the run went on, `after_ms` after it started: with exit
    /// status `code`, or killed by `signal`.
    Exited {
        after_ms: u64,
        code: Option<i32>,
        signal: Option<i32>,
    },
}

/// One daemon's run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DaemonRun {
    /// The node it ran in.
    pub node: String,
    /// Its command line, as the scenario (or `--rules NODE=daemon:…`) gives it.
    pub command: String,
    pub end: DaemonEnd,
    /// The last of what it printed, stdout and stderr together as it wrote them (at most
    /// [`OUTPUT_KEPT`] bytes; not necessarily UTF-8, shown lossily).
    pub output: String,
    /// Whether it printed more than was kept (the start is cut).
    pub output_cut: bool,
}

/// How long a daemon has to end after SIGTERM, when the run ends, before SIGKILL.
pub const GRACE_MS: u64 = 200;

/// How much of a daemon's output is kept: the last 64 KiB.
pub const OUTPUT_KEPT: usize = 64 << 10;

impl DaemonRun {
    /// Whether it exited by itself before the run ended.
    pub fn exited_early(&self) -> bool {
        matches!(self.end, DaemonEnd::Exited { .. })
    }

    /// The last `n` lines of its output.
    pub fn last_lines(&self, n: usize) -> Vec<&str> {
        let lines: Vec<&str> = self.output.lines().collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

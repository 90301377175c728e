//! Progress for long runs (many scenarios, mutants): a bar on stderr when it is a terminal,
//! nothing in CI (`CI` set) or when stderr is a file or pipe. Lines printed through it do
//! not tear the bar.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of steps, cleared when dropped.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar of `len` steps of `what` (`scenarios`, `mutants`).
    pub fn new(len: usize, what: &str) -> Progress {
        let shown = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = ProgressBar::with_draw_target(
            Some(len as u64),
            if shown {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what} {{msg}}"
            ))
            .expect("valid template"),
        );
        if shown {
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        Progress(bar)
    }

    /// Says what is being done now (`dual-isp`).
    pub fn doing(&self, what: impl Into<String>) {
        self.0.set_message(what.into());
    }

    /// One more step done.
    pub fn step(&self) {
        self.0.inc(1);
    }

    /// Prints `text` to stdout above the bar.
    pub fn print(&self, text: &str) {
        self.0.suspend(|| print!("{text}"));
    }

    /// Prints `text` to stderr above the bar (when stdout carries `--json -`).
    pub fn eprint(&self, text: &str) {
        self.0.suspend(|| eprint!("{text}"));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

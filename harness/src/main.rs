//! `harness`: parses the command line, runs the command (see [`harness::cli`]), and chooses
//! the exit code from what it returned.

use std::process::ExitCode;

use clap::Parser;

use harness::cli::{self, Cli};
use harness::error::chain;

fn main() -> ExitCode {
    // A kept lab's keeper is this binary run afresh by `run --keep` (see lab::keep).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == harness::lab::keep::KEEPER_ARG)
    {
        harness::lab::keep::keeper_main();
    }
    fixed_mmap_threshold();
    let code = match cli::dispatch(Cli::parse()) {
        Ok(found) => found.exit_code(),
        Err(e) => {
            for one in e.each() {
                eprintln!("error: {}", chain(one));
            }
            e.exit_code()
        }
    };
    ExitCode::from(code)
}

/// Large blocks (a run's sightings, its flows' paths) straight from mmap, given back whole when
/// freed. glibc otherwise raises its mmap threshold each time such a block is freed, and
/// later ones stay in the heap: in one process, a second run of 100000 flows peaked at
/// 290 MiB where the first did at 243 (with a fixed threshold: 215 and 218).
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes a tunable of the allocator, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

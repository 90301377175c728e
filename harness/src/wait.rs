//! Waiting for the kernel: one helper that polls a condition until a deadline and, when the
//! deadline passes, says what did not happen. A lab that did not come up in time is the
//! lab's fault (exit 2), never a verdict on the rules.

use std::time::{Duration, Instant};

use thiserror::Error;

/// A condition that did not hold by its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what} did not happen within {waited:?} (the machine may be too busy: run fewer at once, or run again)")]
pub struct Timeout {
    /// What was waited for, as a sentence fragment: "link `wan1` (jupiter:eth1) up".
    pub what: String,
    /// How long it waited.
    pub waited: Duration,
}

/// Polls `poll` until it returns `Ok`, or until `deadline`: then [`Timeout`] with the
/// description `what` makes of the last poll's `Err` (what is still missing). The first poll
/// happens at once; later ones back off from 1 ms to 20 ms, so a quick condition costs little
/// and a slow one little CPU.
pub fn wait_until<T, S>(
    deadline: Instant,
    mut poll: impl FnMut() -> Result<T, S>,
    what: impl FnOnce(S) -> String,
) -> Result<T, Timeout> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let missing = match poll() {
            Ok(v) => return Ok(v),
            Err(s) => s,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Timeout {
                what: what(missing),
                waited: now - start,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// How long the harness waits for the lab's own parts (links up, captures, the kernel's
/// answers) before it calls the lab broken: generous, since 64 runs at once on two CPUs can
/// hold the kernel's link events back for seconds. `HARNESS_LAB_WAIT` (seconds) overrides it.
pub fn lab_patience() -> Duration {
    std::env::var("HARNESS_LAB_WAIT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
        .map_or(Duration::from_secs(30), Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let got = wait_until(
            Instant::now() + Duration::from_secs(5),
            || {
                n += 1;
                if n == 3 {
                    Ok(n)
                } else {
                    Err(())
                }
            },
            |()| "three polls".into(),
        );
        assert_eq!(got, Ok(3));
    }

    #[test]
    fn names_what_did_not_happen_at_the_deadline() {
        let t0 = Instant::now();
        let err = wait_until(
            t0 + Duration::from_millis(30),
            || Err::<(), _>("`wan1` down"),
            |s| format!("link {s} up"),
        )
        .unwrap_err();
        assert_eq!(err.what, "link `wan1` down up");
        assert!(err.waited >= Duration::from_millis(30));
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(err
            .to_string()
            .starts_with("link `wan1` down up did not happen within"));
    }
}

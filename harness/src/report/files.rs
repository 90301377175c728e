//! Writes the result files of a set of runs: JSON, JUnit, one pcap per link, the HTML page.
//! The CLI's `--json/--junit/--pcap/--html` and the test suite's failure folder both use it.

use std::path::{Path, PathBuf};

use crate::run::RunResult;
use crate::spec::Plan;

/// Which result files to write, and where.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub pcap: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

impl Outputs {
    /// Every file, in one folder: `DIR/result.json`, `result.junit.xml`, `result.html`, and
    /// the pcaps beside them.
    pub fn all_in(dir: &Path) -> Outputs {
        Outputs {
            json: Some(dir.join("result.json")),
            junit: Some(dir.join("result.junit.xml")),
            pcap: Some(dir.to_path_buf()),
            html: Some(dir.join("result.html")),
        }
    }

    /// Whether the runs must keep every frame they capture (for the pcaps).
    pub fn needs_frames(&self) -> bool {
        self.pcap.is_some()
    }
}

fn written(path: &Path, e: impl std::fmt::Display) -> String {
    format!("writing `{}`: {e}", path.display())
}

/// `DIR/SCENARIO-LINK.pcap` for every link of a run.
fn write_pcaps(dir: &Path, plan: &Plan, r: &RunResult) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| written(dir, e))?;
    for (i, link) in plan.topology.links.iter().enumerate() {
        let path = dir.join(format!("{}-{}.pcap", plan.name, link.name));
        let file = std::fs::File::create(&path).map_err(|e| written(&path, e))?;
        super::pcap::write(
            std::io::BufWriter::new(file),
            &r.frames,
            i,
            r.capture_started,
        )
        .map_err(|e| written(&path, e))?;
    }
    Ok(())
}

/// Writes every file `out` names for these runs; the message names the file that failed.
pub fn write(out: &Outputs, runs: &[(&Plan, &RunResult)]) -> Result<(), String> {
    if let Some(dir) = &out.pcap {
        for (plan, r) in runs {
            write_pcaps(dir, plan, r)?;
        }
    }
    let files: Vec<String> = runs
        .iter()
        .map(|(p, _)| p.file.display().to_string())
        .collect();
    let all: Vec<super::results::Judged> = runs
        .iter()
        .zip(&files)
        .map(|((_, r), file)| super::results::Judged {
            file,
            verdict: &r.verdict,
            seconds: r.timings.total().as_secs_f64(),
            packets_seen: r.observations.sightings.len(),
            conntrack_entries: r.observations.conntrack.len(),
            coverage: r.coverage.as_deref(),
        })
        .collect();
    let pages: Vec<super::html::Scenario> = runs
        .iter()
        .map(|(plan, r)| super::html::Scenario {
            plan,
            verdict: &r.verdict,
            obs: &r.observations,
        })
        .collect();
    for (path, text) in [
        (&out.json, super::results::json(&all)),
        (&out.junit, super::results::junit(&all)),
        (&out.html, super::html::page(&pages)),
    ] {
        if let Some(p) = path {
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| written(parent, e))?;
            }
            std::fs::write(p, text).map_err(|e| written(p, e))?;
        }
    }
    Ok(())
}

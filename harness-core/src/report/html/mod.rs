//! One self-contained HTML page for a set of runs: the topology drawn, each flow's path
//! coloured on it, failing flows first, each failing flow's packets hop by hop. Pure.
//!
//! Nothing is fetched and nothing needs JavaScript: inline CSS and inline SVG. The drawing is
//! laid out from the graph, so every topology gets one: the router in the middle, what is
//! behind its LAN ports to the left, what is behind its uplinks to the right, each node in the
//! column of its distance from the router. Flows that took the same path share one drawing;
//! flows judged together by statistics are counted, not drawn one by one.
//!
//! `svg` lays the topology out and draws it, with a flow's path on it; `sections` writes
//! each scenario's parts (expectations, failing flows hop by hop, flows grouped by path);
//! `timeline` draws, for a run with events, the events and the flows on a time axis;
//! `style.css` is the page's stylesheet, inlined.

use std::fmt::Write as _;

use crate::model::Plan;
use crate::observe::Observations;
use crate::verdict::{Outcome, Verdict};

mod sections;
mod svg;
#[cfg(test)]
mod tests;
mod timeline;

pub use timeline::{NO_UPLINK, UPLINK_COLOURS};

/// What one judged scenario contributes to the page.
pub struct Scenario<'a> {
    pub plan: &'a Plan,
    pub verdict: &'a Verdict,
    pub obs: &'a Observations,
}

// The path colours are the drawings' own (and the legend's): text and borders use other
// shades, so that a screenshot shows by these colours whether the paths were drawn.

/// Packets going out, client → server.
pub const OUT: &str = "#2563eb";
/// Replies, server → client.
pub const BACK: &str = "#16a34a";
/// Where packets died: the link they were last seen on, and the node that dropped them.
pub const DIED: &str = "#dc2626";

/// Failing flows drawn and listed one by one; the others are only counted.
const MAX_DETAILED: usize = 25;
/// Packets listed per failing flow.
const MAX_PACKETS: usize = 120;
/// Rows of a table of flows that took one path.
const MAX_ROWS: usize = 40;
/// Flow ids named in a heading.
const MAX_IDS: usize = 40;

/// Text for HTML, in elements and in quoted attributes alike.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------
// The page

/// The page's stylesheet, inlined in its `<style>`.
const CSS: &str = include_str!("style.css");

/// The outcome in words, and its class.
fn outcome_words(o: &Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Pass => ("pass", "pass"),
        Outcome::Fail => ("FAIL", "fail"),
        Outcome::BrokenAsDeclared => ("broken as declared", "declared"),
        Outcome::NotAsDeclared(_) => ("FAIL: not broken as declared", "fail"),
    }
}

/// An id for anchors: letters, digits and `-`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `1, 3, 5 … and 12 more`
fn some_ids(ids: &[u32]) -> String {
    if ids.len() <= MAX_IDS {
        crate::report::ranges(ids)
    } else {
        format!(
            "{} … and {} more",
            crate::report::ranges(&ids[..MAX_IDS]),
            ids.len() - MAX_IDS
        )
    }
}

/// A scenario whose rules could not be loaded (`harness gate`: a tool rejected them, their
/// generator failed): no flow ran, so its section says why, in the tool's words, where the
/// drawings would be.
pub struct NotLoaded<'a> {
    pub plan: &'a Plan,
    /// The node whose rules did not load.
    pub router: &'a str,
    /// Why, every line of it, as the terminal words it.
    pub error: &'a str,
}

/// A scenario `harness gate` did not run (declared broken: it tests the harness, not the
/// rules; or its topology lacks the node `--rules` names): neither passed nor failed, it is
/// listed last with why.
pub struct Skipped<'a> {
    pub plan: &'a Plan,
    /// Why, as the terminal's `skip` line says it.
    pub reason: &'a str,
}

/// The whole page, every scenario judged.
pub fn page(all: &[Scenario]) -> String {
    page_with(all, &[])
}

/// The whole page: the scenarios whose rules did not load first, then the judged ones,
/// failing first.
pub fn page_with(all: &[Scenario], not_loaded: &[NotLoaded]) -> String {
    page_gated(all, not_loaded, &[])
}

/// [`page_with`], and after the others the scenarios `harness gate` skipped, each with a
/// `skipped` badge and why. When there are any, the heading counts them apart: `1 FAILED, 1
/// skipped`, `all run as expected, 1 skipped`, or `1 skipped` alone when nothing ran.
pub fn page_gated(all: &[Scenario], not_loaded: &[NotLoaded], skipped: &[Skipped]) -> String {
    let mut order: Vec<(usize, &Scenario)> = all.iter().enumerate().collect();
    order.sort_by_key(|(_, sc)| sc.verdict.outcome.ok());
    let bad = all.iter().filter(|sc| !sc.verdict.outcome.ok()).count() + not_loaded.len();
    let names: Vec<&str> = not_loaded
        .iter()
        .map(|n| n.plan.name.as_str())
        .chain(all.iter().map(|sc| sc.verdict.scenario.as_str()))
        .chain(skipped.iter().map(|k| k.plan.name.as_str()))
        .collect();
    let ran = names.len() - skipped.len();
    let mut verdict = match (bad, skipped.len()) {
        (0, 0) => "all as expected".to_string(),
        (0, _) if ran == 0 => String::new(),
        (0, _) => "all run as expected".to_string(),
        _ => format!("{bad} FAILED"),
    };
    if !skipped.is_empty() {
        let sep = if verdict.is_empty() { "" } else { ", " };
        let _ = write!(verdict, "{sep}{} skipped", skipped.len());
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>harness: {} — {}</title>\n<style>{CSS}</style></head>\n<body>\n",
        esc(&names.join(", ")),
        esc(&verdict)
    );
    let _ = write!(
        s,
        "<header class=\"top\"><h1>harness: {} scenario{}, {}</h1><ul class=\"index\">",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        esc(&verdict)
    );
    for (i, n) in not_loaded.iter().enumerate() {
        let _ = write!(
            s,
            "<li><span class=\"badge fail\">{}</span> <a href=\"#r{i}-{}\">{}</a></li>",
            esc(NOT_LOADED),
            slug(&n.plan.name),
            esc(&n.plan.name)
        );
    }
    for (i, sc) in &order {
        let (word, class) = outcome_words(&sc.verdict.outcome);
        let _ = write!(
            s,
            "<li><span class=\"badge {class}\">{}</span> <a href=\"#s{i}-{}\">{}</a></li>",
            esc(word),
            slug(&sc.verdict.scenario),
            esc(&sc.verdict.scenario)
        );
    }
    for (i, k) in skipped.iter().enumerate() {
        let _ = write!(
            s,
            "<li><span class=\"badge skipped\">{SKIPPED}</span> <a href=\"#k{i}-{}\">{}</a></li>",
            slug(&k.plan.name),
            esc(&k.plan.name)
        );
    }
    s.push_str("</ul></header>\n");
    for (i, n) in not_loaded.iter().enumerate() {
        sections::not_loaded(&mut s, i, n);
    }
    for (i, sc) in &order {
        sections::scenario(&mut s, *i, sc);
    }
    for (i, k) in skipped.iter().enumerate() {
        sections::skipped(&mut s, i, k);
    }
    s.push_str("</body></html>\n");
    s
}

/// The badge of a scenario whose rules did not load.
const NOT_LOADED: &str = "FAIL: rules not loaded";
/// The badge of a scenario the gate skipped.
const SKIPPED: &str = "skipped";

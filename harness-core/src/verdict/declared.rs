//! Whether a declared-broken scenario broke as declared: decided here, once, expectation by
//! expectation, for every output to read ([`super::ExpResult::declared`], [`Outcome`]).

use super::{Declared, ExpResult, Outcome, Problem};
use crate::model::ExpectedFailure;

/// Marks each result with what its breaking means against `declared`, and decides the outcome.
/// An expectation broke as declared when the declaration names it and it broke, for exactly
/// the flows the declaration lists (when it lists them).
pub fn decide(results: &mut [ExpResult], declared: Option<&ExpectedFailure>) -> Outcome {
    let any_failed = results.iter().any(ExpResult::broke);
    let Some(decl) = declared else {
        return if any_failed {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
    };
    let mut problems = Vec::new();
    for r in results.iter_mut() {
        let failed = r.failed_flows();
        let problem = match decl.breaks.iter().find(|b| b.expectation == r.name) {
            None if r.broke() => Some(Problem::Undeclared {
                expectation: r.name.clone(),
                flows: if r.broke_overall { Vec::new() } else { failed },
            }),
            None => None,
            Some(_) if !r.broke() => Some(Problem::Held {
                expectation: r.name.clone(),
            }),
            Some(b) => match &b.flows {
                Some(want) if *want != failed => Some(Problem::OtherFlows {
                    expectation: r.name.clone(),
                    declared: want.clone(),
                    broke: failed,
                }),
                _ => None,
            },
        };
        let named = decl.breaks.iter().any(|b| b.expectation == r.name);
        r.declared = match (&problem, named) {
            (_, false) => Declared::No,
            (None, true) => Declared::BrokeAsDeclared,
            (Some(_), true) => Declared::NotAsDeclared,
        };
        problems.extend(problem);
    }
    if problems.is_empty() {
        Outcome::BrokenAsDeclared
    } else {
        Outcome::NotAsDeclared(problems)
    }
}

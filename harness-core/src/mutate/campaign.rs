//! A mutation campaign's results: what became of each mutant in each scenario, tallied per
//! scenario and per distinct mutant, and the kill score. Pure: the runs happen elsewhere
//! (`harness mutate`, in the harness crate's `cli::mutate`).

use std::fmt::Write as _;

/// What running the scenarios on a mutant showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutantFate {
    /// Some expectation broke: the mutant was noticed.
    Killed {
        /// The expectations that broke.
        by: Vec<String>,
    },
    /// Every expectation held: nothing noticed the mutant.
    Survived,
    /// The run could not judge (a tool rejected the mutant, the lab failed): it says nothing
    /// about the scenario.
    Invalid {
        /// The first line of why.
        why: String,
    },
}

impl MutantFate {
    pub fn is_killed(&self) -> bool {
        matches!(self, MutantFate::Killed { .. })
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self, MutantFate::Invalid { .. })
    }
}

/// One mutant run in one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutantResult {
    /// The scenario file, as shown.
    pub scenario: String,
    /// Where the mutant changes its rule file first: `FILE:LINE`, one name per file however
    /// scenarios reach it.
    pub place: String,
    /// What it changes ([`super::Mutant::change`]).
    pub change: String,
    pub fate: MutantFate,
}

/// A mutant as every scenario that loads its rule file saw it together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distinct<'a> {
    pub place: &'a str,
    pub change: &'a str,
    /// Some scenario killed it.
    pub killed: bool,
    /// Every scenario's run of it was invalid.
    pub invalid: bool,
}

impl Distinct<'_> {
    /// Neither killed nor invalid: no expectation noticed it.
    pub fn survived(&self) -> bool {
        !self.killed && !self.invalid
    }
}

/// Per scenario: how many of its mutants it ran, killed, and could not judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioTally<'a> {
    pub scenario: &'a str,
    pub mutants: usize,
    pub killed: usize,
    pub invalid: usize,
}

/// Every mutant run of a campaign, in the order they were queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    pub results: Vec<MutantResult>,
}

impl Campaign {
    /// The results grouped by scenario, scenarios in the order first met.
    fn by_scenario(&self) -> Vec<(&str, Vec<&MutantResult>)> {
        let mut out: Vec<(&str, Vec<&MutantResult>)> = Vec::new();
        for r in &self.results {
            match out.iter_mut().find(|(n, _)| *n == r.scenario) {
                Some((_, v)) => v.push(r),
                None => out.push((&r.scenario, vec![r])),
            }
        }
        out
    }

    /// How each scenario did, in the order first met.
    pub fn scenarios(&self) -> Vec<ScenarioTally<'_>> {
        self.by_scenario()
            .into_iter()
            .map(|(scenario, list)| ScenarioTally {
                scenario,
                mutants: list.len(),
                killed: list.iter().filter(|r| r.fate.is_killed()).count(),
                invalid: list.iter().filter(|r| r.fate.is_invalid()).count(),
            })
            .collect()
    }

    /// Each distinct mutant (a rule file is shared by several scenarios): killed when any
    /// scenario that loads the file notices it, invalid when no run of it could judge.
    pub fn distinct(&self) -> Vec<Distinct<'_>> {
        let mut out: Vec<Distinct> = Vec::new();
        for r in self.by_scenario().into_iter().flat_map(|(_, l)| l) {
            let (killed, invalid) = (r.fate.is_killed(), r.fate.is_invalid());
            match out
                .iter_mut()
                .find(|d| d.place == r.place && d.change == r.change)
            {
                Some(d) => {
                    d.killed |= killed;
                    d.invalid &= invalid;
                }
                None => out.push(Distinct {
                    place: &r.place,
                    change: &r.change,
                    killed,
                    invalid,
                }),
            }
        }
        out
    }

    /// Whether some distinct mutant survived.
    pub fn has_survivors(&self) -> bool {
        self.distinct().iter().any(Distinct::survived)
    }

    /// The campaign's report: a line per scenario, the mutants no scenario noticed, the kill
    /// score, and what a survivor means.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for t in self.scenarios() {
            let _ = write!(
                s,
                "{}: {} mutants, {} killed",
                t.scenario, t.mutants, t.killed
            );
            if t.invalid > 0 {
                let _ = write!(s, ", {} invalid", t.invalid);
            }
            s.push('\n');
        }
        let distinct = self.distinct();
        let survivors: Vec<&Distinct> = distinct.iter().filter(|d| d.survived()).collect();
        let killed = distinct.iter().filter(|d| d.killed).count();
        let invalid = distinct.iter().filter(|d| d.invalid).count();
        if !survivors.is_empty() {
            s.push_str("mutants no scenario noticed:\n");
            for d in &survivors {
                let _ = writeln!(s, "  {}: {}", d.place, d.change);
            }
        }
        let judged = killed + survivors.len();
        let _ = writeln!(
            s,
            "mutate: {} mutant runs, {} distinct mutants: {killed} killed, {} survived, {invalid} invalid; kill score {:.0}%",
            self.results.len(),
            distinct.len(),
            survivors.len(),
            if judged == 0 { 100.0 } else { 100.0 * killed as f64 / judged as f64 }
        );
        if !survivors.is_empty() {
            s.push_str("A surviving mutant changed the rules and no expectation noticed: it is equivalent (no packet can show the change), or a scenario or expectation is missing.\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(scenario: &str, place: &str, fate: MutantFate) -> MutantResult {
        MutantResult {
            scenario: scenario.into(),
            place: place.into(),
            change: "deleted `x`".into(),
            fate,
        }
    }

    fn killed() -> MutantFate {
        MutantFate::Killed {
            by: vec!["e".into()],
        }
    }

    fn invalid() -> MutantFate {
        MutantFate::Invalid { why: "no".into() }
    }

    #[test]
    fn a_mutant_is_killed_by_any_scenario_and_invalid_only_in_all() {
        let c = Campaign {
            results: vec![
                result("a.yaml", "r:1", MutantFate::Survived),
                result("a.yaml", "r:2", invalid()),
                result("a.yaml", "r:3", invalid()),
                result("b.yaml", "r:1", killed()),
                result("b.yaml", "r:2", invalid()),
                result("b.yaml", "r:3", MutantFate::Survived),
            ],
        };
        assert_eq!(
            c.report(),
            "a.yaml: 3 mutants, 0 killed, 2 invalid\n\
             b.yaml: 3 mutants, 1 killed, 1 invalid\n\
             mutants no scenario noticed:\n  r:3: deleted `x`\n\
             mutate: 6 mutant runs, 3 distinct mutants: 1 killed, 1 survived, 1 invalid; kill score 50%\n\
             A surviving mutant changed the rules and no expectation noticed: it is equivalent (no packet can show the change), or a scenario or expectation is missing.\n"
        );
        assert!(c.has_survivors());
    }

    #[test]
    fn no_mutants_score_full() {
        let c = Campaign::default();
        assert_eq!(
            c.report(),
            "mutate: 0 mutant runs, 0 distinct mutants: 0 killed, 0 survived, 0 invalid; kill score 100%\n"
        );
        assert!(!c.has_survivors());
    }
}

//! What changed between two runs of one scenario (two rule sets): per flow, and for flows
//! judged by statistics, per split. Pure; `report::words::changes` says it.

use std::collections::{BTreeMap, BTreeSet};

use std::net::IpAddr;

use smol_str::SmolStr;

use super::{split_counts, stats, FlowPath, Verdict};

/// What a flow's path has that can change between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The uplinks it left on.
    Out,
    /// The uplinks its replies came back on.
    Back,
    /// The source address its first packet had on its uplink.
    Source,
    /// The source address the server saw.
    ServerSaw,
    Mark,
    Completion,
}

/// A field's value in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Uplinks(Vec<SmolStr>),
    Addr(Option<IpAddr>),
    Mark(Option<u32>),
    Completes(bool),
}

/// One field that differs: its value in the first run, and in the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: Field,
    pub before: Value,
    pub after: Value,
}

/// One flow whose path differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowChange {
    pub flow: u32,
    pub changes: Vec<FieldChange>,
}

/// A split whose counts differ beyond the two-sample bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitChange {
    pub expectation: String,
    pub before: BTreeMap<String, u64>,
    pub after: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub flows: Vec<FlowChange>,
    pub splits: Vec<SplitChange>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.splits.is_empty()
    }
}

fn flow_changes(a: &FlowPath, b: &FlowPath) -> Vec<FieldChange> {
    let fields = [
        (
            Field::Out,
            Value::Uplinks(a.out.clone()),
            Value::Uplinks(b.out.clone()),
        ),
        (
            Field::Back,
            Value::Uplinks(a.back.clone()),
            Value::Uplinks(b.back.clone()),
        ),
        (
            Field::Source,
            Value::Addr(a.first_out_source),
            Value::Addr(b.first_out_source),
        ),
        (
            Field::ServerSaw,
            Value::Addr(a.source_seen),
            Value::Addr(b.source_seen),
        ),
        (Field::Mark, Value::Mark(a.mark), Value::Mark(b.mark)),
        (
            Field::Completion,
            Value::Completes(a.completed),
            Value::Completes(b.completed),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(field, before, after)| FieldChange {
            field,
            before,
            after,
        })
        .collect()
}

/// Whether two splits differ: each link's counts must both fall inside the binomial interval
/// of the pooled proportion (at false-alarm rate `alpha` overall, Bonferroni over links and
/// the two samples). An approximate two-sample test: it plugs in the pooled estimate.
pub fn splits_differ(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, alpha: f64) -> bool {
    let (na, nb): (u64, u64) = (a.values().sum(), b.values().sum());
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let tail = alpha / (2.0 * keys.len().max(1) as f64);
    keys.into_iter().any(|k| {
        let (ca, cb) = (
            a.get(k).copied().unwrap_or(0),
            b.get(k).copied().unwrap_or(0),
        );
        let p = (ca + cb) as f64 / (na + nb).max(1) as f64;
        let inside = |c: u64, n: u64| {
            let (lo, hi) = stats::interval(n, p, tail);
            (lo..=hi).contains(&c)
        };
        !inside(ca, na) || !inside(cb, nb)
    })
}

/// Compares two verdicts of one scenario.
pub fn compare(a: &Verdict, b: &Verdict) -> Changes {
    let mut out = Changes::default();
    let together = a.statistical_flows();
    let bs: BTreeMap<u32, &FlowPath> = b.flows.iter().map(|f| (f.id, f)).collect();
    for fa in a.flows.iter().filter(|f| !together.contains(&f.id)) {
        let Some(fb) = bs.get(&fa.id) else { continue };
        let changes = flow_changes(fa, fb);
        if !changes.is_empty() {
            out.flows.push(FlowChange {
                flow: fa.id,
                changes,
            });
        }
    }
    for r in a.results.iter().filter(|r| r.statistical()) {
        // A split per client counts each client's first flow: the one independent draw it
        // made (its later flows follow it), so the two-sample test compares those.
        let per_client = r.split.as_ref().is_some_and(|s| s.clients.is_some());
        let pick = |v: &Verdict| {
            let mine = v.flows.iter().filter(|f| r.flows.contains(&f.id));
            if per_client {
                split_counts(super::checks::by_client(mine).into_values().map(|fs| fs[0]))
            } else {
                split_counts(mine)
            }
        };
        let (ca, cb) = (pick(a), pick(b));
        if splits_differ(&ca, &cb, stats::FALSE_FAILURE_RATE) {
            out.splits.push(SplitChange {
                expectation: r.name.clone(),
                before: ca,
                after: cb,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn m(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[rstest]
    #[case::same_split_by_chance(&[("wan1", 497), ("wan2", 503)], &[("wan1", 512), ("wan2", 488)], false)]
    #[case::one_to_one_versus_one_to_two(&[("wan1", 500), ("wan2", 500)], &[("wan1", 333), ("wan2", 667)], true)]
    #[case::a_link_appears(&[("wan1", 1000)], &[("wan1", 900), ("wan3", 100)], true)]
    fn two_samples(#[case] a: &[(&str, u64)], #[case] b: &[(&str, u64)], #[case] differ: bool) {
        assert_eq!(splits_differ(&m(a), &m(b), 1e-6), differ);
    }
}

//! What changed between two runs of one scenario (two rule sets): per flow, and for flows
//! judged by statistics, per split. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::{links_or_dash, split_counts, stats, FlowPath, Verdict};

/// One flow whose path differs: `flow 4: out wan1 → wan2; source 10.37.1.253 → 10.37.2.253`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowChange {
    pub flow: u32,
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub flows: Vec<FlowChange>,
    /// Splits whose counts differ beyond the two-sample bound.
    pub splits: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.splits.is_empty()
    }
}

fn flow_changes(a: &FlowPath, b: &FlowPath) -> Vec<String> {
    let mut c = Vec::new();
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            c.push(format!("{name} {x} → {y}"));
        }
    };
    field(
        "out",
        links_or_dash(&a.out, ","),
        links_or_dash(&b.out, ","),
    );
    field(
        "back",
        links_or_dash(&a.back, ","),
        links_or_dash(&b.back, ","),
    );
    let show = |x: Option<String>| x.unwrap_or_else(|| "—".into());
    field(
        "source",
        show(a.first_out_source.map(|s| s.to_string())),
        show(b.first_out_source.map(|s| s.to_string())),
    );
    field(
        "server saw",
        show(a.source_seen.map(|s| s.to_string())),
        show(b.source_seen.map(|s| s.to_string())),
    );
    field(
        "mark",
        show(a.mark.map(|m| m.to_string())),
        show(b.mark.map(|m| m.to_string())),
    );
    let done = |p: &FlowPath| {
        if p.completed {
            "completes".to_string()
        } else {
            "does not complete".to_string()
        }
    };
    field("completion", done(a), done(b));
    c
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
        let pick = |v: &Verdict| split_counts(v.flows.iter().filter(|f| r.flows.contains(&f.id)));
        let (ca, cb) = (pick(a), pick(b));
        if splits_differ(&ca, &cb, stats::FALSE_FAILURE_RATE) {
            let show = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(l, c)| format!("{l} {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.splits
                .push(format!("`{}`: {} → {}", r.name, show(&ca), show(&cb)));
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

//! Acceptance intervals for a split of flows between uplinks. Pure.
//!
//! Each uplink's count of flows is binomial(n, p) when the balancer works as configured. The
//! interval [lo, hi] for it is the narrowest one, centred on the mean as far as the tails
//! allow, whose two tails together hold at most `alpha / k` of the probability (k uplinks:
//! Bonferroni), computed exactly from the binomial distribution in log space. So a correct
//! balancer fails a `split` expectation with probability at most `alpha` (the harness uses
//! [`FALSE_FAILURE_RATE`] = 1e-6).

/// The documented false-failure rate of one `split` expectation.
pub const FALSE_FAILURE_RATE: f64 = 1e-6;

/// P(X = k) for every k in 0..=n, X ~ binomial(n, p).
fn pmf(n: u64, p: f64) -> Vec<f64> {
    if p <= 0.0 || p >= 1.0 {
        let mut v = vec![0.0; n as usize + 1];
        v[if p <= 0.0 { 0 } else { n as usize }] = 1.0;
        return v;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log P(X = k), by the recurrence P(k+1)/P(k) = (n-k)/(k+1) * p/q.
    let mut logs = Vec::with_capacity(n as usize + 1);
    let mut l = n as f64 * lq;
    for k in 0..=n {
        logs.push(l);
        l += ((n - k) as f64 / (k + 1) as f64).ln() + lp - lq;
    }
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut v: Vec<f64> = logs.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = v.iter().sum();
    v.iter_mut().for_each(|x| *x /= sum);
    v
}

/// The interval of counts a binomial(n, p) count falls outside of with probability ≤ `tail`.
pub fn interval(n: u64, p: f64, tail: f64) -> (u64, u64) {
    let f = pmf(n, p);
    let (mut lo, mut hi) = (0usize, n as usize);
    let (mut low_mass, mut high_mass) = (0.0, 0.0);
    // Cut from whichever side is less likely, while the cut mass stays within the budget.
    loop {
        let cut_low = (lo < hi)
            .then(|| f[lo])
            .filter(|m| low_mass + high_mass + m <= tail);
        let cut_high = (lo < hi)
            .then(|| f[hi])
            .filter(|m| low_mass + high_mass + m <= tail);
        match (cut_low, cut_high) {
            (Some(a), Some(b)) if a <= b => {
                low_mass += a;
                lo += 1;
            }
            (_, Some(b)) => {
                high_mass += b;
                hi -= 1;
            }
            (Some(a), None) => {
                low_mass += a;
                lo += 1;
            }
            (None, None) => return (lo as u64, hi as u64),
        }
    }
}

/// Intervals for `n` flows split by `weights`, at false-failure rate `alpha` overall.
pub fn split_intervals(n: u64, weights: &[u32], alpha: f64) -> Vec<(u64, u64)> {
    let total: u32 = weights.iter().sum();
    let k = weights.iter().filter(|w| **w > 0).count().max(1) as f64;
    weights
        .iter()
        .map(|w| interval(n, f64::from(*w) / f64::from(total.max(1)), alpha / k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn the_tails_outside_the_interval_hold_at_most_the_budget() {
        for (n, p) in [(20, 0.5), (600, 1.0 / 3.0), (600, 0.5), (10_000, 0.25)] {
            let (lo, hi) = interval(n, p, 1e-6);
            let f = pmf(n, p);
            let outside: f64 =
                f[..lo as usize].iter().sum::<f64>() + f[hi as usize + 1..].iter().sum::<f64>();
            assert!(outside <= 1e-6, "n={n} p={p}: {outside}");
            // Not absurdly wide: within 6 standard deviations of the mean.
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (lo as f64) > n as f64 * p - 6.0 * sd && (hi as f64) < n as f64 * p + 6.0 * sd,
                "n={n} p={p}: [{lo}, {hi}]"
            );
        }
    }

    #[rstest]
    // 600 flows tell 1:2 from 1:1: a 1:1 balancer puts ~300 on wan1, outside 1:2's interval.
    #[case::one_to_two_rejects_one_to_one(600, &[1, 2], 0, 300, false)]
    #[case::one_to_two_accepts_its_mean(600, &[1, 2], 0, 200, true)]
    #[case::weights_swapped(600, &[1, 2], 0, 400, false)]
    #[case::twenty_flows_cannot_tell(20, &[1, 2], 0, 10, true)]
    #[case::zero_weight_means_none(100, &[1, 0], 1, 0, true)]
    #[case::zero_weight_one_flow_fails(100, &[1, 0], 1, 1, false)]
    fn decides(
        #[case] n: u64,
        #[case] w: &[u32],
        #[case] link: usize,
        #[case] count: u64,
        #[case] inside: bool,
    ) {
        let (lo, hi) = split_intervals(n, w, FALSE_FAILURE_RATE)[link];
        assert_eq!((lo..=hi).contains(&count), inside, "[{lo}, {hi}]");
    }
}

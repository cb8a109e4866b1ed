//! Tests of a paired design, where both arms are measured on the same units
//! (e.g. both genomes on the same held-out instance): the paired t-test and
//! the Wilcoxon signed-rank test, both on the per-unit differences
//! `treatment[i] - control[i]`.
//!
//! Pairing removes the between-unit variance from the comparison; testing
//! such data with Welch's unpaired test keeps it, and its p-values are too
//! large when units differ (and wrong in general, since the arms are not
//! independent).

use crate::special::{normal_cdf, normal_quantile, student_t_two_sided};
use crate::welch::{difference_interval, MeanTest, Summary};

/// Largest number of non-zero differences for which the Wilcoxon p-value is
/// exact (as `scipy.stats.wilcoxon`'s default); above it, or with ties or
/// zeros, the normal approximation is used.
pub const WILCOXON_EXACT_MAX: usize = 50;

/// The per-unit differences `treatment[i] - control[i]` (equal lengths).
pub fn differences(control: &[f64], treatment: &[f64]) -> Vec<f64> {
    debug_assert_eq!(control.len(), treatment.len());
    control.iter().zip(treatment).map(|(c, t)| t - c).collect()
}

/// The paired t-test of treatment against control on equally long arms
/// whose i-th entries belong to the same unit; `None` below 2 pairs.
///
/// `t = mean(d) / (sd(d) / sqrt(n))` with `n - 1` df. The effect size is
/// Cohen's d_z = mean(d) / sd(d), Hedges' g its small-sample correction
/// `J = 1 - 3 / (4 (n - 1) - 1)`, with the normal-approximation interval
/// `g ± z sqrt(1/n + g² / (2n))`. Zero variance of the differences makes the
/// test degenerate as in [`crate::welch::welch`]: `t = 0, p = 1` for a zero
/// mean, `t = ±∞, p = 0` otherwise.
pub fn paired_t(control: &[f64], treatment: &[f64], alpha: f64) -> Option<MeanTest> {
    if control.len() != treatment.len() || control.len() < 2 {
        return None;
    }
    let d = Summary::of(&differences(control, treatment));
    let n = d.n as f64;
    let df = n - 1.0;
    let se = (d.variance / n).sqrt();
    let degenerate = |mean: f64| {
        if mean == 0.0 {
            0.0
        } else {
            mean.signum() * f64::INFINITY
        }
    };
    let (t, cohen_d) = if se > 0.0 {
        (d.mean / se, d.mean / d.stddev())
    } else {
        (degenerate(d.mean), degenerate(d.mean))
    };
    let g = cohen_d * (1.0 - 3.0 / (4.0 * df - 1.0));
    let se_g = (1.0 / n + g * g / (2.0 * n)).sqrt();
    let z = normal_quantile(1.0 - alpha / 2.0);
    let (difference_ci_low, difference_ci_high) = difference_interval(d.mean, se, df, alpha);
    Some(MeanTest {
        control: Summary::of(control),
        treatment: Summary::of(treatment),
        t,
        df,
        p_value: student_t_two_sided(t, df),
        cohen_d,
        hedges_g: g,
        g_ci_low: g - z * se_g,
        g_ci_high: g + z * se_g,
        difference: d.mean,
        difference_ci_low,
        difference_ci_high,
    })
}

/// The Wilcoxon signed-rank test of the differences against a zero median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// Non-zero differences ranked (zeros are dropped, Wilcoxon's own rule).
    pub n: usize,
    /// `W+`: the sum of the ranks of |d| over the positive differences
    /// (treatment above control); ties share their average rank.
    pub w_plus: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` comes from the exact null distribution (no ties,
    /// at most [`WILCOXON_EXACT_MAX`] differences) rather than the normal
    /// approximation with the tie correction.
    pub exact: bool,
}

/// The signed-rank test of `differences` (any length; p = 1 without a
/// non-zero difference). Matches `scipy.stats.wilcoxon(d, correction=False)`:
/// `method="exact"` where [`Wilcoxon::exact`], `method="asymptotic"` otherwise.
pub fn wilcoxon(differences: &[f64]) -> Wilcoxon {
    let mut nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = nonzero.len();
    if n == 0 {
        return Wilcoxon {
            n,
            w_plus: 0.0,
            p_value: 1.0,
            exact: false,
        };
    }
    // Average ranks over runs of equal |d|, and the tie correction sum(t³ - t).
    let (mut w_plus, mut ties, mut tied) = (0.0, 0.0, false);
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        let run = (end - start) as f64;
        let rank = (start + end + 1) as f64 / 2.0;
        w_plus += rank * nonzero[start..end].iter().filter(|&&d| d > 0.0).count() as f64;
        ties += run * run * run - run;
        tied |= run > 1.0;
        start = end;
    }
    let exact = !tied && n <= WILCOXON_EXACT_MAX;
    let p_value = if exact {
        exact_two_sided(n, w_plus as usize)
    } else {
        let nf = n as f64;
        let mean = nf * (nf + 1.0) / 4.0;
        let sd = ((nf * (nf + 1.0) * (2.0 * nf + 1.0) - ties / 2.0) / 24.0).sqrt();
        if sd > 0.0 {
            let z = (w_plus - mean) / sd;
            (2.0 * normal_cdf(-z.abs())).min(1.0)
        } else {
            1.0
        }
    };
    Wilcoxon {
        n,
        w_plus,
        p_value,
        exact,
    }
}

/// `2 min(P(W+ <= w), P(W+ >= w))`, at most 1, under the null distribution
/// of `W+` for `n` untied ranks: the number of subsets of {1..n} with each
/// sum, counted by dynamic programming, over `2^n`.
fn exact_two_sided(n: usize, w: usize) -> f64 {
    let max = n * (n + 1) / 2;
    let mut ways = vec![0.0f64; max + 1];
    ways[0] = 1.0;
    for rank in 1..=n {
        for sum in (rank..=max).rev() {
            ways[sum] += ways[sum - rank];
        }
    }
    let total = 2f64.powi(n as i32);
    let below: f64 = ways[..=w].iter().sum();
    let above: f64 = ways[w..].iter().sum();
    (2.0 * below.min(above) / total).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_t_matches_a_hand_computation() {
        // Differences 1, 2, 3, 4: mean 2.5, variance 5/3, t = 2.5 / sqrt(5/12).
        let c = [10.0, 20.0, 30.0, 40.0];
        let t = [11.0, 22.0, 33.0, 44.0];
        let p = paired_t(&c, &t, 0.05).unwrap();
        assert!((p.t - 2.5 / (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!((p.df, p.difference), (3.0, 2.5));
        assert!((p.cohen_d - 2.5 / (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(
            p.difference_ci_low > 0.0 && p.difference_ci_low < 2.5 && 2.5 < p.difference_ci_high
        );
        assert_eq!(p.control.mean, 25.0);
        // Unpaired, the unit-to-unit spread hides the same shift.
        let w = crate::welch::welch(&c, &t, 0.05).unwrap();
        assert!(p.p_value < 0.05 && w.p_value > 0.5);
    }

    #[test]
    fn paired_t_needs_two_equal_length_arms() {
        assert!(paired_t(&[1.0], &[2.0], 0.05).is_none());
        assert!(paired_t(&[1.0, 2.0], &[2.0], 0.05).is_none());
        let shifted = paired_t(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0], 0.05).unwrap();
        assert_eq!((shifted.t, shifted.p_value), (f64::INFINITY, 0.0));
        let same = paired_t(&[1.0, 2.0], &[1.0, 2.0], 0.05).unwrap();
        assert_eq!((same.t, same.p_value), (0.0, 1.0));
    }

    #[test]
    fn wilcoxon_exact_small_cases() {
        // All 5 differences positive: W+ = 15, P(W+ = 15) = 1/32, two-sided 1/16.
        let w = wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!((w.n, w.w_plus, w.exact), (5, 15.0, true));
        assert!((w.p_value - 1.0 / 16.0).abs() < 1e-15);
        // Zeros are dropped; the sign pattern -1, +2, -3 has W+ = 2.
        let w = wilcoxon(&[0.0, -1.0, 2.0, 0.0, -3.0]);
        assert_eq!((w.n, w.w_plus), (3, 2.0));
        // P(W+ <= 2) over 8 subsets of {1,2,3}: sums 0, 1, 2 → 3/8; two-sided 3/4.
        assert!((w.p_value - 0.75).abs() < 1e-15);
        assert_eq!(wilcoxon(&[0.0, 0.0]).p_value, 1.0);
    }

    #[test]
    fn wilcoxon_ties_use_the_corrected_normal_approximation() {
        let w = wilcoxon(&[1.0, -1.0, 2.0, 2.0, 3.0]);
        assert!(!w.exact);
        // Ranks: |1| twice → 1.5 each, |2| twice → 3.5 each, 3 → 5; W+ = 1.5 + 7 + 5.
        assert_eq!(w.w_plus, 13.5);
        let sd = ((5.0 * 6.0 * 11.0 - (6.0 + 6.0) / 2.0) / 24.0f64).sqrt();
        let expected = 2.0 * normal_cdf(-(13.5 - 7.5) / sd);
        assert!((w.p_value - expected).abs() < 1e-15);
    }
}

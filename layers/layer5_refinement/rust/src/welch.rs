//! Welch's two-sample t-test, effect sizes and the sample size per arm, and
//! [`MeanTest`], the result shape shared with the paired test.

use crate::special::{normal_quantile, student_t_quantile, student_t_two_sided};

/// Count, mean and unbiased variance of a sample (Welford's update).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Observations.
    pub n: usize,
    /// Sample mean (0 for an empty sample).
    pub mean: f64,
    /// Unbiased sample variance (0 below 2 observations).
    pub variance: f64,
}

impl Summary {
    /// The summary of `values`.
    pub fn of(values: &[f64]) -> Summary {
        let (mut mean, mut m2) = (0.0, 0.0);
        for (i, &x) in values.iter().enumerate() {
            let delta = x - mean;
            mean += delta / (i + 1) as f64;
            m2 += delta * (x - mean);
        }
        let n = values.len();
        let variance = if n > 1 { m2 / (n - 1) as f64 } else { 0.0 };
        Summary { n, mean, variance }
    }

    /// Sample standard deviation.
    pub fn stddev(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// A t-test of treatment against control, with effect sizes: Welch's
/// ([`welch`]) or the paired one ([`crate::paired::paired_t`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanTest {
    /// Control arm.
    pub control: Summary,
    /// Treatment arm.
    pub treatment: Summary,
    /// The t statistic of `difference`.
    pub t: f64,
    /// Degrees of freedom of `t`.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Standardized effect: Cohen's d (Welch: pooled sd; paired: d_z, the
    /// mean difference over the sd of the differences).
    pub cohen_d: f64,
    /// Hedges' g: Cohen's d times the small-sample correction `J`.
    pub hedges_g: f64,
    /// Lower end of the `1 - alpha` confidence interval of g.
    pub g_ci_low: f64,
    /// Upper end of the interval.
    pub g_ci_high: f64,
    /// Treatment minus control: difference of the means (Welch), mean of the
    /// per-unit differences (paired); equal numbers for equal data.
    pub difference: f64,
    /// Lower end of the `1 - alpha` t interval of `difference`.
    pub difference_ci_low: f64,
    /// Upper end of that interval.
    pub difference_ci_high: f64,
}

/// `difference ± t_{1-α/2, df} · se`; a zero standard error gives a point.
pub(crate) fn difference_interval(difference: f64, se: f64, df: f64, alpha: f64) -> (f64, f64) {
    if se == 0.0 {
        return (difference, difference);
    }
    let half = student_t_quantile(1.0 - alpha / 2.0, df) * se;
    (difference - half, difference + half)
}

/// Welch's test; both arms need at least 2 observations (`None` otherwise).
///
/// With zero variance in both arms the test is degenerate: equal means give
/// `t = 0, p = 1`; different means give `t = ±∞, p = 0`, and the degrees of
/// freedom fall back to `n_c + n_t - 2`. The interval of g uses the normal
/// approximation of its standard error,
/// `sqrt((n_c + n_t) / (n_c n_t) + g² / (2 (n_c + n_t)))` (Hedges & Olkin 1985).
/// The interval of the difference of means is Welch's, on the same df.
pub fn welch(control: &[f64], treatment: &[f64], alpha: f64) -> Option<MeanTest> {
    let (c, t) = (Summary::of(control), Summary::of(treatment));
    if c.n < 2 || t.n < 2 {
        return None;
    }
    let (nc, nt) = (c.n as f64, t.n as f64);
    let (vc, vt) = (c.variance / nc, t.variance / nt);
    let diff = t.mean - c.mean;
    let se2 = vc + vt;
    let (stat, df) = if se2 > 0.0 {
        let df = se2 * se2 / (vc * vc / (nc - 1.0) + vt * vt / (nt - 1.0));
        (diff / se2.sqrt(), df)
    } else {
        let stat = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        (stat, nc + nt - 2.0)
    };
    let p_value = student_t_two_sided(stat, df);
    let pooled = (((nc - 1.0) * c.variance + (nt - 1.0) * t.variance) / (nc + nt - 2.0)).sqrt();
    let cohen_d = if pooled > 0.0 {
        diff / pooled
    } else if diff == 0.0 {
        0.0
    } else {
        diff.signum() * f64::INFINITY
    };
    let correction = 1.0 - 3.0 / (4.0 * (nc + nt) - 9.0);
    let g = cohen_d * correction;
    let se_g = ((nc + nt) / (nc * nt) + g * g / (2.0 * (nc + nt))).sqrt();
    let z = normal_quantile(1.0 - alpha / 2.0);
    let (difference_ci_low, difference_ci_high) = difference_interval(diff, se2.sqrt(), df, alpha);
    Some(MeanTest {
        control: c,
        treatment: t,
        t: stat,
        df,
        p_value,
        cohen_d,
        hedges_g: g,
        g_ci_low: g - z * se_g,
        g_ci_high: g + z * se_g,
        difference: diff,
        difference_ci_low,
        difference_ci_high,
    })
}

/// Smallest per-arm sample size for a two-sided test at level `alpha` to
/// detect a standardized effect `effect` (Cohen's d) with probability `power`.
///
/// `n = 2 (z_{1-α/2} + z_{power})² / d² + z_{1-α/2}² / 4`, rounded up: the
/// normal approximation plus Guenther's (1981) correction for estimating the
/// variance, which brings it within one observation of the exact noncentral-t
/// answer for equal variances. At least 2. `None` for arguments out of range.
pub fn sample_size_per_arm(alpha: f64, power: f64, effect: f64) -> Option<u64> {
    let ok = alpha > 0.0 && alpha < 1.0 && power > 0.0 && power < 1.0;
    if !ok || !effect.is_finite() || effect == 0.0 {
        return None;
    }
    let za = normal_quantile(1.0 - alpha / 2.0);
    let zb = normal_quantile(power);
    let n = 2.0 * (za + zb).powi(2) / (effect * effect) + za * za / 4.0;
    if n > 1e12 {
        return None;
    }
    Some((n.ceil() as u64).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_mean_and_unbiased_variance() {
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.n, 8);
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.variance - 32.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn welch_matches_a_hand_computation() {
        // Means 2 and 5, variances 1 and 2.5 (n = 3 and 5):
        // se² = 1/3 + 0.5, t = 3 / sqrt(5/6), df = (5/6)² / ((1/3)²/2 + 0.25/4).
        let w = welch(&[1.0, 2.0, 3.0], &[3.0, 4.0, 5.0, 6.0, 7.0], 0.05).unwrap();
        assert!((w.t - 3.0 / (5.0f64 / 6.0).sqrt()).abs() < 1e-12);
        let df = (25.0 / 36.0) / (1.0 / 18.0 + 1.0 / 16.0);
        assert!((w.df - df).abs() < 1e-12);
        assert!(w.p_value > 0.0 && w.p_value < 0.05);
        assert!(w.hedges_g < w.cohen_d && w.g_ci_low < w.hedges_g && w.hedges_g < w.g_ci_high);
        // t_{0.975}(df) * se around the difference 3 (the Python tests check it with scipy).
        let half = crate::special::student_t_quantile(0.975, df) * (5.0f64 / 6.0).sqrt();
        assert!((w.difference_ci_high - 3.0 - half).abs() < 1e-9);
        assert!((3.0 - w.difference_ci_low - half).abs() < 1e-9);
    }

    #[test]
    fn degenerate_and_too_small_samples() {
        assert!(welch(&[1.0], &[1.0, 2.0], 0.05).is_none());
        let same = welch(&[3.0, 3.0], &[3.0, 3.0, 3.0], 0.05).unwrap();
        assert_eq!((same.t, same.p_value, same.cohen_d), (0.0, 1.0, 0.0));
        let apart = welch(&[3.0, 3.0], &[4.0, 4.0], 0.05).unwrap();
        assert_eq!((apart.t, apart.p_value), (f64::INFINITY, 0.0));
    }

    #[test]
    fn sample_size_matches_the_textbook_table() {
        // d = 0.5, alpha = 0.05, power 0.8: 64 per arm (Cohen 1988, table 2.4.1).
        assert_eq!(sample_size_per_arm(0.05, 0.8, 0.5), Some(64));
        // d = 0.8: 26; d = 0.2: 394 (the Python tests check minimality with the noncentral t).
        assert_eq!(sample_size_per_arm(0.05, 0.8, 0.8), Some(26));
        assert_eq!(sample_size_per_arm(0.05, 0.8, 0.2), Some(394));
        assert_eq!(sample_size_per_arm(0.05, 0.8, -0.5), Some(64));
        assert_eq!(sample_size_per_arm(0.0, 0.8, 0.5), None);
        assert_eq!(sample_size_per_arm(0.05, 0.8, 0.0), None);
    }
}

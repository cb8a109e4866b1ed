//! The always-valid sequential test of a paired design: a mixture sequential
//! probability ratio test (mSPRT) on the per-unit differences, which may be
//! analysed after every pair and stopped at the first crossing without
//! inflating the false-positive rate.
//!
//! Model: differences `d_i ~ N(μ, σ²)` i.i.d., H0: `μ = 0`. The alternative
//! mixes the standardized effect `δ = μ/σ` over `N(0, τ²)`, and the unknown
//! σ is integrated out with its scale-invariant (right Haar) prior `1/σ`.
//! The mixture likelihood ratio after `n` differences is then the
//! fixed-`g` Bayes factor of the one-sample t-test (Rouder et al. 2009, eq. 1,
//! with `g = τ²`):
//!
//! `Λ_n = (1 + n g)^{-1/2} · [(1 + t²/ν) / (1 + t²/((1 + n g) ν))]^{n/2}`, `ν = n - 1`,
//!
//! which in the sums `Q = Σ d²` and `S = Σ (d - d̄)²` is
//! `ln Λ_n = (n-1)/2 · ln(1 + n g) - n/2 · ln(1 + n g S/Q)`.
//!
//! Under H0, `Λ_n` (n ≥ 2) is a nonnegative martingale with mean 1 in the
//! filtration of the scale-invariant statistics (Lai 1976; Pérez-Ortiz,
//! Lardy, de Heide & Grünwald 2024, "E-statistics, group invariance and
//! anytime-valid testing"), so by Ville's inequality
//! `P(∃ n: Λ_n ≥ 1/α) ≤ α` for every σ: no plug-in variance, no asymptotics.
//! The always-valid p-value is `min(1, min_{k ≤ n} 1/Λ_k)`.

/// Incremental mSPRT over differences pushed one at a time.
#[derive(Debug, Clone)]
pub struct MixtureSprt {
    g: f64,
    n: usize,
    mean: f64,
    /// `S`, the sum of squared deviations from the running mean (Welford).
    m2: f64,
    best_log_lr: f64,
}

impl MixtureSprt {
    /// A test whose alternative mixes δ over `N(0, tau²)`; `tau > 0`, finite.
    pub fn new(tau: f64) -> MixtureSprt {
        debug_assert!(tau.is_finite() && tau > 0.0);
        MixtureSprt {
            g: tau * tau,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            best_log_lr: f64::NEG_INFINITY,
        }
    }

    /// Adds one difference; returns `ln Λ_n` (`None` below 2 differences,
    /// where the scale-invariant ratio is 1 by construction).
    pub fn push(&mut self, d: f64) -> Option<f64> {
        self.n += 1;
        let delta = d - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (d - self.mean);
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let q = self.m2 + n * self.mean * self.mean;
        // All differences zero: t = 0, so S/Q = 1 (no evidence either way).
        let spread = if q > 0.0 { (self.m2 / q).min(1.0) } else { 1.0 };
        let ng = n * self.g;
        let log_lr = 0.5 * (n - 1.0) * ng.ln_1p() - 0.5 * n * (ng * spread).ln_1p();
        self.best_log_lr = self.best_log_lr.max(log_lr);
        Some(log_lr)
    }

    /// Differences pushed so far.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Mean of the differences pushed so far.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// `min(1, min_k 1/Λ_k)` over the differences pushed so far (1 below 2).
    pub fn always_valid_p(&self) -> f64 {
        (-self.best_log_lr).exp().min(1.0)
    }
}

/// Where a sequential test stands on a series of differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialOutcome {
    /// Differences consumed: up to and including the first crossing, else all.
    pub used: usize,
    /// Whether `Λ` reached `1/alpha` (at difference `used`).
    pub crossed: bool,
    /// `ln Λ` at `used` (0 below 2 differences).
    pub log_lr: f64,
    /// The always-valid p-value at `used`.
    pub always_valid_p: f64,
    /// Mean of the first `used` differences.
    pub mean: f64,
}

/// Runs the test over `differences` in order, stopping at the first `n` with
/// `Λ_n ≥ 1/alpha`. Asking again with more differences never moves a
/// crossing already reached: the outcome is fixed at the stopping time.
pub fn first_crossing(differences: &[f64], alpha: f64, tau: f64) -> SequentialOutcome {
    let threshold = (1.0 / alpha).ln();
    let mut test = MixtureSprt::new(tau);
    let mut log_lr = 0.0;
    for &d in differences {
        if let Some(l) = test.push(d) {
            log_lr = l;
            if l >= threshold {
                break;
            }
        }
    }
    SequentialOutcome {
        used: test.count(),
        crossed: log_lr >= threshold,
        log_lr,
        always_valid_p: test.always_valid_p(),
        mean: test.mean(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// splitmix64 and Box–Muller: a seeded standard normal stream, std only.
    pub(crate) struct Normal(pub(crate) u64);

    impl Normal {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        pub(crate) fn next(&mut self) -> f64 {
            let u = 1.0 - self.uniform(); // in (0, 1]
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
        }
    }

    /// `ln Λ_n` from the t statistic, as Rouder et al. write it.
    fn rouder(d: &[f64], g: f64) -> f64 {
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let nu = n - 1.0;
        let t2 = mean * mean / (var / n);
        -0.5 * (1.0 + n * g).ln()
            + 0.5 * n * ((1.0 + t2 / nu).ln() - (1.0 + t2 / ((1.0 + n * g) * nu)).ln())
    }

    #[test]
    fn the_sums_form_equals_the_t_form() {
        let d = [0.3, -1.2, 2.5, 0.7, 1.1, -0.4, 0.9];
        let mut test = MixtureSprt::new(0.5);
        for (i, &x) in d.iter().enumerate() {
            match test.push(x) {
                None => assert_eq!(i, 0),
                Some(l) => assert!((l - rouder(&d[..=i], 0.25)).abs() < 1e-12, "n={}", i + 1),
            }
        }
    }

    #[test]
    fn degenerate_differences_give_finite_evidence() {
        // Equal non-zero differences: t = ∞, ln Λ = (n-1)/2 ln(1 + n g), finite.
        let mut test = MixtureSprt::new(1.0);
        test.push(2.0);
        let l = test.push(2.0).unwrap();
        assert!((l - 0.5 * 3f64.ln()).abs() < 1e-15);
        // All zero: ln Λ = -ln(1 + n g)/2 < 0.
        let mut zero = MixtureSprt::new(1.0);
        zero.push(0.0);
        assert!((zero.push(0.0).unwrap() + 0.5 * 3f64.ln()).abs() < 1e-15);
        assert_eq!(zero.always_valid_p(), 1.0);
    }

    #[test]
    fn a_clear_effect_crosses_early_and_the_crossing_is_final() {
        let d: Vec<f64> = (0..40)
            .map(|i| 1.0 + 0.3 * ((i * 7 % 5) as f64 - 2.0))
            .collect();
        let stop = first_crossing(&d, 0.05, 0.5);
        assert!(stop.crossed && stop.used < 10, "{stop:?}");
        assert!(stop.always_valid_p <= 0.05 && stop.mean > 0.0);
        let mut longer = d.clone();
        longer.extend([-50.0; 30]);
        assert_eq!(first_crossing(&longer, 0.05, 0.5), stop);
    }
}

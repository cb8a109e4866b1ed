//! The A/B decision rule: promote, roll back, inconclusive or veto, by the
//! experiment's declared design.
//!
//! * [`Design::Unpaired`]: independent samples, Welch's t-test;
//! * [`Design::Paired`]: both arms on the same units (observation `i` of each
//!   arm is pair `i`), the paired t-test decides, the Wilcoxon signed-rank
//!   test on the same differences is reported beside it;
//! * [`Design::PairedSequential`]: paired, decided by the always-valid mSPRT
//!   of [`crate::sequential`], which may stop at any pair.
//!
//! Fixed designs do not peek: before both arms hold `planned` observations
//! the rule answers [`Decision::Pending`] whatever the data say; at the
//! planned size it tests exactly the first `planned` observations (pairs) of
//! each arm, once, at level `alpha`, so later observations never change the
//! verdict and asking again cannot turn a null result into a significant one.
//! The sequential design looks after every pair and stops at the first
//! crossing of `1/alpha` (`planned` pairs is its cap: no crossing by then is
//! [`Decision::Inconclusive`]); its false-positive rate is at most `alpha`
//! however often it is asked, and its verdict is fixed at the stopping pair.
//!
//! Guardrails: a treatment that wins on the metric is [`Decision::Vetoed`]
//! when the mean of a guardrail metric, over the same observations the test
//! used, is worse than the control's by more than that guardrail's allowed
//! fraction.

use crate::paired::{differences, paired_t, wilcoxon, Wilcoxon};
use crate::sequential::{first_crossing, SequentialOutcome};
use crate::welch::{welch, MeanTest, Summary};

/// Which direction of the metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// How the arms were measured, declared when the experiment is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Independent samples per arm: Welch's test at the planned size.
    Unpaired = 1,
    /// Pairs on the same units: paired t (and Wilcoxon) at the planned size.
    Paired = 2,
    /// Pairs on the same units: the always-valid mSPRT after every pair.
    PairedSequential = 3,
}

/// Outcome of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The planned sample size is not reached yet (and, sequentially, no crossing).
    Pending = 1,
    /// The treatment is significantly better: keep it.
    Promote = 2,
    /// The treatment is significantly worse: restore the control.
    RollBack = 3,
    /// No significant difference at the planned size.
    Inconclusive = 4,
    /// The treatment is significantly better but a guardrail regressed beyond its limit.
    Vetoed = 5,
}

/// The rule's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionRule {
    /// How the arms were measured.
    pub design: Design,
    /// Observations (pairs) per arm: the fixed horizon, or the sequential cap.
    pub planned: usize,
    /// Significance level.
    pub alpha: f64,
    /// Which direction of the metric is better.
    pub direction: Direction,
    /// `τ` of the sequential test's mixture over the standardized effect.
    pub mixture_scale: f64,
}

/// A guardrail metric's values, aligned with the arms' observations.
#[derive(Debug, Clone, Copy)]
pub struct Guardrail<'a> {
    /// Which direction of the guardrail metric is better.
    pub direction: Direction,
    /// Largest allowed relative worsening of the treatment's mean (0.05 = 5 %).
    pub max_regression: f64,
    /// The control arm's values, one per control observation.
    pub control: &'a [f64],
    /// The treatment arm's values, one per treatment observation.
    pub treatment: &'a [f64],
}

/// A guardrail judged on the observations the test used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardrailCheck {
    /// Mean of the control's values.
    pub control_mean: f64,
    /// Mean of the treatment's values.
    pub treatment_mean: f64,
    /// Relative worsening of the treatment's mean against the control's
    /// (negative = better; ±∞ against a zero control mean).
    pub regression: f64,
    /// `regression > max_regression`.
    pub breached: bool,
}

/// The verdict and the tests it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Observations (pairs) per arm the tests used.
    pub samples_used: usize,
    /// Welch's (unpaired) or the paired t-test; `None` below 2 observations
    /// (pairs) per arm. While pending it covers all observations so far, for
    /// information.
    pub test: Option<MeanTest>,
    /// The signed-rank test of the same differences (paired designs only).
    pub wilcoxon: Option<Wilcoxon>,
    /// The mSPRT (sequential design only).
    pub sequential: Option<SequentialOutcome>,
    /// One check per guardrail, in the given order.
    pub guardrails: Vec<GuardrailCheck>,
}

/// Applies the rule to the observations recorded so far: in recording order
/// (unpaired), or pair by pair in the order the pairs completed (paired
/// designs, where both arms must be equally long).
pub fn decide(
    rule: &DecisionRule,
    control: &[f64],
    treatment: &[f64],
    guardrails: &[Guardrail],
) -> Verdict {
    let planned = rule.planned.max(2);
    let reached = control.len().min(treatment.len());
    let (mut decision, used, test, signed_rank, sequential) = match rule.design {
        Design::Unpaired if reached < planned => (
            Decision::Pending,
            reached,
            welch(control, treatment, rule.alpha),
            None,
            None,
        ),
        Design::Unpaired => {
            let test = welch(&control[..planned], &treatment[..planned], rule.alpha);
            (fixed(rule, &test), planned, test, None, None)
        }
        Design::Paired => {
            let used = reached.min(planned);
            let (c, t) = (&control[..used], &treatment[..used]);
            let test = paired_t(c, t, rule.alpha);
            let decision = if used < planned {
                Decision::Pending
            } else {
                fixed(rule, &test)
            };
            (
                decision,
                used,
                test,
                Some(wilcoxon(&differences(c, t))),
                None,
            )
        }
        Design::PairedSequential => {
            let capped = reached.min(planned);
            let d = differences(&control[..capped], &treatment[..capped]);
            let s = first_crossing(&d, rule.alpha, rule.mixture_scale);
            let decision = if s.crossed {
                by_sign(rule.direction, s.mean)
            } else if capped == planned {
                Decision::Inconclusive
            } else {
                Decision::Pending
            };
            let (c, t) = (&control[..s.used], &treatment[..s.used]);
            let test = paired_t(c, t, rule.alpha);
            (
                decision,
                s.used,
                test,
                Some(wilcoxon(&d[..s.used])),
                Some(s),
            )
        }
    };
    let pending_unpaired = rule.design == Design::Unpaired && decision == Decision::Pending;
    let checks: Vec<GuardrailCheck> = guardrails
        .iter()
        .map(|g| {
            // The same observations as the test: all so far for a pending
            // unpaired experiment, else the first `used` of each arm.
            let (c, t) = if pending_unpaired {
                (g.control, g.treatment)
            } else {
                (&g.control[..used], &g.treatment[..used])
            };
            check(g, c, t)
        })
        .collect();
    if decision == Decision::Promote && checks.iter().any(|c| c.breached) {
        decision = Decision::Vetoed;
    }
    Verdict {
        decision,
        samples_used: used,
        test,
        wilcoxon: signed_rank,
        sequential,
        guardrails: checks,
    }
}

/// The fixed-horizon verdict of a test at the planned size.
fn fixed(rule: &DecisionRule, test: &Option<MeanTest>) -> Decision {
    match test {
        Some(t) if t.p_value < rule.alpha => by_sign(rule.direction, t.difference),
        _ => Decision::Inconclusive,
    }
}

/// Promote when the treatment-minus-control difference points the better way.
fn by_sign(direction: Direction, difference: f64) -> Decision {
    if (difference > 0.0) == (direction == Direction::Maximize) {
        Decision::Promote
    } else {
        Decision::RollBack
    }
}

fn check(g: &Guardrail, control: &[f64], treatment: &[f64]) -> GuardrailCheck {
    let (c, t) = (Summary::of(control).mean, Summary::of(treatment).mean);
    let worsening = match g.direction {
        Direction::Minimize => t - c,
        Direction::Maximize => c - t,
    };
    let regression = if c != 0.0 {
        worsening / c.abs()
    } else if worsening == 0.0 {
        0.0
    } else {
        worsening.signum() * f64::INFINITY
    };
    GuardrailCheck {
        control_mean: c,
        treatment_mean: t,
        regression,
        breached: regression > g.max_regression,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::normal_quantile;

    fn arm(centre: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| centre + ((i * 7) % 5) as f64 * 0.1)
            .collect()
    }

    fn rule(design: Design, planned: usize, direction: Direction) -> DecisionRule {
        DecisionRule {
            design,
            planned,
            alpha: 0.05,
            direction,
            mixture_scale: 0.5,
        }
    }

    fn unpaired(c: &[f64], t: &[f64], planned: usize, direction: Direction) -> Verdict {
        decide(&rule(Design::Unpaired, planned, direction), c, t, &[])
    }

    #[test]
    fn nothing_is_decided_before_the_planned_size() {
        let v = unpaired(&arm(1.0, 9), &arm(5.0, 20), 10, Direction::Maximize);
        assert_eq!(v.decision, Decision::Pending);
        assert_eq!(v.samples_used, 9);
        assert!(
            v.test.unwrap().p_value < 1e-6,
            "the data are clear, the rule still waits"
        );
        let paired = rule(Design::Paired, 10, Direction::Maximize);
        let v = decide(&paired, &arm(1.0, 9), &arm(5.0, 9), &[]);
        assert_eq!((v.decision, v.samples_used), (Decision::Pending, 9));
    }

    #[test]
    fn better_worse_and_equal_arms() {
        let max = Direction::Maximize;
        for design in [Design::Unpaired, Design::Paired, Design::PairedSequential] {
            let at = |c: &[f64], t: &[f64], d| decide(&rule(design, 10, d), c, t, &[]).decision;
            assert_eq!(at(&arm(1.0, 10), &arm(2.0, 10), max), Decision::Promote);
            assert_eq!(at(&arm(2.0, 10), &arm(1.0, 10), max), Decision::RollBack);
            let min = Direction::Minimize;
            assert_eq!(at(&arm(2.0, 10), &arm(1.0, 10), min), Decision::Promote);
            let mut noisy = arm(1.0, 10);
            noisy.reverse();
            assert_eq!(
                at(&arm(1.0, 10), &noisy, max),
                Decision::Inconclusive,
                "{design:?}"
            );
        }
    }

    #[test]
    fn later_observations_do_not_change_the_verdict() {
        let control = arm(1.0, 10);
        let mut treatment = arm(1.0, 10);
        treatment.extend(std::iter::repeat(50.0).take(100));
        let v = unpaired(&control, &treatment, 10, Direction::Maximize);
        assert_eq!((v.decision, v.samples_used), (Decision::Inconclusive, 10));
        let mut control = arm(1.0, 110);
        control[10..].iter_mut().for_each(|x| *x = 0.0);
        let paired = rule(Design::Paired, 10, Direction::Maximize);
        let v = decide(&paired, &control, &treatment, &[]);
        assert_eq!((v.decision, v.samples_used), (Decision::Inconclusive, 10));
    }

    #[test]
    fn pairing_finds_a_shift_that_unit_spread_hides_from_welch() {
        // Units spread over 0..90, the treatment adds 1 ± 0.2 to each.
        let control: Vec<f64> = (0..20).map(|i| (i * 37 % 10) as f64 * 10.0).collect();
        let treatment: Vec<f64> = control
            .iter()
            .enumerate()
            .map(|(i, c)| c + 1.0 + 0.1 * ((i % 5) as f64 - 2.0))
            .collect();
        let max = Direction::Maximize;
        let welch = unpaired(&control, &treatment, 20, max);
        let v = decide(&rule(Design::Paired, 20, max), &control, &treatment, &[]);
        assert_eq!(welch.decision, Decision::Inconclusive);
        assert_eq!(v.decision, Decision::Promote);
        let test = v.test.unwrap();
        assert!((test.difference - 1.0).abs() < 1e-12);
        assert!(test.difference_ci_low > 0.8 && test.difference_ci_high < 1.2);
        let w = v.wilcoxon.unwrap();
        assert!(w.n == 20 && w.w_plus == 210.0 && !w.exact && w.p_value < 1e-3);
    }

    #[test]
    fn a_breached_guardrail_vetoes_a_winning_treatment() {
        let (control, treatment) = (arm(1.0, 10), arm(2.0, 10));
        let fuel_c = vec![100.0; 10];
        fn guard<'a>(fuel_c: &'a [f64], fuel_t: &'a [f64]) -> Guardrail<'a> {
            Guardrail {
                direction: Direction::Minimize,
                max_regression: 0.05,
                control: fuel_c,
                treatment: fuel_t,
            }
        }
        let paired = rule(Design::Paired, 10, Direction::Maximize);
        let v = decide(
            &paired,
            &control,
            &treatment,
            &[guard(&fuel_c, &[106.0; 10])],
        );
        assert_eq!(v.decision, Decision::Vetoed);
        let g = v.guardrails[0];
        assert!((g.regression - 0.06).abs() < 1e-12 && g.breached);
        let v = decide(
            &paired,
            &control,
            &treatment,
            &[guard(&fuel_c, &[104.0; 10])],
        );
        assert_eq!(v.decision, Decision::Promote);
        assert!(!v.guardrails[0].breached);
        // A losing treatment is rolled back whatever its guardrails say.
        let v = decide(
            &paired,
            &treatment,
            &control,
            &[guard(&fuel_c, &[200.0; 10])],
        );
        assert_eq!(v.decision, Decision::RollBack);
    }

    /// Asked after every pair, the sequential rule stays pending until the
    /// mSPRT first crosses, then keeps that verdict, on the stopping pair.
    #[test]
    fn sequential_verdicts_asked_after_every_pair_are_final_at_the_crossing() {
        let mut rng = crate::sequential::tests::Normal(7);
        let cap = 80;
        let sequential = rule(Design::PairedSequential, cap, Direction::Maximize);
        let mut stops = 0;
        for experiment in 0..20 {
            let effect = if experiment % 2 == 0 { 0.0 } else { 0.6 };
            let (mut control, mut treatment) = (Vec::new(), Vec::new());
            let mut first: Option<(Decision, usize)> = None;
            for n in 1..=cap + 10 {
                let unit = 10.0 * rng.next();
                control.push(unit + rng.next());
                treatment.push(unit + effect + rng.next());
                let v = decide(&sequential, &control, &treatment, &[]);
                match first {
                    None if v.decision != Decision::Pending => {
                        let s = v.sequential.unwrap();
                        assert_eq!(s.crossed, v.decision != Decision::Inconclusive);
                        assert!(v.samples_used == n.min(cap));
                        first = Some((v.decision, v.samples_used));
                    }
                    None => assert!(n < cap && v.samples_used == n),
                    Some(f) => assert_eq!((v.decision, v.samples_used), f),
                }
            }
            stops += usize::from(matches!(first, Some((Decision::Promote, _))));
        }
        assert!(
            stops >= 5,
            "a 0.6 sd effect is found in most of 10 runs ({stops})"
        );
    }

    /// Wilson's 99 % score interval of a binomial proportion.
    fn wilson_99(hits: usize, n: usize) -> (f64, f64) {
        let z = normal_quantile(0.995);
        let (p, n) = (hits as f64 / n as f64, n as f64);
        let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        (centre - half, centre + half)
    }

    /// A/A experiments (both arms from one distribution around a per-unit
    /// level the pair shares), analysed after every pair. The mSPRT's
    /// false-positive rate stays below alpha (the upper end of its 99 %
    /// interval); the paired t-test asked after every pair, stopping at the
    /// first p < alpha, exceeds alpha (the lower end of its interval), so
    /// the simulation tells a valid rule from an invalid one. Both use the
    /// incremental statistics (the test above shows `decide` stops exactly
    /// where the incremental mSPRT crosses), which keeps 400,000 looks fast.
    #[test]
    fn peeking_after_every_pair_a_a_false_positive_rates() {
        use crate::sequential::MixtureSprt;
        use crate::special::student_t_two_sided;
        const EXPERIMENTS: usize = 2_000;
        const PAIRS: usize = 200;
        let alpha: f64 = 0.05;
        let threshold = (1.0 / alpha).ln();
        let mut rng = crate::sequential::tests::Normal(20_261_201);
        let (mut sequential_hits, mut peeking_hits) = (0, 0);
        for _ in 0..EXPERIMENTS {
            let mut msprt = MixtureSprt::new(0.5);
            let (mut mean, mut m2) = (0.0, 0.0);
            let (mut stopped, mut peeked) = (false, false);
            for n in 1..=PAIRS {
                let unit = 50.0 + 10.0 * rng.next();
                let d = (unit + rng.next()) - (unit + rng.next());
                if !stopped {
                    stopped = msprt.push(d).map_or(false, |l| l >= threshold);
                    sequential_hits += usize::from(stopped);
                }
                let delta = d - mean;
                mean += delta / n as f64;
                m2 += delta * (d - mean);
                if !peeked && n >= 2 {
                    let nf = n as f64;
                    let t = mean / (m2 / (nf - 1.0) / nf).sqrt();
                    peeked = student_t_two_sided(t, nf - 1.0) < alpha;
                    peeking_hits += usize::from(peeked);
                }
                if stopped && peeked {
                    break;
                }
            }
        }
        let (_, sequential_high) = wilson_99(sequential_hits, EXPERIMENTS);
        let (peeking_low, _) = wilson_99(peeking_hits, EXPERIMENTS);
        eprintln!(
            "A/A, {EXPERIMENTS} experiments x {PAIRS} pairs, a look after every pair, \
             alpha {alpha}: mSPRT {sequential_hits} false positives (99 % Wilson upper \
             {sequential_high:.4}), paired t {peeking_hits} (99 % Wilson lower {peeking_low:.4})"
        );
        assert!(
            sequential_high <= alpha,
            "mSPRT upper bound {sequential_high}"
        );
        assert!(peeking_low > alpha, "peeking t lower bound {peeking_low}");
    }
}

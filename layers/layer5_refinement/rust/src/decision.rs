//! The A/B decision rule: promote, roll back or inconclusive, at the planned
//! sample size only.
//!
//! No peeking: before both arms hold `planned_per_arm` observations the rule
//! answers [`Decision::Pending`] whatever the data say. At the planned size it
//! tests exactly the first `planned_per_arm` observations of each arm, once,
//! at level `alpha`; observations recorded later never change the verdict, so
//! asking again cannot turn a null result into a significant one. This is a
//! fixed-horizon test, so its false-positive rate is `alpha` (no alpha
//! spending is needed because there is only one look).

use crate::welch::{welch, WelchTest};

/// Which direction of the metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// Outcome of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The planned sample size is not reached yet.
    Pending = 1,
    /// The treatment is significantly better: keep it.
    Promote = 2,
    /// The treatment is significantly worse: restore the control.
    RollBack = 3,
    /// No significant difference at the planned size.
    Inconclusive = 4,
}

/// The verdict and the test it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Observations per arm the test used (the planned size once reached).
    pub samples_used: usize,
    /// The test (on all observations so far while pending, for information);
    /// `None` while an arm has fewer than 2 observations.
    pub test: Option<WelchTest>,
}

/// Applies the rule to the observations recorded so far, in recording order.
pub fn decide(
    control: &[f64],
    treatment: &[f64],
    planned_per_arm: usize,
    alpha: f64,
    direction: Direction,
) -> Verdict {
    let planned = planned_per_arm.max(2);
    if control.len() < planned || treatment.len() < planned {
        let used = control.len().min(treatment.len());
        return Verdict {
            decision: Decision::Pending,
            samples_used: used,
            test: welch(control, treatment, alpha),
        };
    }
    let test = welch(&control[..planned], &treatment[..planned], alpha);
    let decision = match test {
        Some(w) if w.p_value < alpha => {
            let treatment_higher = w.treatment.mean > w.control.mean;
            if treatment_higher == (direction == Direction::Maximize) {
                Decision::Promote
            } else {
                Decision::RollBack
            }
        }
        _ => Decision::Inconclusive,
    };
    Verdict {
        decision,
        samples_used: planned,
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(centre: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| centre + ((i * 7) % 5) as f64 * 0.1)
            .collect()
    }

    #[test]
    fn nothing_is_decided_before_the_planned_size() {
        let v = decide(&arm(1.0, 9), &arm(5.0, 20), 10, 0.05, Direction::Maximize);
        assert_eq!(v.decision, Decision::Pending);
        assert_eq!(v.samples_used, 9);
        assert!(
            v.test.unwrap().p_value < 1e-6,
            "the data are clear, the rule still waits"
        );
    }

    #[test]
    fn better_worse_and_equal_arms() {
        let max = Direction::Maximize;
        assert_eq!(
            decide(&arm(1.0, 10), &arm(2.0, 10), 10, 0.05, max).decision,
            Decision::Promote
        );
        assert_eq!(
            decide(&arm(2.0, 10), &arm(1.0, 10), 10, 0.05, max).decision,
            Decision::RollBack
        );
        let min = Direction::Minimize;
        assert_eq!(
            decide(&arm(2.0, 10), &arm(1.0, 10), 10, 0.05, min).decision,
            Decision::Promote
        );
        let same = decide(&arm(1.0, 10), &arm(1.0, 10), 10, 0.05, max);
        assert_eq!(same.decision, Decision::Inconclusive);
    }

    #[test]
    fn later_observations_do_not_change_the_verdict() {
        let control = arm(1.0, 10);
        let mut treatment = arm(1.0, 10);
        treatment.extend(std::iter::repeat(50.0).take(100));
        let v = decide(&control, &treatment, 10, 0.05, Direction::Maximize);
        assert_eq!((v.decision, v.samples_used), (Decision::Inconclusive, 10));
    }
}

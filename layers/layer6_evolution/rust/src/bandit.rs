//! UCB1 arm choice (Auer, Cesa-Bianchi and Fischer 2002).
//!
//! An arm never pulled is chosen first (the lowest such index). Otherwise the
//! arm with the highest index `mean + c sqrt(ln N / n)` wins, `N` the pulls of
//! all arms, `n` the arm's; ties go to the lowest index. A choice *explores*
//! when it is not the arm with the best mean (an untried arm always explores).

use std::fmt;

/// Statistics of one arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// Outcomes recorded.
    pub pulls: u32,
    /// Mean reward of those outcomes (finite; rewards are in [0, 1]).
    pub mean_reward: f64,
}

/// The chosen arm and the evidence for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index of the chosen arm.
    pub arm: usize,
    /// True when the choice is not the arm with the best mean.
    pub exploration: bool,
    /// UCB1 index of every arm (`+inf` for an untried arm).
    pub indices: Vec<f64>,
    /// One sentence, e.g. "UCB1 index 0.82, highest of 3 arms".
    pub reason: String,
}

/// Input the rule cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanditError {
    /// Arm index, or `None` for the request as a whole.
    pub arm: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for BanditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.arm {
            Some(a) => write!(f, "arm {a}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

fn first_max(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Chooses an arm by UCB1 with exploration constant `c` (sqrt(2) classically).
pub fn choose_arm(arms: &[Arm], c: f64) -> Result<Choice, BanditError> {
    if arms.is_empty() {
        return Err(BanditError {
            arm: None,
            reason: "there are no arms".into(),
        });
    }
    if !(c.is_finite() && c >= 0.0) {
        return Err(BanditError {
            arm: None,
            reason: format!("exploration constant {c} must be finite and >= 0"),
        });
    }
    if let Some(a) = arms.iter().position(|a| !a.mean_reward.is_finite()) {
        return Err(BanditError {
            arm: Some(a),
            reason: format!("mean reward {} is not finite", arms[a].mean_reward),
        });
    }
    let total: f64 = arms.iter().map(|a| f64::from(a.pulls)).sum();
    let indices: Vec<f64> = arms
        .iter()
        .map(|a| {
            if a.pulls == 0 {
                f64::INFINITY
            } else {
                a.mean_reward + c * (total.ln() / f64::from(a.pulls)).sqrt()
            }
        })
        .collect();
    let n = arms.len();
    if let Some(arm) = arms.iter().position(|a| a.pulls == 0) {
        return Ok(Choice {
            arm,
            exploration: true,
            indices,
            reason: format!("arm {arm} was never tried ({n} arms)"),
        });
    }
    let arm = first_max(indices.iter().copied());
    let greedy = first_max(arms.iter().map(|a| a.mean_reward));
    let reason = format!(
        "UCB1 index {:.4} (mean {:.4} over {} pulls), highest of {n} arms",
        indices[arm], arms[arm].mean_reward, arms[arm].pulls
    );
    Ok(Choice {
        arm,
        exploration: arm != greedy,
        indices,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(pulls: u32, mean_reward: f64) -> Arm {
        Arm { pulls, mean_reward }
    }

    #[test]
    fn untried_arms_come_first() {
        let c = choose_arm(&[arm(5, 0.9), arm(0, 0.0), arm(0, 0.0)], 2f64.sqrt()).unwrap();
        assert_eq!((c.arm, c.exploration), (1, true));
        assert!(c.indices[1].is_infinite());
    }

    #[test]
    fn a_rarely_pulled_arm_wins_on_its_bonus() {
        // N = 101: bonus of the 1-pull arm sqrt(2 ln 101) = 3.04 beats 0.9 + 0.30.
        let c = choose_arm(&[arm(100, 0.9), arm(1, 0.1)], 2f64.sqrt()).unwrap();
        assert_eq!((c.arm, c.exploration), (1, true));
        let greedy = choose_arm(&[arm(100, 0.9), arm(1, 0.1)], 0.0).unwrap();
        assert_eq!((greedy.arm, greedy.exploration), (0, false));
        assert!(greedy.reason.contains("highest of 2 arms"));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(choose_arm(&[], 1.0).is_err());
        assert!(choose_arm(&[arm(1, 0.5)], f64::NAN).is_err());
        assert_eq!(
            choose_arm(&[arm(1, 0.5), arm(1, f64::NAN)], 1.0)
                .unwrap_err()
                .arm,
            Some(1)
        );
    }
}

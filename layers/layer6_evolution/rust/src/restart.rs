//! Stagnation and restarts (IPOP, Auger and Hansen 2005).
//!
//! Given the best fitness of each generation so far, a generation *improves*
//! when it beats the best so far by more than `tolerance` (in the policy's
//! direction). After `patience` generations in a row without improvement the
//! run restarts with a doubled population, unless that would exceed
//! `max_population` (0 = no cap): then it stops. A non-finite best fitness in
//! the latest generation means the strategy's state broke down numerically
//! (e.g. a collapsed step size): it restarts at once.

use std::fmt;

/// When to restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// True when higher fitness is better.
    pub maximize: bool,
    /// Smallest change of the best fitness that counts as improvement (>= 0).
    pub tolerance: f64,
    /// Generations without improvement that trigger a restart (>= 1).
    pub patience: u32,
    /// Largest population a restart may use; 0 = no cap.
    pub max_population: u32,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep going with the same population.
    Continue = 0,
    /// Restart with [`Verdict::next_population`] members.
    Restart = 1,
    /// Stagnated and the population may not grow further.
    Stop = 2,
}

/// The rule's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Generations since the best last improved.
    pub stagnant_generations: u32,
    /// Best finite fitness seen (NaN when none).
    pub best: f64,
    /// Population for the next generation.
    pub next_population: u32,
    /// One sentence for logs and progress.
    pub reason: String,
}

/// A policy or population the rule cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartError {
    /// Name of the field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RestartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

fn refuse(field: &'static str, reason: String) -> RestartError {
    RestartError { field, reason }
}

/// Applies the rule to `history` (best fitness per generation, oldest first)
/// of a run with `population` members.
pub fn restart_rule(
    policy: &RestartPolicy,
    population: u32,
    history: &[f64],
) -> Result<Verdict, RestartError> {
    if !(policy.tolerance.is_finite() && policy.tolerance >= 0.0) {
        return Err(refuse(
            "tolerance",
            format!("is {}, must be finite and >= 0", policy.tolerance),
        ));
    }
    if policy.patience == 0 {
        return Err(refuse("patience", "must be at least 1".into()));
    }
    if population == 0 {
        return Err(refuse("population", "must be at least 1".into()));
    }
    let sign = if policy.maximize { 1.0 } else { -1.0 };
    let mut best = f64::NAN;
    let mut stagnant = 0u32;
    for &v in history {
        if !v.is_finite() {
            stagnant += 1;
        } else if best.is_nan() || sign * (v - best) > policy.tolerance {
            best = v;
            stagnant = 0;
        } else {
            stagnant += 1;
        }
    }
    let doubled = population.saturating_mul(2);
    let can_grow = policy.max_population == 0 || doubled <= policy.max_population;
    let broken = history.last().map_or(false, |v| !v.is_finite());
    let (decision, reason) = if !broken && stagnant < policy.patience {
        (
            Decision::Continue,
            format!(
                "{stagnant} of {} generations without improvement",
                policy.patience
            ),
        )
    } else if !can_grow {
        (
            Decision::Stop,
            format!(
                "stagnated and population {doubled} would exceed the cap {}",
                policy.max_population
            ),
        )
    } else if broken {
        (
            Decision::Restart,
            format!("non-finite best fitness: restart with population {doubled}"),
        )
    } else {
        (
            Decision::Restart,
            format!(
                "no improvement > {} for {stagnant} generations: restart with population {doubled}",
                policy.tolerance
            ),
        )
    };
    let next_population = if decision == Decision::Restart {
        doubled
    } else {
        population
    };
    Ok(Verdict {
        decision,
        stagnant_generations: stagnant,
        best,
        next_population,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: RestartPolicy = RestartPolicy {
        maximize: false,
        tolerance: 1e-3,
        patience: 3,
        max_population: 64,
    };

    #[test]
    fn improvement_below_tolerance_counts_as_stagnation() {
        let v = restart_rule(&MIN, 8, &[10.0, 5.0, 4.9995, 4.9991, 4.9992]).unwrap();
        assert_eq!(v.stagnant_generations, 3);
        assert_eq!(
            (v.decision, v.next_population, v.best),
            (Decision::Restart, 16, 5.0)
        );
        let v = restart_rule(&MIN, 8, &[10.0, 5.0, 4.0]).unwrap();
        assert_eq!((v.decision, v.next_population), (Decision::Continue, 8));
    }

    #[test]
    fn cap_stops_and_nan_restarts_at_once() {
        let v = restart_rule(&MIN, 64, &[1.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!((v.decision, v.next_population), (Decision::Stop, 64));
        let v = restart_rule(&MIN, 8, &[1.0, f64::NAN]).unwrap();
        assert_eq!((v.decision, v.next_population), (Decision::Restart, 16));
        let max = RestartPolicy {
            maximize: true,
            ..MIN
        };
        let v = restart_rule(&max, 8, &[1.0, 2.0, 1.5, 1.2]).unwrap();
        assert_eq!((v.best, v.stagnant_generations), (2.0, 2));
    }

    #[test]
    fn bad_policy_names_its_field() {
        let bad = RestartPolicy { patience: 0, ..MIN };
        assert_eq!(restart_rule(&bad, 8, &[]).unwrap_err().field, "patience");
        let bad = RestartPolicy {
            tolerance: -1.0,
            ..MIN
        };
        assert_eq!(restart_rule(&bad, 8, &[]).unwrap_err().field, "tolerance");
        assert_eq!(restart_rule(&MIN, 0, &[]).unwrap_err().field, "population");
    }
}

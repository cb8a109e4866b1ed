//! The evolution trigger: does a module's recent history call for a run?
//!
//! The reports (oldest first) are split into the *current* window (the last
//! `window`) and the *baseline* window (the `window` before it). The rules,
//! in this order, and the first that fires decides:
//!
//! 1. fewer than `window` reports: `InsufficientData`;
//! 2. share of failed runs in the current window above `max_failure_rate`: `FailureRate`;
//! 3. (baseline full) relative worsening of the current mean of successful
//!    runs against the baseline mean above `max_degradation`: `Degradation`;
//! 4. share of reports worse than the reference mean by more than
//!    `z_threshold` reference standard deviations (the reference is the
//!    baseline window when there is one, else the current window; far
//!    *better* reports do not count) above `max_anomaly_rate`: `AnomalyRate`;
//! 5. (baseline full, `plateau` on) relative improvement below
//!    `min_improvement` and Welch's test of the two windows not significant
//!    at `plateau_alpha`: `Plateau` — the metric has stopped getting better;
//! 6. otherwise `None`.

use crate::decision::Direction;
use crate::welch::{welch, Summary};

/// Why the trigger decided as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// No rule fired.
    None = 1,
    /// Too few reports.
    InsufficientData = 2,
    /// The metric worsened beyond the allowed degradation.
    Degradation = 3,
    /// Too many anomalous reports.
    AnomalyRate = 4,
    /// Too many failed runs.
    FailureRate = 5,
    /// The metric stopped improving.
    Plateau = 6,
}

/// Thresholds of the rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Better direction of the metric.
    pub direction: Direction,
    /// Reports in each window (at least 2).
    pub window: usize,
    /// Allowed relative worsening.
    pub max_degradation: f64,
    /// Allowed share of anomalous reports.
    pub max_anomaly_rate: f64,
    /// Allowed share of failed runs.
    pub max_failure_rate: f64,
    /// z-score above which a report counts as anomalous.
    pub z_threshold: f64,
    /// Whether a plateau triggers evolution.
    pub plateau: bool,
    /// Relative improvement below which the metric counts as flat.
    pub min_improvement: f64,
    /// Level of the test that must fail to find a difference for a plateau.
    pub plateau_alpha: f64,
}

/// One report as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The metric's value (ignored for failed runs).
    pub value: f64,
    /// Whether the run succeeded.
    pub success: bool,
}

/// The verdict with the numbers compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The rule that decided.
    pub trigger: Trigger,
    /// Explanation with the numbers.
    pub reason: String,
    /// Mean over the successful runs of the current window (0 when none).
    pub current_mean: f64,
    /// Mean over the successful runs of the baseline window (0 when none).
    pub baseline_mean: f64,
    /// Relative worsening of current against baseline (negative = better).
    pub degradation: f64,
    /// Share of anomalous reports in the current window.
    pub anomaly_rate: f64,
    /// Share of failed runs in the current window.
    pub failure_rate: f64,
    /// Reports in the current window.
    pub sample_count: usize,
    /// Welch p-value of current against baseline (1 when not computed).
    pub p_value: f64,
}

impl Evaluation {
    /// Whether evolution should run.
    pub fn should_evolve(&self) -> bool {
        !matches!(self.trigger, Trigger::None | Trigger::InsufficientData)
    }
}

fn successes(points: &[Point]) -> Vec<f64> {
    points
        .iter()
        .filter(|p| p.success)
        .map(|p| p.value)
        .collect()
}

/// Relative worsening of `current` against `baseline` in the metric's direction.
fn worsening(current: f64, baseline: f64, direction: Direction) -> f64 {
    let change = (current - baseline) / baseline.abs().max(f64::MIN_POSITIVE);
    match direction {
        Direction::Minimize => change,
        Direction::Maximize => -change,
    }
}

/// Applies the rule to `points`, oldest first.
pub fn evaluate(points: &[Point], rule: &Rule) -> Evaluation {
    let window = rule.window.max(2);
    let mut out = Evaluation {
        trigger: Trigger::None,
        reason: String::new(),
        current_mean: 0.0,
        baseline_mean: 0.0,
        degradation: 0.0,
        anomaly_rate: 0.0,
        failure_rate: 0.0,
        sample_count: points.len().min(window),
        p_value: 1.0,
    };
    if points.len() < window {
        out.trigger = Trigger::InsufficientData;
        out.reason = format!("{} reports, the window needs {window}", points.len());
        return out;
    }
    let current = &points[points.len() - window..];
    let baseline = (points.len() >= 2 * window)
        .then(|| &points[points.len() - 2 * window..points.len() - window]);
    let current_ok = successes(current);
    out.failure_rate = 1.0 - current_ok.len() as f64 / window as f64;
    out.current_mean = Summary::of(&current_ok).mean;
    let baseline_ok = baseline.map(successes).unwrap_or_default();
    let reference = if baseline_ok.len() >= 2 {
        &baseline_ok
    } else {
        &current_ok
    };
    let reference_stats = Summary::of(reference);
    let sd = reference_stats.stddev();
    let anomalies = if sd > 0.0 {
        // One-sided: a report far on the better side is no reason to evolve.
        current_ok
            .iter()
            .filter(|&&x| {
                let worse_by = match rule.direction {
                    Direction::Minimize => x - reference_stats.mean,
                    Direction::Maximize => reference_stats.mean - x,
                };
                worse_by / sd > rule.z_threshold
            })
            .count()
    } else {
        0
    };
    out.anomaly_rate = anomalies as f64 / window as f64;
    if out.failure_rate > rule.max_failure_rate {
        out.trigger = Trigger::FailureRate;
        out.reason = format!(
            "failure rate {:.3} over the last {window} runs exceeds {:.3}",
            out.failure_rate, rule.max_failure_rate
        );
        return out;
    }
    let comparable = baseline.is_some() && baseline_ok.len() >= 2 && current_ok.len() >= 2;
    if comparable {
        out.baseline_mean = reference_stats.mean;
        out.degradation = worsening(out.current_mean, out.baseline_mean, rule.direction);
        out.p_value = welch(&baseline_ok, &current_ok, rule.plateau_alpha)
            .map(|w| w.p_value)
            .unwrap_or(1.0);
        if out.degradation > rule.max_degradation {
            out.trigger = Trigger::Degradation;
            out.reason = format!(
                "mean {:.6} over the last {window} reports is {:.1}% worse than {:.6} before (allowed {:.1}%)",
                out.current_mean,
                100.0 * out.degradation,
                out.baseline_mean,
                100.0 * rule.max_degradation
            );
            return out;
        }
    }
    if out.anomaly_rate > rule.max_anomaly_rate {
        out.trigger = Trigger::AnomalyRate;
        out.reason = format!(
            "{anomalies} of the last {window} reports are beyond {} sd ({:.3} > {:.3})",
            rule.z_threshold, out.anomaly_rate, rule.max_anomaly_rate
        );
        return out;
    }
    let improvement = -out.degradation;
    if comparable
        && rule.plateau
        && improvement < rule.min_improvement
        && out.p_value >= rule.plateau_alpha
    {
        out.trigger = Trigger::Plateau;
        out.reason = format!(
            "plateau: mean {:.6} improved {:.2}% on {:.6} (needs {:.2}%), Welch p = {:.3} >= {}",
            out.current_mean,
            100.0 * improvement,
            out.baseline_mean,
            100.0 * rule.min_improvement,
            out.p_value,
            rule.plateau_alpha
        );
        return out;
    }
    out.reason = if comparable {
        format!(
            "mean {:.6} vs {:.6} before ({:+.2}% worse), failures {:.3}, anomalies {:.3}: within limits",
            out.current_mean,
            out.baseline_mean,
            100.0 * out.degradation,
            out.failure_rate,
            out.anomaly_rate
        )
    } else {
        format!(
            "no baseline window yet ({} reports, needs {}); failures {:.3}, anomalies {:.3}: within limits",
            points.len(),
            2 * window,
            out.failure_rate,
            out.anomaly_rate
        )
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            direction: Direction::Minimize,
            window: 20,
            max_degradation: 0.1,
            max_anomaly_rate: 0.05,
            max_failure_rate: 0.1,
            z_threshold: 3.0,
            plateau: false,
            min_improvement: 0.01,
            plateau_alpha: 0.05,
        }
    }

    fn series(centre: f64, n: usize) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                value: centre + ((i * 7) % 5) as f64 * 0.1 * centre,
                success: true,
            })
            .collect()
    }

    #[test]
    fn too_few_reports_decide_nothing() {
        let e = evaluate(&series(10.0, 19), &rule());
        assert_eq!(e.trigger, Trigger::InsufficientData);
        assert!(!e.should_evolve());
    }

    #[test]
    fn degradation_and_improvement() {
        let mut points = series(10.0, 20);
        points.extend(series(13.0, 20));
        let e = evaluate(&points, &rule());
        assert_eq!(e.trigger, Trigger::Degradation, "{}", e.reason);
        assert!((e.degradation - 0.3).abs() < 1e-9 && e.should_evolve());
        let mut better = series(10.0, 20);
        better.extend(series(8.0, 20));
        let e = evaluate(&better, &rule());
        assert_eq!(e.trigger, Trigger::None, "{}", e.reason);
        assert!(e.degradation < 0.0);
    }

    #[test]
    fn failures_and_plateaus() {
        let mut points = series(10.0, 40);
        for p in points.iter_mut().skip(30).take(3) {
            p.success = false;
        }
        assert_eq!(evaluate(&points, &rule()).trigger, Trigger::FailureRate);
        let flat = series(10.0, 40);
        assert_eq!(evaluate(&flat, &rule()).trigger, Trigger::None);
        let plateau = Rule {
            plateau: true,
            ..rule()
        };
        let e = evaluate(&flat, &plateau);
        assert_eq!(e.trigger, Trigger::Plateau, "{}", e.reason);
        assert!(e.reason.contains("plateau"));
    }

    #[test]
    fn anomalies_against_the_baseline() {
        let mut points = series(10.0, 40);
        points[35].value = 100.0;
        points[36].value = 100.0;
        let e = evaluate(
            &points,
            &Rule {
                max_degradation: 100.0,
                ..rule()
            },
        );
        assert_eq!(e.trigger, Trigger::AnomalyRate, "{}", e.reason);
        assert!((e.anomaly_rate - 0.1).abs() < 1e-12);
    }
}

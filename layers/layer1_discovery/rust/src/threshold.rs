//! Threshold rules and the alerts they raise.
//!
//! A threshold raises when an observation of its metric is strictly above
//! (`Above`) or strictly below (`Below`) its value. Thresholds on one metric
//! form escalation ladders (warning at 80, critical at 95): for each
//! observation and direction only the **most severe** crossed threshold
//! raises, so a value of 97 gives one critical alert, not a warning and a
//! critical one. Among crossed thresholds of equal severity the most extreme
//! (highest for `Above`, lowest for `Below`) wins, then the first listed.
//! Non-finite observations never raise (they cannot be compared).
//!
//! Alerts are ordered most severe first, then by observation, then by
//! threshold position, so the result is deterministic.

use std::cmp::Ordering;
use std::fmt;

/// How serious an alert is (numbers match `chimera.v1.Severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational.
    Info = 1,
    /// Degraded or approaching a limit.
    Warning = 2,
    /// A limit is broken.
    Critical = 3,
}

impl Severity {
    /// The severity for a wire code (1..=3).
    pub fn from_code(code: u8) -> Option<Severity> {
        match code {
            1 => Some(Severity::Info),
            2 => Some(Severity::Warning),
            3 => Some(Severity::Critical),
            _ => None,
        }
    }

    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Direction of a threshold (numbers match `chimera.v1.Comparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// Raise when value > threshold.
    Above = 1,
    /// Raise when value < threshold.
    Below = 2,
}

impl Comparison {
    /// The comparison for a wire code (1..=2).
    pub fn from_code(code: u8) -> Option<Comparison> {
        match code {
            1 => Some(Comparison::Above),
            2 => Some(Comparison::Below),
            _ => None,
        }
    }

    /// Whether `value` crosses `threshold` in this direction.
    pub fn crosses(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::Below => value < threshold,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Comparison::Above => "above",
            Comparison::Below => "below",
        }
    }
}

/// A rule: raise `severity` when `metric` crosses `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Metric name an observation must have to be checked.
    pub metric: String,
    /// Direction.
    pub comparison: Comparison,
    /// Value compared with.
    pub value: f64,
    /// Severity raised.
    pub severity: Severity,
}

/// One measured value to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Metric name.
    pub metric: String,
    /// Measured value.
    pub value: f64,
    /// Unit, used in the alert message (may be empty).
    pub unit: String,
}

/// A crossed threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Index of the observation that crossed.
    pub observation: usize,
    /// Index of the threshold it crossed.
    pub threshold: usize,
    /// Severity of that threshold.
    pub severity: Severity,
    /// Its direction.
    pub comparison: Comparison,
    /// e.g. `cpu.utilization 97.0 percent above 90.0`.
    pub message: String,
}

/// A threshold that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    /// Position of the bad threshold.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thresholds[{}]: {}", self.index, self.reason)
    }
}

/// Checks that every threshold has a metric name and a finite value.
pub fn check_thresholds(thresholds: &[Threshold]) -> Result<(), ThresholdError> {
    for (index, t) in thresholds.iter().enumerate() {
        if t.metric.is_empty() {
            return Err(ThresholdError {
                index,
                reason: "metric must not be empty".into(),
            });
        }
        if !t.value.is_finite() {
            return Err(ThresholdError {
                index,
                reason: format!("value {} is not finite", t.value),
            });
        }
    }
    Ok(())
}

/// Formats a number for a message: integral values keep one decimal
/// (`97.0`), others use the shortest exact representation (`0.005`).
pub fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Evaluates `thresholds` against `observations` (see the module docs).
pub fn evaluate(
    observations: &[Observation],
    thresholds: &[Threshold],
) -> Result<Vec<Alert>, ThresholdError> {
    check_thresholds(thresholds)?;
    let mut alerts = Vec::new();
    for (oi, obs) in observations.iter().enumerate() {
        if !obs.value.is_finite() {
            continue;
        }
        for direction in [Comparison::Above, Comparison::Below] {
            let best = thresholds
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.comparison == direction
                        && t.metric == obs.metric
                        && direction.crosses(obs.value, t.value)
                })
                .min_by(|(ia, a), (ib, b)| {
                    b.severity
                        .cmp(&a.severity)
                        .then_with(|| more_extreme(direction, a.value, b.value))
                        .then_with(|| ia.cmp(ib))
                });
            if let Some((ti, t)) = best {
                let unit = if obs.unit.is_empty() {
                    String::new()
                } else {
                    format!(" {}", obs.unit)
                };
                alerts.push(Alert {
                    observation: oi,
                    threshold: ti,
                    severity: t.severity,
                    comparison: direction,
                    message: format!(
                        "{} {}{} {} {} ({})",
                        obs.metric,
                        format_value(obs.value),
                        unit,
                        direction.word(),
                        format_value(t.value),
                        t.severity.name()
                    ),
                });
            }
        }
    }
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.observation.cmp(&b.observation))
            .then(a.threshold.cmp(&b.threshold))
    });
    Ok(alerts)
}

/// `Less` when `a` is the more extreme threshold in `direction`.
fn more_extreme(direction: Comparison, a: f64, b: f64) -> Ordering {
    match direction {
        Comparison::Above => b.total_cmp(&a),
        Comparison::Below => a.total_cmp(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(metric: &str, c: Comparison, value: f64, s: Severity) -> Threshold {
        Threshold {
            metric: metric.into(),
            comparison: c,
            value,
            severity: s,
        }
    }

    fn obs(metric: &str, value: f64) -> Observation {
        Observation {
            metric: metric.into(),
            value,
            unit: "percent".into(),
        }
    }

    fn ladder() -> Vec<Threshold> {
        vec![
            t("cpu", Comparison::Above, 80.0, Severity::Warning),
            t("cpu", Comparison::Above, 95.0, Severity::Critical),
            t("cpu", Comparison::Above, 50.0, Severity::Info),
            t("mem.free", Comparison::Below, 10.0, Severity::Warning),
            t("mem.free", Comparison::Below, 5.0, Severity::Critical),
        ]
    }

    #[test]
    fn only_the_most_severe_rung_of_a_ladder_raises() {
        let alerts = evaluate(&[obs("cpu", 97.0)], &ladder()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert_eq!(alerts[0].threshold, 1);
        assert_eq!(alerts[0].message, "cpu 97.0 percent above 95.0 (critical)");
        let alerts = evaluate(&[obs("cpu", 85.0)], &ladder()).unwrap();
        assert_eq!(alerts[0].severity, Severity::Warning);
        let alerts = evaluate(&[obs("cpu", 60.5)], &ladder()).unwrap();
        assert_eq!(alerts[0].severity, Severity::Info);
    }

    #[test]
    fn comparisons_are_strict_and_directional() {
        assert!(evaluate(&[obs("cpu", 50.0)], &ladder()).unwrap().is_empty());
        assert!(evaluate(&[obs("mem.free", 10.0)], &ladder())
            .unwrap()
            .is_empty());
        let alerts = evaluate(&[obs("mem.free", 3.0)], &ladder()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].comparison, Comparison::Below);
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert!(alerts[0].message.contains("below 5.0"));
    }

    #[test]
    fn alerts_sorted_most_severe_first_and_other_metrics_ignored() {
        let o = [
            obs("cpu", 85.0),
            obs("disk", 99.0),
            obs("mem.free", 1.0),
            obs("cpu", f64::NAN),
        ];
        let alerts = evaluate(&o, &ladder()).unwrap();
        let got: Vec<(usize, Severity)> =
            alerts.iter().map(|a| (a.observation, a.severity)).collect();
        assert_eq!(got, vec![(2, Severity::Critical), (0, Severity::Warning)]);
    }

    #[test]
    fn equal_severity_prefers_the_most_extreme_threshold() {
        let th = vec![
            t("x", Comparison::Above, 10.0, Severity::Warning),
            t("x", Comparison::Above, 20.0, Severity::Warning),
        ];
        let alerts = evaluate(&[obs("x", 25.0)], &th).unwrap();
        assert_eq!(alerts[0].threshold, 1);
    }

    #[test]
    fn bad_thresholds_are_rejected_with_their_index() {
        let th = vec![
            t("x", Comparison::Above, 1.0, Severity::Info),
            t("x", Comparison::Above, f64::INFINITY, Severity::Info),
        ];
        let e = evaluate(&[], &th).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("thresholds[1]"));
        let e = check_thresholds(&[t("", Comparison::Below, 0.0, Severity::Info)]).unwrap_err();
        assert!(e.reason.contains("metric"));
    }

    #[test]
    fn values_format_readably() {
        assert_eq!(format_value(97.0), "97.0");
        assert_eq!(format_value(0.005), "0.005");
        assert_eq!(format_value(-3.25), "-3.25");
        assert_eq!(Severity::from_code(3), Some(Severity::Critical));
        assert_eq!(Severity::from_code(0), None);
        assert_eq!(Comparison::from_code(2), Some(Comparison::Below));
        assert_eq!(Comparison::from_code(9), None);
    }
}

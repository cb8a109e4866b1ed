//! The design's default fitness of an agent genome from its KPI figures:
//!
//! ```text
//! 0.4 accuracy + 0.3 / (1 + latency_ms / 100)
//!   + 0.2 min(throughput_per_second / 1000, 1) + 0.1 (1 - error_rate)
//! ```
//!
//! Every term lies in [0, weight], so the fitness lies in [0, 1]; 1 is a
//! perfectly accurate, error-free agent with zero latency and at least 1000
//! items per second.

use std::fmt;

/// KPI figures of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpiInputs {
    /// Share of correct results, in [0, 1].
    pub accuracy: f64,
    /// Latency in milliseconds, >= 0.
    pub latency_ms: f64,
    /// Completed work items per second, >= 0.
    pub throughput_per_second: f64,
    /// Share of failed runs, in [0, 1].
    pub error_rate: f64,
}

/// A KPI figure outside its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitnessError {
    /// Name of the field (as in `chimera.v1.FitnessInputs`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for FitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

fn check(field: &'static str, v: f64, max: Option<f64>) -> Result<(), FitnessError> {
    let ok = v.is_finite() && v >= 0.0 && max.map_or(true, |m| v <= m);
    if ok {
        return Ok(());
    }
    let reason = match max {
        Some(m) => format!("is {v}, must be finite and in [0, {m}]"),
        None => format!("is {v}, must be finite and >= 0"),
    };
    Err(FitnessError { field, reason })
}

/// The default fitness, after checking every figure's domain.
pub fn fitness(k: &KpiInputs) -> Result<f64, FitnessError> {
    check("accuracy", k.accuracy, Some(1.0))?;
    check("latency_ms", k.latency_ms, None)?;
    check("throughput_per_second", k.throughput_per_second, None)?;
    check("error_rate", k.error_rate, Some(1.0))?;
    Ok(0.4 * k.accuracy
        + 0.3 / (1.0 + k.latency_ms / 100.0)
        + 0.2 * (k.throughput_per_second / 1000.0).min(1.0)
        + 0.1 * (1.0 - k.error_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(accuracy: f64, latency_ms: f64, throughput: f64, error_rate: f64) -> KpiInputs {
        KpiInputs {
            accuracy,
            latency_ms,
            throughput_per_second: throughput,
            error_rate,
        }
    }

    #[test]
    fn ideal_agent_scores_one_and_worst_scores_near_zero() {
        assert!((fitness(&k(1.0, 0.0, 5000.0, 0.0)).unwrap() - 1.0).abs() < 1e-15);
        let worst = fitness(&k(0.0, 1e12, 0.0, 1.0)).unwrap();
        assert!(worst > 0.0 && worst < 1e-10);
    }

    #[test]
    fn latency_of_100_ms_halves_the_latency_term() {
        let base = fitness(&k(0.0, 0.0, 0.0, 1.0)).unwrap();
        let slow = fitness(&k(0.0, 100.0, 0.0, 1.0)).unwrap();
        assert!((base - 0.3).abs() < 1e-15 && (slow - 0.15).abs() < 1e-15);
    }

    #[test]
    fn out_of_domain_figures_name_their_field() {
        let e = fitness(&k(1.5, 0.0, 0.0, 0.0)).unwrap_err();
        assert_eq!(e.field, "accuracy");
        assert_eq!(
            fitness(&k(0.5, f64::NAN, 0.0, 0.0)).unwrap_err().field,
            "latency_ms"
        );
        assert_eq!(
            fitness(&k(0.5, 1.0, -1.0, 0.0)).unwrap_err().field,
            "throughput_per_second"
        );
        assert_eq!(
            fitness(&k(0.5, 1.0, 1.0, f64::INFINITY)).unwrap_err().field,
            "error_rate"
        );
    }
}

//! Risk scoring: `score = probability x impact`, with the probability in
//! `[0, 1]` and the impact a whole number from 1 (negligible) to 5 (severe),
//! so scores lie in `[0, 5]`. Levels use the validation layer's bands:
//! low `< 1`, medium `< 2.5`, high `< 4`, critical `>= 4`.

use std::fmt;

/// Risk level (numbers match `chimera.v1.RiskLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskLevel {
    /// score < 1.
    Low = 1,
    /// 1 <= score < 2.5.
    Medium = 2,
    /// 2.5 <= score < 4.
    High = 3,
    /// score >= 4.
    Critical = 4,
}

/// A probability or impact out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskError {
    /// Position of the bad risk.
    pub index: usize,
    /// Which value is wrong and why.
    pub reason: String,
}

impl fmt::Display for RiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "risks[{}]: {}", self.index, self.reason)
    }
}

/// `probability x impact`, or why the inputs are invalid.
pub fn score(probability: f64, impact: u32) -> Result<f64, String> {
    if !(probability.is_finite() && (0.0..=1.0).contains(&probability)) {
        return Err(format!("probability {probability} is outside [0, 1]"));
    }
    if !(1..=5).contains(&impact) {
        return Err(format!("impact {impact} is outside 1..5"));
    }
    Ok(probability * f64::from(impact))
}

/// The level band of a score.
pub fn level(score: f64) -> RiskLevel {
    if score >= 4.0 {
        RiskLevel::Critical
    } else if score >= 2.5 {
        RiskLevel::High
    } else if score >= 1.0 {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

/// Scores `(probability, impact)` pairs and orders them highest score first
/// (ties: input order). Returns `(index, score, level)` per risk.
pub fn rank(risks: &[(f64, u32)]) -> Result<Vec<(usize, f64, RiskLevel)>, RiskError> {
    let mut out = Vec::with_capacity(risks.len());
    for (index, &(p, impact)) in risks.iter().enumerate() {
        let s = score(p, impact).map_err(|reason| RiskError { index, reason })?;
        out.push((index, s, level(s)));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_probability_times_impact() {
        assert_eq!(score(0.5, 4), Ok(2.0));
        assert_eq!(score(1.0, 5), Ok(5.0));
        assert_eq!(score(0.0, 1), Ok(0.0));
    }

    #[test]
    fn out_of_range_inputs_are_rejected() {
        assert!(score(1.01, 3).unwrap_err().contains("probability"));
        assert!(score(-0.1, 3).is_err());
        assert!(score(f64::NAN, 3).is_err());
        assert!(score(0.5, 0).unwrap_err().contains("impact 0"));
        assert!(score(0.5, 6).is_err());
        let e = rank(&[(0.1, 1), (0.2, 9)]).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(e.to_string(), "risks[1]: impact 9 is outside 1..5");
    }

    #[test]
    fn levels_follow_the_bands() {
        assert_eq!(level(0.99), RiskLevel::Low);
        assert_eq!(level(1.0), RiskLevel::Medium);
        assert_eq!(level(2.5), RiskLevel::High);
        assert_eq!(level(4.0), RiskLevel::Critical);
    }

    #[test]
    fn rank_orders_by_score_then_input() {
        let ranked = rank(&[(0.2, 1), (0.5, 4), (0.4, 5), (1.0, 5)]).unwrap();
        let order: Vec<usize> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(order, vec![3, 1, 2, 0]);
        assert_eq!(ranked[0].2, RiskLevel::Critical);
        assert_eq!(ranked[3].1, 0.2);
    }
}

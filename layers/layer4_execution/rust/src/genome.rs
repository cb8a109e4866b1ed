//! The genome: the kernel's heuristic weights and effort knobs.
//!
//! Params are exactly [`GENOME_LEN`] finite `f64` values (layer 7 evolves
//! them; `chimera.execution.workload.GENOME_FIELDS` names them in Python):
//!
//! | index | name         | effect |
//! |-------|--------------|--------|
//! | 0     | `w_fit`      | reward for a tight fit (machine fill after placing) |
//! | 1     | `w_hours`    | penalty per machine-hour a placement adds (relative to the longest job) |
//! | 2     | `w_fill`     | reward for placing on an already full machine |
//! | 3     | `w_priority` | reward for picking high-priority jobs first from the window |
//! | 4     | `w_size`     | reward for picking big jobs first from the window |
//! | 5     | `open_bias`  | added to the score of opening a new machine |
//! | 6     | `lookahead`  | clamped to [0, 1]; window of `1 + round(31 x)` jobs (1..=32) |
//! | 7     | `effort`     | clamped to [0, 1]; `round(24 x)` improvement passes (0..=24) |
//!
//! Indices 6 and 7 set how much work a run does, so they move both quality
//! and fuel; 0..=5 move quality at nearly constant cost.

use std::fmt;

/// Number of params the kernel accepts.
pub const GENOME_LEN: usize = 8;
/// Largest lookahead window.
pub const MAX_LOOKAHEAD: usize = 32;
/// Largest number of improvement passes.
pub const MAX_PASSES: usize = 24;

/// Parameter names in index order.
pub const FIELDS: [&str; GENOME_LEN] = [
    "w_fit",
    "w_hours",
    "w_fill",
    "w_priority",
    "w_size",
    "open_bias",
    "lookahead",
    "effort",
];

/// A fixed reference genome that packs well on generated instances (a
/// hand-picked fixture, not a loop result): duration-aware, big jobs first,
/// opens machines readily, full effort.
pub const GOOD_GENOME: [f64; GENOME_LEN] = [-0.3, 1.4, -1.6, 0.0, 4.4, 4.0, 0.6, 1.0];
/// A genome that packs badly: worst fit, mixes long and short jobs, no
/// lookahead and no improvement passes.
pub const BAD_GENOME: [f64; GENOME_LEN] = [-2.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];

/// Decoded genome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Genome {
    /// Reward for machine fill after placement.
    pub w_fit: f64,
    /// Penalty for added machine-hours.
    pub w_hours: f64,
    /// Reward for machine fill before placement.
    pub w_fill: f64,
    /// Reward for job priority in window selection.
    pub w_priority: f64,
    /// Reward for job size in window selection.
    pub w_size: f64,
    /// Bias on opening a new machine.
    pub open_bias: f64,
    /// Window size, 1..=MAX_LOOKAHEAD.
    pub lookahead: usize,
    /// Improvement passes, 0..=MAX_PASSES.
    pub passes: usize,
}

/// Why params were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenomeError(pub String);

impl fmt::Display for GenomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenomeError {}

fn fraction(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

impl Genome {
    /// Decodes params, requiring exactly [`GENOME_LEN`] finite values.
    pub fn from_params(p: &[f64]) -> Result<Genome, GenomeError> {
        if p.len() != GENOME_LEN {
            return Err(GenomeError(format!(
                "params: expected {GENOME_LEN} values ({}), got {}",
                FIELDS.join(", "),
                p.len()
            )));
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(GenomeError(format!(
                "params[{i}] ({}) must be finite, got {}",
                FIELDS[i], p[i]
            )));
        }
        Ok(Genome {
            w_fit: p[0],
            w_hours: p[1],
            w_fill: p[2],
            w_priority: p[3],
            w_size: p[4],
            open_bias: p[5],
            lookahead: 1 + (fraction(p[6]) * (MAX_LOOKAHEAD - 1) as f64).round() as usize,
            passes: (fraction(p[7]) * MAX_PASSES as f64).round() as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_clamps() {
        let g = Genome::from_params(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(g.lookahead, MAX_LOOKAHEAD);
        assert_eq!(g.passes, MAX_PASSES);
        let g = Genome::from_params(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -5.0, 0.5]).unwrap();
        assert_eq!(g.lookahead, 1);
        assert_eq!(g.passes, 12);
    }

    #[test]
    fn rejects_bad_params() {
        assert!(Genome::from_params(&[1.0; 7])
            .unwrap_err()
            .0
            .contains("expected 8"));
        let mut p = GOOD_GENOME;
        p[3] = f64::NAN;
        assert!(Genome::from_params(&p)
            .unwrap_err()
            .0
            .contains("w_priority"));
    }
}

//! The genome: the parameters of the priority function.
//!
//! Params are [`SEARCH_LEN`] or [`GENOME_LEN`] finite `f64` values of
//! magnitude at most [`MAX_ABS_PARAM`] (`chimera.binpacking.genome.FIELDS`
//! names them in Python): the first [`SEARCH_LEN`] are what a search varies,
//! and the last, `first_fit`, is 0 when left out, so the priority depends on
//! (item, room) alone. First Fit is its only use: a baseline. For an item of size `s` and a bin with remaining capacity `r >= s`,
//! with capacity `C`, the residual fraction after placing is `u = (r - s) / C`
//! and the item fraction `x = s / C`:
//!
//! ```text
//! priority(s, r, i) = - best_fit * u
//!                     + residual(u)            (piecewise linear, RESIDUAL_KNOTS knots)
//!                     + x * item_residual(u)   (piecewise linear, ITEM_RESIDUAL_KNOTS knots)
//!                     - first_fit * i / n      (i: the bin's opening index, n: items)
//! ```
//!
//! The new-bin option is scored as a bin with `r = C` and `i` = the number of
//! open bins, plus `new_bin`. Knot `k` of `K` sits at `u = (k / (K - 1))^2`:
//! dense near 0, where a nearly full bin's leftover decides whether it is ever
//! used again.
//!
//! | index | name | effect |
//! |-------|------|--------|
//! | 0 | `best_fit` | preference for a tight fit (small residual) |
//! | 1 | `new_bin` | added to the new-bin option's priority |
//! | 2..14 | `residual_0..residual_11` | the residual curve's values at its knots |
//! | 14..20 | `item_residual_0..item_residual_5` | the item-scaled residual curve's values |
//! | 20 | `first_fit` | preference for bins opened earlier (optional, default 0) |
//!
//! First Fit is `first_fit = 1`, everything else 0; Best Fit is
//! `best_fit = 1`, everything else 0 (see [`crate::pack`] for why both are exact).

/// Knots of the residual curve.
pub const RESIDUAL_KNOTS: usize = 12;
/// Knots of the item-scaled residual curve.
pub const ITEM_RESIDUAL_KNOTS: usize = 6;
/// Params a search varies (every field but `first_fit`).
pub const SEARCH_LEN: usize = 2 + RESIDUAL_KNOTS + ITEM_RESIDUAL_KNOTS;
/// Params with `first_fit`.
pub const GENOME_LEN: usize = SEARCH_LEN + 1;
/// Largest accepted parameter magnitude (keeps every priority finite).
pub const MAX_ABS_PARAM: f64 = 1.0e6;

/// First Fit: the earliest opened bin with room.
pub const FIRST_FIT: [f64; GENOME_LEN] = {
    let mut g = [0.0; GENOME_LEN];
    g[SEARCH_LEN] = 1.0;
    g
};
/// Best Fit: the bin left with the least room (earliest among equals).
pub const BEST_FIT: [f64; GENOME_LEN] = {
    let mut g = [0.0; GENOME_LEN];
    g[0] = 1.0;
    g
};

/// Parameter names in index order.
pub fn field_name(index: usize) -> String {
    match index {
        0 => "best_fit".to_string(),
        1 => "new_bin".to_string(),
        i if i < 2 + RESIDUAL_KNOTS => format!("residual_{}", i - 2),
        i if i < SEARCH_LEN => format!("item_residual_{}", i - 2 - RESIDUAL_KNOTS),
        _ => "first_fit".to_string(),
    }
}

/// Decoded genome.
#[derive(Debug, Clone, PartialEq)]
pub struct Genome {
    /// Weight of the opening-order term.
    pub first_fit: f64,
    /// Weight of the tight-fit term.
    pub best_fit: f64,
    /// Bias of the new-bin option.
    pub new_bin: f64,
    /// Residual curve values at its knots.
    pub residual: [f64; RESIDUAL_KNOTS],
    /// Item-scaled residual curve values at its knots.
    pub item_residual: [f64; ITEM_RESIDUAL_KNOTS],
}

impl Genome {
    /// Decodes and validates params; the error names the offending field.
    pub fn from_params(params: &[f64]) -> Result<Self, String> {
        if params.len() != SEARCH_LEN && params.len() != GENOME_LEN {
            return Err(format!(
                "params: expected {SEARCH_LEN} or {GENOME_LEN} values, got {}",
                params.len()
            ));
        }
        for (i, &p) in params.iter().enumerate() {
            if !p.is_finite() || p.abs() > MAX_ABS_PARAM {
                return Err(format!(
                    "params[{i}] ({}): {p} is not a finite value within +-{MAX_ABS_PARAM}",
                    field_name(i)
                ));
            }
        }
        let mut residual = [0.0; RESIDUAL_KNOTS];
        residual.copy_from_slice(&params[2..2 + RESIDUAL_KNOTS]);
        let mut item_residual = [0.0; ITEM_RESIDUAL_KNOTS];
        item_residual.copy_from_slice(&params[2 + RESIDUAL_KNOTS..SEARCH_LEN]);
        Ok(Genome {
            first_fit: params.get(SEARCH_LEN).copied().unwrap_or(0.0),
            best_fit: params[0],
            new_bin: params[1],
            residual,
            item_residual,
        })
    }

    /// The order-independent part of the priority, for an item of `size`
    /// into a bin with `remaining >= size` room, capacity `capacity`.
    ///
    /// The operations and their order are part of the contract: the JAX twin
    /// builds its table with exactly these float64 steps (no fused
    /// multiply-add), so both pick the same bins.
    pub fn priority(&self, size: u32, remaining: u32, capacity: u32) -> f64 {
        let c = capacity as f64;
        let u = (remaining - size) as f64 / c;
        let x = size as f64 / c;
        let mut p = -self.best_fit * u;
        p += piecewise_linear(&self.residual, u);
        p += x * piecewise_linear(&self.item_residual, u);
        p
    }
}

/// Knot `k` of a curve with `n` knots: `(k / (n - 1))^2`.
pub fn knot(k: usize, n: usize) -> f64 {
    let t = k as f64 / (n - 1) as f64;
    t * t
}

/// The piecewise-linear curve through `values` at [`knot`]s, at `u` in [0, 1].
pub fn piecewise_linear(values: &[f64], u: f64) -> f64 {
    let n = values.len();
    // The segment [knot(k), knot(k + 1)] holding u; the last one holds u = 1.
    let mut k = 0;
    while k + 2 < n && knot(k + 1, n) <= u {
        k += 1;
    }
    let (lo, hi) = (knot(k, n), knot(k + 1, n));
    let t = (u - lo) / (hi - lo);
    values[k] + (values[k + 1] - values[k]) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_special_cases() {
        assert_eq!((SEARCH_LEN, GENOME_LEN), (20, 21));
        assert_eq!(field_name(0), "best_fit");
        assert_eq!(field_name(2), "residual_0");
        assert_eq!(field_name(13), "residual_11");
        assert_eq!(field_name(14), "item_residual_0");
        assert_eq!(field_name(19), "item_residual_5");
        assert_eq!(field_name(20), "first_fit");
        assert_eq!(Genome::from_params(&FIRST_FIT).unwrap().first_fit, 1.0);
        assert_eq!(Genome::from_params(&BEST_FIT).unwrap().best_fit, 1.0);
        // The search genome leaves first_fit out: it is 0.
        let search = Genome::from_params(&BEST_FIT[..SEARCH_LEN]).unwrap();
        assert_eq!(search, Genome::from_params(&BEST_FIT).unwrap());
    }

    #[test]
    fn rejects_wrong_length_and_bad_values() {
        let short = Genome::from_params(&[0.0; 19]).unwrap_err();
        assert!(short.contains("expected 20 or 21"), "{short}");
        let mut g = BEST_FIT;
        g[1] = f64::INFINITY;
        assert!(Genome::from_params(&g).unwrap_err().contains("new_bin"));
        g[1] = 2.0e6;
        assert!(Genome::from_params(&g).unwrap_err().contains("params[1]"));
    }

    #[test]
    fn piecewise_linear_interpolates_between_knots() {
        let values = [0.0, 1.0, 3.0];
        // Knots 0, 0.25, 1.
        assert_eq!(piecewise_linear(&values, 0.0), 0.0);
        assert_eq!(piecewise_linear(&values, 0.125), 0.5);
        assert_eq!(piecewise_linear(&values, 0.25), 1.0);
        assert_eq!(piecewise_linear(&values, 1.0), 3.0);
        assert!((piecewise_linear(&values, 0.625) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn best_fit_priority_falls_with_the_residual() {
        let g = Genome::from_params(&BEST_FIT).unwrap();
        assert!(g.priority(30, 40, 100) > g.priority(30, 50, 100));
        assert_eq!(g.priority(30, 30, 100), 0.0);
    }
}

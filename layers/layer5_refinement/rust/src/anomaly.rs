//! Anomaly rules (z-score, EWMA) and the least-squares trend of a series.

use crate::special::student_t_two_sided;
use crate::welch::Summary;

/// Detector that flagged a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Distance from the window mean in window standard deviations.
    ZScore = 1,
    /// Distance from the EWMA in EWMA standard deviations.
    Ewma = 2,
}

/// One flagged point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    /// Index of the point in the series.
    pub index: usize,
    /// Value the detector expected (window mean or EWMA before the point).
    pub expected: f64,
    /// Distance from `expected` in standard deviations.
    pub score: f64,
    /// Detector.
    pub method: Method,
}

/// Points the EWMA sees before it may flag one: its variance estimate needs
/// some history, or the first deviations would all look huge.
pub const EWMA_WARMUP: usize = 10;

/// Points whose distance from the window mean exceeds `threshold` window
/// standard deviations (none when the window is constant or shorter than 3).
pub fn zscore(values: &[f64], threshold: f64) -> Vec<Anomaly> {
    let s = Summary::of(values);
    let sd = s.stddev();
    if values.len() < 3 || sd <= 0.0 {
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(index, &x)| {
            let score = (x - s.mean).abs() / sd;
            (score > threshold).then(|| Anomaly {
                index,
                expected: s.mean,
                score,
                method: Method::ZScore,
            })
        })
        .collect()
}

/// Smoothing factor of the EWMA's scale (squared prediction errors): slower
/// than any useful mean factor, so the scale rests on ~40 effective points;
/// with the mean's own factor (e.g. 0.3, ~6 points) the scale is so noisy
/// that a stationary Gaussian stream is flagged ~4% of the time at 3 sd.
pub const EWMA_SCALE_ALPHA: f64 = 0.05;

/// Points far from the exponentially weighted moving average of the points
/// before them.
///
/// Each point is predicted by the EWMA `m` of the points before it and
/// scored `|x - m| / s`, where `s²` is the exponentially weighted mean of
/// the squared prediction errors so far (factor [`EWMA_SCALE_ALPHA`], or
/// `1/i` while that is larger, i.e. their plain mean at first). Scoring
/// starts at the [`EWMA_WARMUP`]-th point. Then `m += alpha (x - m)`: a
/// flagged point still updates the state, so a level shift stops being
/// flagged once the average has followed it.
pub fn ewma(values: &[f64], alpha: f64, threshold: f64) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut iter = values.iter().enumerate();
    let (mut mean, mut scale2) = match iter.next() {
        Some((_, &x)) => (x, 0.0f64),
        None => return out,
    };
    for (index, &x) in iter {
        let delta = x - mean;
        if index >= EWMA_WARMUP && scale2 > 0.0 {
            let score = delta.abs() / scale2.sqrt();
            if score > threshold {
                out.push(Anomaly {
                    index,
                    expected: mean,
                    score,
                    method: Method::Ewma,
                });
            }
        }
        let weight = EWMA_SCALE_ALPHA.max(1.0 / index as f64);
        scale2 += weight * (delta * delta - scale2);
        mean += alpha * delta;
    }
    out
}

/// Direction of a trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendDirection {
    /// No significant slope.
    Flat = 1,
    /// Rising.
    Rising = 2,
    /// Falling.
    Falling = 3,
}

/// Least-squares line through `(time, value)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Slope in value units per time unit.
    pub slope: f64,
    /// Coefficient of determination.
    pub r_squared: f64,
    /// Two-sided p-value of the slope (t-test with n - 2 df).
    pub p_value: f64,
    /// FLAT unless `p_value < alpha`.
    pub direction: TrendDirection,
}

/// The trend of a series; `None` below 3 points.
pub fn trend(times: &[f64], values: &[f64], alpha: f64) -> Option<Trend> {
    let n = times.len().min(values.len());
    if n < 3 {
        return None;
    }
    let (t, y) = (Summary::of(&times[..n]), Summary::of(&values[..n]));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (times[i] - t.mean, values[i] - y.mean);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return Some(Trend {
            slope: 0.0,
            r_squared: 0.0,
            p_value: 1.0,
            direction: TrendDirection::Flat,
        });
    }
    let slope = sxy / sxx;
    let ss_res = (syy - slope * sxy).max(0.0);
    let r_squared = if syy > 0.0 { 1.0 - ss_res / syy } else { 0.0 };
    let se = (ss_res / (n - 2) as f64 / sxx).sqrt();
    let p_value = if se > 0.0 {
        student_t_two_sided(slope / se, (n - 2) as f64)
    } else if slope == 0.0 {
        1.0
    } else {
        0.0
    };
    let direction = if p_value >= alpha {
        TrendDirection::Flat
    } else if slope > 0.0 {
        TrendDirection::Rising
    } else {
        TrendDirection::Falling
    };
    Some(Trend {
        slope,
        r_squared: r_squared.clamp(0.0, 1.0),
        p_value,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wobble(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 10.0 + ((i * 37) % 11) as f64 * 0.1)
            .collect()
    }

    #[test]
    fn a_spike_is_flagged_by_both_rules() {
        let mut v = wobble(60);
        v[40] = 30.0;
        let z = zscore(&v, 3.0);
        assert_eq!(z.iter().map(|a| a.index).collect::<Vec<_>>(), vec![40]);
        let e = ewma(&v, 0.3, 3.0);
        assert_eq!(e[0].index, 40);
        assert!(e[0].score > 3.0 && (e[0].expected - 10.5).abs() < 0.5);
    }

    #[test]
    fn constant_and_short_series_have_no_anomalies() {
        assert!(zscore(&[1.0; 50], 3.0).is_empty());
        assert!(ewma(&[1.0; 50], 0.3, 3.0).is_empty());
        assert!(zscore(&[1.0, 9.0], 0.1).is_empty());
        assert!(ewma(&[], 0.3, 3.0).is_empty());
    }

    #[test]
    fn trends_rise_fall_or_stay_flat() {
        let times: Vec<f64> = (0..20).map(f64::from).collect();
        let up: Vec<f64> = times.iter().map(|t| 2.0 * t + 1.0).collect();
        let tr = trend(&times, &up, 0.05).unwrap();
        assert!((tr.slope - 2.0).abs() < 1e-12 && (tr.r_squared - 1.0).abs() < 1e-12);
        assert_eq!(tr.direction, TrendDirection::Rising);
        let down: Vec<f64> = times.iter().map(|t| 5.0 - 0.5 * t).collect();
        assert_eq!(
            trend(&times, &down, 0.05).unwrap().direction,
            TrendDirection::Falling
        );
        let flat = wobble(20);
        assert_eq!(
            trend(&times, &flat, 0.05).unwrap().direction,
            TrendDirection::Flat
        );
        assert!(trend(&times[..2], &up[..2], 0.05).is_none());
    }
}

//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding). `dir` is a `u8`: 1 minimize, 2 maximize. Samples are a
//! `u32` count then that many `f64`, all finite.
//!
//! # `refinement_decide`
//!
//! Request: `u32 planned_per_arm`, `f64 alpha`, `u8 dir`, control samples,
//! treatment samples (recording order). Response: `u8 decision` (1 pending,
//! 2 promote, 3 roll back, 4 inconclusive), `u32 samples_used`, `u8 tested`;
//! when tested, per arm `u32 n`, `f64 mean`, `f64 variance` (control, then
//! treatment), then `f64 t`, `f64 df`, `f64 p_value`, `f64 cohen_d`,
//! `f64 hedges_g`, `f64 g_ci_low`, `f64 g_ci_high`.
//!
//! # `refinement_sample_size`
//!
//! Request: `f64 alpha`, `f64 power`, `f64 effect`. Response: `u64 n` per arm.
//!
//! # `refinement_patterns`
//!
//! Request: `f64 z_threshold`, `f64 ewma_alpha`, `f64 trend_alpha`, `u32 n`,
//! per point `f64 time_seconds`, `f64 value`. Response: `f64 mean`,
//! `f64 stddev`, `u32 anomalies` (highest score first), per anomaly
//! `u32 index`, `u8 method` (1 z-score, 2 EWMA), `f64 expected`,
//! `f64 score`; `u8 has_trend`, then `f64 slope`, `f64 r_squared`,
//! `f64 p_value`, `u8 direction` (1 flat, 2 rising, 3 falling).
//!
//! # `refinement_should_evolve`
//!
//! Request: `u8 dir`, `u32 window`, `f64 max_degradation`,
//! `f64 max_anomaly_rate`, `f64 max_failure_rate`, `f64 z_threshold`,
//! `u8 plateau`, `f64 min_improvement`, `f64 plateau_alpha`, `u32 n`, per
//! report (oldest first) `f64 value`, `u8 success`. Response: `u8 trigger`
//! (see [`Trigger`]), `str reason`, `f64 current_mean`, `f64 baseline_mean`,
//! `f64 degradation`, `f64 anomaly_rate`, `f64 failure_rate`,
//! `u32 sample_count`, `f64 p_value`.
//!
//! # Errors
//!
//! 1 malformed request (details `[field]` or `[field, index]` for a bad
//! value); [`STATUS_OUT_OF_RANGE`] when a parameter is outside its domain
//! (details `[field]`).

use crate::anomaly::{ewma, trend, zscore};
use crate::decision::{decide, Direction};
use crate::trigger::{evaluate, Point, Rule, Trigger};
use crate::welch::{sample_size_per_arm, Summary};
use crate::wire::{ApiError, Reader, Writer, STATUS_BAD_REQUEST};

/// A parameter is outside its domain.
pub const STATUS_OUT_OF_RANGE: i32 = 2;

fn bad(code: i32, message: String, details: &[&str]) -> ApiError {
    ApiError {
        code,
        message,
        details: details.iter().map(|d| d.to_string()).collect(),
    }
}

/// `f64` that must be finite and inside `[lo, hi]`.
fn param(r: &mut Reader, field: &str, lo: f64, hi: f64) -> Result<f64, ApiError> {
    let v = r.f64()?;
    if v.is_finite() && v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(bad(
            STATUS_OUT_OF_RANGE,
            format!("{field} = {v} is outside [{lo}, {hi}]"),
            &[field],
        ))
    }
}

fn direction(r: &mut Reader) -> Result<Direction, ApiError> {
    match r.u8()? {
        1 => Ok(Direction::Minimize),
        2 => Ok(Direction::Maximize),
        other => Err(bad(
            STATUS_OUT_OF_RANGE,
            format!("direction {other} is neither 1 (minimize) nor 2 (maximize)"),
            &["direction"],
        )),
    }
}

fn finite(v: f64, field: &str, index: usize) -> Result<f64, ApiError> {
    if v.is_finite() {
        Ok(v)
    } else {
        let at = index.to_string();
        Err(bad(
            STATUS_BAD_REQUEST,
            format!("{field}[{index}] = {v} is not finite"),
            &[field, &at],
        ))
    }
}

fn samples(r: &mut Reader, field: &str) -> Result<Vec<f64>, ApiError> {
    let n = r.count(8)?;
    (0..n).map(|i| finite(r.f64()?, field, i)).collect()
}

fn write_summary(w: &mut Writer, s: &Summary) {
    w.count(s.n).f64(s.mean).f64(s.variance);
}

/// The A/B decision rule; see [`crate::decision`].
pub fn decide_experiment(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let planned = r.u32()? as usize;
    let alpha = param(&mut r, "alpha", f64::MIN_POSITIVE, 0.5)?;
    let dir = direction(&mut r)?;
    let control = samples(&mut r, "control")?;
    let treatment = samples(&mut r, "treatment")?;
    r.finish()?;
    let v = decide(&control, &treatment, planned, alpha, dir);
    let mut w = Writer::new();
    w.u8(v.decision as u8).count(v.samples_used);
    match v.test {
        None => {
            w.u8(0);
        }
        Some(t) => {
            w.u8(1);
            write_summary(&mut w, &t.control);
            write_summary(&mut w, &t.treatment);
            w.f64(t.t)
                .f64(t.df)
                .f64(t.p_value)
                .f64(t.cohen_d)
                .f64(t.hedges_g)
                .f64(t.g_ci_low)
                .f64(t.g_ci_high);
        }
    }
    Ok(w.into_bytes())
}

/// Sample size per arm; see [`sample_size_per_arm`].
pub fn sample_size(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let alpha = param(&mut r, "alpha", f64::MIN_POSITIVE, 0.5)?;
    let power = param(&mut r, "power", f64::MIN_POSITIVE, 1.0 - f64::EPSILON)?;
    let effect = r.f64()?;
    r.finish()?;
    let n = sample_size_per_arm(alpha, power, effect).ok_or_else(|| {
        bad(
            STATUS_OUT_OF_RANGE,
            format!(
                "effect {effect} must be finite, non-zero and large enough for a finite sample"
            ),
            &["effect"],
        )
    })?;
    let mut w = Writer::new();
    w.u64(n);
    Ok(w.into_bytes())
}

/// Anomalies and trend of one series; see [`crate::anomaly`].
pub fn patterns(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let z = param(&mut r, "z_threshold", 0.0, f64::MAX)?;
    let alpha = param(&mut r, "ewma_alpha", f64::MIN_POSITIVE, 1.0)?;
    let trend_alpha = param(&mut r, "trend_alpha", f64::MIN_POSITIVE, 1.0)?;
    let n = r.count(16)?;
    let (mut times, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        times.push(finite(r.f64()?, "time", i)?);
        values.push(finite(r.f64()?, "value", i)?);
    }
    r.finish()?;
    let s = Summary::of(&values);
    let mut found = zscore(&values, z);
    found.extend(ewma(&values, alpha, z));
    found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    let mut w = Writer::new();
    w.f64(s.mean).f64(s.stddev()).count(found.len());
    for a in &found {
        w.count(a.index)
            .u8(a.method as u8)
            .f64(a.expected)
            .f64(a.score);
    }
    match trend(&times, &values, trend_alpha) {
        None => {
            w.u8(0);
        }
        Some(t) => {
            w.u8(1)
                .f64(t.slope)
                .f64(t.r_squared)
                .f64(t.p_value)
                .u8(t.direction as u8);
        }
    }
    Ok(w.into_bytes())
}

/// The evolution trigger; see [`crate::trigger`].
pub fn should_evolve(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let dir = direction(&mut r)?;
    let window = r.u32()? as usize;
    let rule = Rule {
        direction: dir,
        window,
        max_degradation: param(&mut r, "max_degradation", 0.0, f64::MAX)?,
        max_anomaly_rate: param(&mut r, "max_anomaly_rate", 0.0, 1.0)?,
        max_failure_rate: param(&mut r, "max_failure_rate", 0.0, 1.0)?,
        z_threshold: param(&mut r, "z_threshold", 0.0, f64::MAX)?,
        plateau: r.u8()? != 0,
        min_improvement: param(&mut r, "min_improvement", 0.0, f64::MAX)?,
        plateau_alpha: param(&mut r, "plateau_alpha", f64::MIN_POSITIVE, 1.0)?,
    };
    let n = r.count(9)?;
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let value = r.f64()?;
        let success = r.u8()? != 0;
        // A failed run's value is ignored, so only a successful one must be finite.
        let value = if success {
            finite(value, "value", i)?
        } else {
            0.0
        };
        points.push(Point { value, success });
    }
    r.finish()?;
    let e = evaluate(&points, &rule);
    debug_assert!(e.trigger != Trigger::None || !e.should_evolve());
    let mut w = Writer::new();
    w.u8(e.trigger as u8)
        .str(&e.reason)
        .f64(e.current_mean)
        .f64(e.baseline_mean)
        .f64(e.degradation)
        .f64(e.anomaly_rate)
        .f64(e.failure_rate)
        .count(e.sample_count)
        .f64(e.p_value);
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms(w: &mut Writer, c: &[f64], t: &[f64]) {
        for arm in [c, t] {
            w.count(arm.len());
            for &x in arm {
                w.f64(x);
            }
        }
    }

    #[test]
    fn decide_round_trip() {
        let mut w = Writer::new();
        w.u32(3).f64(0.05).u8(2);
        arms(&mut w, &[1.0, 1.1, 0.9], &[2.0, 2.1, 1.9]);
        let out = decide_experiment(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(
            (r.u8().unwrap(), r.u32().unwrap(), r.u8().unwrap()),
            (2, 3, 1)
        );
        assert_eq!(r.u32().unwrap(), 3);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let mut w = Writer::new();
        w.u32(3).f64(0.9).u8(2);
        arms(&mut w, &[], &[]);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(
            (e.code, e.details.clone()),
            (STATUS_OUT_OF_RANGE, vec!["alpha".to_string()])
        );
        let mut w = Writer::new();
        w.u32(3).f64(0.05).u8(7);
        assert_eq!(
            decide_experiment(&w.into_bytes()).unwrap_err().details,
            vec!["direction"]
        );
        let mut w = Writer::new();
        w.u32(3).f64(0.05).u8(1);
        arms(&mut w, &[1.0, f64::NAN], &[]);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(
            (e.code, e.details),
            (STATUS_BAD_REQUEST, vec!["control".into(), "1".into()])
        );
        let mut w = Writer::new();
        w.f64(0.05).f64(0.8).f64(0.0);
        assert_eq!(
            sample_size(&w.into_bytes()).unwrap_err().details,
            vec!["effect"]
        );
    }
}

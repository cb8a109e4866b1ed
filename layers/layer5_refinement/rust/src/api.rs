//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding). `dir` is a `u8`: 1 minimize, 2 maximize. Samples are a
//! `u32` count then that many `f64`, all finite.
//!
//! # `refinement_decide`
//!
//! Request: `u8 design` (1 unpaired, 2 paired, 3 paired sequential),
//! `u32 planned_per_arm`, `f64 alpha`, `u8 dir`, `f64 mixture_scale` (τ of
//! the sequential test, in (0, 100]), control samples, treatment samples
//! (recording order; paired designs: equally long, pair `i` at index `i` of
//! both), `u32 guardrails`, per guardrail `u8 dir`, `f64 max_regression`
//! (finite, ≥ 0), control values, treatment values (as long as their arm).
//! Response: `u8 decision` (1 pending, 2 promote, 3 roll back,
//! 4 inconclusive, 5 vetoed), `u32 samples_used`, `u8 tested`; when tested,
//! per arm `u32 n`, `f64 mean`, `f64 variance` (control, then treatment),
//! then `f64 t`, `f64 df`, `f64 p_value`, `f64 cohen_d`, `f64 hedges_g`,
//! `f64 g_ci_low`, `f64 g_ci_high`, `f64 difference`,
//! `f64 difference_ci_low`, `f64 difference_ci_high`; `u8 has_wilcoxon`,
//! then `u32 n`, `f64 w_plus`, `f64 p_value`, `u8 exact`;
//! `u8 has_sequential`, then `u8 crossed`, `f64 log_lr`,
//! `f64 always_valid_p`; `u32 guardrails`, per guardrail
//! `f64 control_mean`, `f64 treatment_mean`, `f64 regression`, `u8 breached`.
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
use crate::decision::{decide, DecisionRule, Design, Direction, Guardrail};
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

fn design(r: &mut Reader) -> Result<Design, ApiError> {
    match r.u8()? {
        1 => Ok(Design::Unpaired),
        2 => Ok(Design::Paired),
        3 => Ok(Design::PairedSequential),
        other => Err(bad(
            STATUS_OUT_OF_RANGE,
            format!("design {other} is not 1 (unpaired), 2 (paired) or 3 (paired sequential)"),
            &["design"],
        )),
    }
}

fn same_length(
    values: &[f64],
    expected: usize,
    field: &str,
    at: Option<usize>,
) -> Result<(), ApiError> {
    if values.len() == expected {
        return Ok(());
    }
    let index = at.map(|i| i.to_string());
    let mut details = vec![field];
    details.extend(index.as_deref());
    Err(bad(
        STATUS_BAD_REQUEST,
        format!("{field} holds {} values, {expected} expected", values.len()),
        &details,
    ))
}

/// The A/B decision rule; see [`crate::decision`].
pub fn decide_experiment(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let design = design(&mut r)?;
    let planned = r.u32()? as usize;
    let alpha = param(&mut r, "alpha", f64::MIN_POSITIVE, 0.5)?;
    let dir = direction(&mut r)?;
    let mixture_scale = param(&mut r, "mixture_scale", f64::MIN_POSITIVE, 100.0)?;
    let control = samples(&mut r, "control")?;
    let treatment = samples(&mut r, "treatment")?;
    if design != Design::Unpaired {
        same_length(&treatment, control.len(), "treatment", None)?;
    }
    let guardrail_count = r.count(1 + 8 + 4 + 4)?;
    let mut guardrail_values = Vec::with_capacity(guardrail_count);
    for i in 0..guardrail_count {
        let dir = direction(&mut r)?;
        let max_regression = param(&mut r, "max_regression", 0.0, f64::MAX)?;
        let c = samples(&mut r, "guardrail_control")?;
        let t = samples(&mut r, "guardrail_treatment")?;
        same_length(&c, control.len(), "guardrail_control", Some(i))?;
        same_length(&t, treatment.len(), "guardrail_treatment", Some(i))?;
        guardrail_values.push((dir, max_regression, c, t));
    }
    r.finish()?;
    let guardrails: Vec<Guardrail> = guardrail_values
        .iter()
        .map(|(direction, max_regression, c, t)| Guardrail {
            direction: *direction,
            max_regression: *max_regression,
            control: c,
            treatment: t,
        })
        .collect();
    let rule = DecisionRule {
        design,
        planned,
        alpha,
        direction: dir,
        mixture_scale,
    };
    let v = decide(&rule, &control, &treatment, &guardrails);
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
                .f64(t.g_ci_high)
                .f64(t.difference)
                .f64(t.difference_ci_low)
                .f64(t.difference_ci_high);
        }
    }
    match v.wilcoxon {
        None => {
            w.u8(0);
        }
        Some(s) => {
            w.u8(1)
                .count(s.n)
                .f64(s.w_plus)
                .f64(s.p_value)
                .u8(u8::from(s.exact));
        }
    }
    match v.sequential {
        None => {
            w.u8(0);
        }
        Some(s) => {
            w.u8(1)
                .u8(u8::from(s.crossed))
                .f64(s.log_lr)
                .f64(s.always_valid_p);
        }
    }
    w.count(v.guardrails.len());
    for g in &v.guardrails {
        w.f64(g.control_mean)
            .f64(g.treatment_mean)
            .f64(g.regression)
            .u8(u8::from(g.breached));
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

    /// The request's head: design, planned, alpha, direction, mixture scale.
    fn head(design: u8, alpha: f64, dir: u8) -> Writer {
        let mut w = Writer::new();
        w.u8(design).u32(3).f64(alpha).u8(dir).f64(0.5);
        w
    }

    #[test]
    fn decide_round_trip() {
        let mut w = head(2, 0.05, 2);
        arms(&mut w, &[1.0, 1.1, 0.9], &[2.0, 2.1, 1.9]);
        w.u32(1).u8(1).f64(0.05);
        arms(&mut w, &[10.0, 10.0, 10.0], &[11.0, 11.0, 11.0]);
        let out = decide_experiment(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        // Vetoed: the treatment wins by 1.0 but burns 10 % more of the guardrail metric.
        assert_eq!(
            (r.u8().unwrap(), r.u32().unwrap(), r.u8().unwrap()),
            (5, 3, 1)
        );
        assert_eq!(r.u32().unwrap(), 3);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let mut w = head(1, 0.9, 2);
        arms(&mut w, &[], &[]);
        w.u32(0);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(
            (e.code, e.details.clone()),
            (STATUS_OUT_OF_RANGE, vec!["alpha".to_string()])
        );
        let w = head(1, 0.05, 7);
        assert_eq!(
            decide_experiment(&w.into_bytes()).unwrap_err().details,
            vec!["direction"]
        );
        let w = head(4, 0.05, 1);
        assert_eq!(
            decide_experiment(&w.into_bytes()).unwrap_err().details,
            vec!["design"]
        );
        let mut w = head(1, 0.05, 1);
        arms(&mut w, &[1.0, f64::NAN], &[]);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(
            (e.code, e.details),
            (STATUS_BAD_REQUEST, vec!["control".into(), "1".into()])
        );
        let mut w = head(2, 0.05, 1);
        arms(&mut w, &[1.0, 2.0], &[1.0]);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(e.details, vec!["treatment"]);
        let mut w = head(2, 0.05, 1);
        arms(&mut w, &[1.0, 2.0], &[1.0, 3.0]);
        w.u32(1).u8(1).f64(0.1);
        arms(&mut w, &[1.0, 2.0], &[1.0]);
        let e = decide_experiment(&w.into_bytes()).unwrap_err();
        assert_eq!(e.details, vec!["guardrail_treatment", "0"]);
        let mut w = Writer::new();
        w.f64(0.05).f64(0.8).f64(0.0);
        assert_eq!(
            sample_size(&w.into_bytes()).unwrap_err().details,
            vec!["effect"]
        );
    }
}

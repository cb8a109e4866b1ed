//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u8`/`u32`/`f64`/`str`).
//!
//! # `discovery_window_stats`
//!
//! Request: `f64 alpha`, `u32 window` (keep only the last `window` values of
//! each series; 0 keeps all), `u32 series`, then per series `str name`,
//! `u32 n`, `n x f64` values (oldest first, finite, `n >= 1`).
//!
//! Response: `u32 series`, then per series `str name`, `u32 count`, and nine
//! `f64`: mean, min, max, stddev, ewma, p50, p95, p99, last.
//!
//! # `discovery_evaluate`
//!
//! Request: `u32 thresholds`, per threshold `str metric`, `u8 comparison`
//! (1 above, 2 below), `f64 value`, `u8 severity` (1 info, 2 warning,
//! 3 critical); then `u32 observations`, per observation `str metric`,
//! `f64 value`, `str unit`.
//!
//! Response: `u32 alerts`, per alert `u32 observation index`,
//! `u32 threshold index`, `u8 severity`, `u8 comparison`, `str message`.
//!
//! # Errors
//!
//! Status [`crate::wire::STATUS_BAD_REQUEST`] (1): malformed bytes. [`STATUS_BAD_THRESHOLD`]
//! (2): details `[index, reason]`. [`STATUS_BAD_SERIES`] (3): details
//! `[series name, reason]`.

use crate::threshold::{
    evaluate as evaluate_thresholds, Comparison, Observation, Severity, Threshold,
};
use crate::window::SlidingWindow;
use crate::wire::{ApiError, Reader, Writer};

/// A threshold is malformed (details: index, reason).
pub const STATUS_BAD_THRESHOLD: i32 = 2;
/// A series cannot be summarised (details: name, reason).
pub const STATUS_BAD_SERIES: i32 = 3;

fn detailed(code: i32, message: String, details: Vec<String>) -> ApiError {
    ApiError {
        code,
        message,
        details,
    }
}

/// Window statistics for several series at once.
pub fn window_stats(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let alpha = r.f64()?;
    let window = r.u32()? as usize;
    let n_series = r.count(8)?;
    let mut series = Vec::with_capacity(n_series);
    for _ in 0..n_series {
        let name = r.str()?;
        let n = r.count(8)?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(r.f64()?);
        }
        series.push((name, values));
    }
    r.finish()?;

    let mut w = Writer::new();
    w.count(series.len());
    for (name, values) in series {
        let bad = |reason: String| {
            detailed(
                STATUS_BAD_SERIES,
                format!("series {name:?}: {reason}"),
                vec![name.clone(), reason],
            )
        };
        let capacity = if window == 0 { values.len() } else { window };
        let mut win = SlidingWindow::new(capacity.max(1)).map_err(|e| bad(e.to_string()))?;
        for v in values {
            win.push(v).map_err(|e| bad(e.to_string()))?;
        }
        let stats = win
            .stats(alpha)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("has no values".to_string()))?;
        w.str(&name).count(stats.count);
        for v in [
            stats.mean,
            stats.min,
            stats.max,
            stats.stddev,
            stats.ewma,
            stats.p50,
            stats.p95,
            stats.p99,
            stats.last,
        ] {
            w.f64(v);
        }
    }
    Ok(w.into_bytes())
}

/// Threshold evaluation.
pub fn evaluate(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let n = r.count(14)?;
    let mut thresholds = Vec::with_capacity(n);
    for index in 0..n {
        let metric = r.str()?;
        let comparison = r.u8()?;
        let value = r.f64()?;
        let severity = r.u8()?;
        let bad = |reason: String| {
            detailed(
                STATUS_BAD_THRESHOLD,
                format!("thresholds[{index}]: {reason}"),
                vec![index.to_string(), reason],
            )
        };
        let comparison = Comparison::from_code(comparison)
            .ok_or_else(|| bad(format!("unknown comparison {comparison}")))?;
        let severity = Severity::from_code(severity)
            .ok_or_else(|| bad(format!("unknown severity {severity}")))?;
        thresholds.push(Threshold {
            metric,
            comparison,
            value,
            severity,
        });
    }
    let n = r.count(16)?;
    let mut observations = Vec::with_capacity(n);
    for _ in 0..n {
        let metric = r.str()?;
        let value = r.f64()?;
        let unit = r.str()?;
        observations.push(Observation {
            metric,
            value,
            unit,
        });
    }
    r.finish()?;

    let alerts = evaluate_thresholds(&observations, &thresholds).map_err(|e| {
        detailed(
            STATUS_BAD_THRESHOLD,
            e.to_string(),
            vec![e.index.to_string(), e.reason],
        )
    })?;
    let mut w = Writer::new();
    w.count(alerts.len());
    for a in alerts {
        w.count(a.observation)
            .count(a.threshold)
            .u8(a.severity as u8)
            .u8(a.comparison as u8)
            .str(&a.message);
    }
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::STATUS_BAD_REQUEST;

    fn stats_request(alpha: f64, window: u32, series: &[(&str, &[f64])]) -> Vec<u8> {
        let mut w = Writer::new();
        w.f64(alpha).u32(window).count(series.len());
        for (name, values) in series {
            w.str(name).count(values.len());
            for &v in values.iter() {
                w.f64(v);
            }
        }
        w.into_bytes()
    }

    #[test]
    fn window_stats_round_trip_and_window_trims_oldest() {
        let req = stats_request(0.5, 3, &[("a", &[100.0, 1.0, 2.0, 3.0]), ("b", &[5.0])]);
        let out = window_stats(&req).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.str().unwrap(), "a");
        assert_eq!(r.u32().unwrap(), 3);
        let vals: Vec<f64> = (0..9).map(|_| r.f64().unwrap()).collect();
        assert_eq!(vals[0], 2.0); // mean of 1, 2, 3: the 100 was evicted
        assert_eq!((vals[1], vals[2], vals[8]), (1.0, 3.0, 3.0));
        assert_eq!(vals[4], 2.25); // ewma 1 -> 1.5 -> 2.25
        assert_eq!(r.str().unwrap(), "b");
        assert_eq!(r.u32().unwrap(), 1);
        let vals: Vec<f64> = (0..9).map(|_| r.f64().unwrap()).collect();
        assert_eq!(vals, vec![5.0, 5.0, 5.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
        r.finish().unwrap();
    }

    #[test]
    fn window_stats_errors_name_the_series() {
        let e = window_stats(&stats_request(0.5, 0, &[("cpu", &[])])).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_SERIES);
        assert_eq!(e.details[0], "cpu");
        let e = window_stats(&stats_request(0.5, 0, &[("m", &[f64::NAN])])).unwrap_err();
        assert!(e.details[1].contains("not finite"));
        let e = window_stats(&stats_request(2.0, 0, &[("m", &[1.0])])).unwrap_err();
        assert!(e.message.contains("alpha"));
        let e = window_stats(&[1, 2]).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_REQUEST);
    }

    fn eval_request(th: &[(&str, u8, f64, u8)], obs: &[(&str, f64, &str)]) -> Vec<u8> {
        let mut w = Writer::new();
        w.count(th.len());
        for (m, c, v, s) in th {
            w.str(m).u8(*c).f64(*v).u8(*s);
        }
        w.count(obs.len());
        for (m, v, u) in obs {
            w.str(m).f64(*v).str(u);
        }
        w.into_bytes()
    }

    #[test]
    fn evaluate_returns_indices_severity_and_message() {
        let req = eval_request(
            &[("cpu", 1, 90.0, 3), ("mem", 2, 10.0, 2)],
            &[
                ("cpu", 50.0, "percent"),
                ("mem", 4.0, "percent"),
                ("cpu", 91.0, ""),
            ],
        );
        let out = evaluate(&req).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (2, 0));
        assert_eq!((r.u8().unwrap(), r.u8().unwrap()), (3, 1));
        assert_eq!(r.str().unwrap(), "cpu 91.0 above 90.0 (critical)");
        assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (1, 1));
        assert_eq!((r.u8().unwrap(), r.u8().unwrap()), (2, 2));
        assert_eq!(r.str().unwrap(), "mem 4.0 percent below 10.0 (warning)");
        r.finish().unwrap();
    }

    #[test]
    fn evaluate_rejects_unknown_codes_and_non_finite_thresholds() {
        let e = evaluate(&eval_request(&[("cpu", 3, 1.0, 1)], &[])).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_THRESHOLD);
        assert_eq!(e.details[0], "0");
        let e = evaluate(&eval_request(&[("a", 1, 1.0, 1), ("b", 1, 1.0, 0)], &[])).unwrap_err();
        assert_eq!(e.details[0], "1");
        assert!(e.details[1].contains("severity"));
        let e = evaluate(&eval_request(&[("a", 1, f64::NAN, 1)], &[])).unwrap_err();
        assert!(e.message.contains("not finite"));
    }
}

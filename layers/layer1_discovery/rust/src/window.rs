//! Statistics over a sliding window of the most recent observations of one
//! metric.
//!
//! Definitions (all over the values currently in the window, oldest first):
//!
//! * **moving average**: the arithmetic mean of the window;
//! * **EWMA**: `s_0 = x_0`, `s_i = alpha * x_i + (1 - alpha) * s_(i-1)`, with
//!   `alpha` in `(0, 1]` (1 = the last value);
//! * **percentile p** (`0 <= p <= 100`): linear interpolation between the
//!   closest ranks (Hyndman & Fan type 7, NumPy's default): with the window
//!   sorted ascending as `y_0..y_(n-1)`, `h = (n - 1) * p / 100`, the result
//!   is `y_floor(h) + (h - floor(h)) * (y_(floor(h)+1) - y_floor(h))`;
//! * **stddev**: the population standard deviation (divides by `n`, so a
//!   window of one value has stddev 0), computed with Welford's algorithm.

use std::collections::VecDeque;
use std::fmt;

/// Why a value or parameter was rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowError {
    /// The window capacity was 0.
    ZeroCapacity,
    /// A NaN or infinite observation.
    NonFinite(f64),
    /// EWMA smoothing factor outside `(0, 1]`.
    BadAlpha(f64),
    /// Percentile outside `[0, 100]`.
    BadPercentile(f64),
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::ZeroCapacity => write!(f, "window capacity must be at least 1"),
            WindowError::NonFinite(v) => write!(f, "observation {v} is not finite"),
            WindowError::BadAlpha(a) => write!(f, "ewma alpha {a} is outside (0, 1]"),
            WindowError::BadPercentile(p) => write!(f, "percentile {p} is outside [0, 100]"),
        }
    }
}

/// The statistics of a non-empty window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// Values in the window.
    pub count: usize,
    /// Moving (arithmetic) average.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
    /// Exponentially weighted moving average, oldest to newest.
    pub ewma: f64,
    /// Median (interpolated).
    pub p50: f64,
    /// 95th percentile (interpolated).
    pub p95: f64,
    /// 99th percentile (interpolated).
    pub p99: f64,
    /// Most recent value.
    pub last: f64,
}

/// The most recent `capacity` finite observations of a metric.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    capacity: usize,
    values: VecDeque<f64>,
}

impl SlidingWindow {
    /// An empty window holding at most `capacity` values.
    pub fn new(capacity: usize) -> Result<Self, WindowError> {
        if capacity == 0 {
            return Err(WindowError::ZeroCapacity);
        }
        Ok(SlidingWindow {
            capacity,
            values: VecDeque::with_capacity(capacity.min(4096)),
        })
    }

    /// Adds an observation, evicting the oldest when full. Non-finite values
    /// are rejected and leave the window unchanged.
    pub fn push(&mut self, value: f64) -> Result<(), WindowError> {
        if !value.is_finite() {
            return Err(WindowError::NonFinite(value));
        }
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
        Ok(())
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Maximum number of values held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The values, oldest first.
    pub fn values(&self) -> Vec<f64> {
        self.values.iter().copied().collect()
    }

    /// Arithmetic mean, or `None` when empty.
    pub fn moving_average(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        Some(welford(self.values.iter().copied()).0)
    }

    /// EWMA with smoothing factor `alpha`, or `None` when empty.
    pub fn ewma(&self, alpha: f64) -> Result<Option<f64>, WindowError> {
        check_alpha(alpha)?;
        Ok(ewma(self.values.iter().copied(), alpha))
    }

    /// Interpolated percentile `p`, or `None` when empty.
    pub fn percentile(&self, p: f64) -> Result<Option<f64>, WindowError> {
        let sorted = self.sorted();
        percentile_sorted(&sorted, p)
    }

    /// All statistics at once (one sort), or `None` when empty.
    pub fn stats(&self, alpha: f64) -> Result<Option<WindowStats>, WindowError> {
        check_alpha(alpha)?;
        let last = match self.values.back() {
            Some(&v) => v,
            None => return Ok(None),
        };
        let sorted = self.sorted();
        let (mean, stddev) = welford(self.values.iter().copied());
        let pct = |p: f64| percentile_sorted(&sorted, p).map(|v| v.unwrap_or(last));
        Ok(Some(WindowStats {
            count: sorted.len(),
            mean,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            stddev,
            ewma: ewma(self.values.iter().copied(), alpha).unwrap_or(last),
            p50: pct(50.0)?,
            p95: pct(95.0)?,
            p99: pct(99.0)?,
            last,
        }))
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values();
        v.sort_by(f64::total_cmp);
        v
    }
}

fn check_alpha(alpha: f64) -> Result<(), WindowError> {
    if alpha.is_finite() && alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(WindowError::BadAlpha(alpha))
    }
}

/// Mean and population standard deviation (Welford), for a non-empty input.
fn welford(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for x in values {
        n += 1.0;
        let delta = x - mean;
        mean += delta / n;
        m2 += delta * (x - mean);
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    (mean, (m2 / n).max(0.0).sqrt())
}

fn ewma(mut values: impl Iterator<Item = f64>, alpha: f64) -> Option<f64> {
    let first = values.next()?;
    Some(values.fold(first, |s, x| alpha * x + (1.0 - alpha) * s))
}

/// Type-7 percentile of an ascending slice; `None` when it is empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Result<Option<f64>, WindowError> {
    if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
        return Err(WindowError::BadPercentile(p));
    }
    if sorted.is_empty() {
        return Ok(None);
    }
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    Ok(Some(sorted[lo] + frac * (sorted[hi] - sorted[lo])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(values: &[f64], capacity: usize) -> SlidingWindow {
        let mut w = SlidingWindow::new(capacity).unwrap();
        for &v in values {
            w.push(v).unwrap();
        }
        w
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let w = window(&[1.0, 2.0, 3.0, 4.0, 5.0], 3);
        assert_eq!(w.values(), vec![3.0, 4.0, 5.0]);
        assert_eq!(w.len(), 3);
        assert_eq!(w.capacity(), 3);
        assert!(close(w.moving_average().unwrap(), 4.0));
    }

    #[test]
    fn rejects_zero_capacity_and_non_finite_values() {
        assert_eq!(
            SlidingWindow::new(0).unwrap_err(),
            WindowError::ZeroCapacity
        );
        let mut w = window(&[1.0], 4);
        assert!(w.push(f64::NAN).is_err());
        assert!(w.push(f64::INFINITY).is_err());
        assert_eq!(w.values(), vec![1.0]);
    }

    #[test]
    fn empty_window_has_no_statistics() {
        let w = SlidingWindow::new(4).unwrap();
        assert!(w.is_empty());
        assert_eq!(w.moving_average(), None);
        assert_eq!(w.ewma(0.5).unwrap(), None);
        assert_eq!(w.percentile(50.0).unwrap(), None);
        assert_eq!(w.stats(0.5).unwrap(), None);
    }

    #[test]
    fn percentiles_interpolate_linearly_like_numpy() {
        // numpy.percentile([1..10], [50, 95, 99]) == [5.5, 9.55, 9.91]
        let w = window(&[7.0, 1.0, 10.0, 3.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0], 10);
        assert!(close(w.percentile(50.0).unwrap().unwrap(), 5.5));
        assert!(close(w.percentile(95.0).unwrap().unwrap(), 9.55));
        assert!(close(w.percentile(99.0).unwrap().unwrap(), 9.91));
        assert!(close(w.percentile(0.0).unwrap().unwrap(), 1.0));
        assert!(close(w.percentile(100.0).unwrap().unwrap(), 10.0));
        assert!(w.percentile(100.5).is_err());
        assert!(w.percentile(f64::NAN).is_err());
        let one = window(&[42.0], 3);
        assert!(close(one.percentile(99.0).unwrap().unwrap(), 42.0));
    }

    #[test]
    fn ewma_weights_recent_values() {
        let w = window(&[10.0, 20.0, 30.0], 8);
        // s = 10; s = .5*20 + .5*10 = 15; s = .5*30 + .5*15 = 22.5
        assert!(close(w.ewma(0.5).unwrap().unwrap(), 22.5));
        assert!(close(w.ewma(1.0).unwrap().unwrap(), 30.0));
        assert!(w.ewma(0.0).is_err());
        assert!(w.ewma(1.5).is_err());
    }

    #[test]
    fn stats_summarise_the_window() {
        let w = window(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 8);
        let s = w.stats(0.25).unwrap().unwrap();
        assert_eq!(s.count, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.stddev, 2.0)); // the classic population-stddev example
        assert_eq!((s.min, s.max, s.last), (2.0, 9.0, 9.0));
        assert!(close(s.p50, 4.5));
        let single = window(&[3.0], 2).stats(0.5).unwrap().unwrap();
        assert_eq!((single.stddev, single.p99, single.ewma), (0.0, 3.0, 3.0));
    }

    #[test]
    fn stddev_is_stable_for_large_offsets() {
        let w = window(&[1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0], 4);
        let s = w.stats(0.5).unwrap().unwrap();
        assert!((s.stddev - 22.5f64.sqrt()).abs() < 1e-6);
    }
}

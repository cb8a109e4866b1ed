//! Special functions behind the tests: `ln Γ`, the regularized incomplete
//! beta and gamma functions, the Student-t (CDF and quantile) and normal
//! distributions.
//!
//! Continued fractions follow Numerical Recipes (3rd ed., §6.2 and §6.4);
//! `ln Γ` is Lanczos' approximation (g = 7, 9 terms, ~1e-15 relative). The
//! normal quantile is Acklam's rational approximation refined by one Halley
//! step against [`normal_cdf`], which brings it to full double precision.

const EPS: f64 = 1e-15;
const FPMIN: f64 = 1e-300;
const MAX_ITER: usize = 10_000;

const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Γ(x)` for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn guard(v: f64) -> f64 {
    if v.abs() < FPMIN {
        FPMIN
    } else {
        v
    }
}

/// Continued fraction of the incomplete beta function (NR `betacf`).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast only below the mean; use the symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The upper regularized incomplete gamma function `Q(a, x)` for `a > 0`.
pub fn upper_incomplete_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut ap, mut term) = (a, 1.0 / a);
        let mut sum = term;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        1.0 - sum * front
    } else {
        // Continued fraction for Q(a, x).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / FPMIN;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..=MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = 1.0 / guard(an * d + b);
            c = guard(b + an / c);
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < EPS {
                break;
            }
        }
        front * h
    }
}

/// Two-sided tail `P(|T| >= |t|)` of Student's t with `df > 0` degrees of freedom.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    incomplete_beta(0.5 * df, 0.5, df / (df + t * t))
}

/// `P(T <= t)` of Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * student_t_two_sided(t, df);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The density of Student's t with `df > 0` degrees of freedom.
pub fn student_t_pdf(t: f64, df: f64) -> f64 {
    let log_norm =
        ln_gamma(0.5 * (df + 1.0)) - ln_gamma(0.5 * df) - 0.5 * (df * std::f64::consts::PI).ln();
    (log_norm - 0.5 * (df + 1.0) * (t * t / df).ln_1p()).exp()
}

/// The quantile of Student's t with `df > 0` degrees of freedom, for `p` in
/// (0, 1); ±∞ at the ends.
///
/// Newton's method on the upper tail from the normal quantile, kept inside
/// a bracket that bisection falls back to, so heavy tails (small df)
/// converge as safely as light ones.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let q = 1.0 - p;
    let upper_tail = |t: f64| 0.5 * student_t_two_sided(t, df);
    let (mut lo, mut hi) = (0.0, 1.0);
    while upper_tail(hi) > q {
        lo = hi;
        hi *= 2.0;
        if hi > 1e300 {
            return f64::INFINITY;
        }
    }
    let mut t = normal_quantile(p).clamp(lo, hi);
    for _ in 0..200 {
        let excess = upper_tail(t) - q; // decreasing in t
        if excess == 0.0 {
            break;
        }
        if excess > 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let mut next = t + excess / student_t_pdf(t, df);
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - t).abs() <= 4.0 * f64::EPSILON * t.abs() {
            return next;
        }
        t = next;
    }
    t
}

/// The standard normal CDF `Φ(z)`, accurate in both tails.
pub fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let tail = 0.5 * upper_incomplete_gamma(0.5, 0.5 * z * z);
    if z >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The standard normal quantile `Φ⁻¹(p)` for `p` in (0, 1); ±∞ at the ends.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.024_25 {
        tail(p)
    } else if p > 1.0 - 0.024_25 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut factorial = 1.0f64;
        for n in 1..30 {
            assert!(close(ln_gamma(n as f64), factorial.ln().max(0.0), 1e-13) || n <= 2);
            factorial *= n as f64;
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-14
        ));
    }

    #[test]
    fn t_tail_matches_closed_forms() {
        // df = 1 (Cauchy): 1 - 2 atan|t| / pi; df = 2: 1 - |t| / sqrt(2 + t^2).
        for &t in &[0.0, 0.3, 1.0, 2.5, 10.0, 100.0] {
            let cauchy = 1.0 - 2.0 * f64::atan(t) / std::f64::consts::PI;
            assert!(close(student_t_two_sided(t, 1.0), cauchy, 1e-12), "t={t}");
            let df2 = 1.0 - t / (2.0 + t * t).sqrt();
            assert!(close(student_t_two_sided(-t, 2.0), df2, 1e-12), "t={t}");
        }
        assert_eq!(student_t_two_sided(f64::INFINITY, 5.0), 0.0);
        assert!(close(student_t_cdf(1.0, 1.0), 0.75, 1e-13));
    }

    #[test]
    fn t_quantile_inverts_the_cdf() {
        // df = 1 (Cauchy): tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)).
        for &p in &[0.01, 0.2, 0.5, 0.9, 0.975, 0.999] {
            let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
            assert!((student_t_quantile(p, 1.0) - cauchy).abs() < 1e-9 * cauchy.abs().max(1.0));
            let df2 = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
            assert!((student_t_quantile(p, 2.0) - df2).abs() < 1e-9 * df2.abs().max(1.0));
        }
        // Tables: t(0.975; 10) and t(0.975; 30).
        assert!(close(
            student_t_quantile(0.975, 10.0),
            2.228_138_851_986_274,
            1e-10
        ));
        assert!(close(
            student_t_quantile(0.025, 30.0),
            -2.042_272_456_301_238,
            1e-10
        ));
        assert_eq!(student_t_quantile(1.0, 3.0), f64::INFINITY);
    }

    #[test]
    fn normal_cdf_and_quantile_invert() {
        assert!(close(normal_cdf(1.959_963_984_540_054), 0.975, 1e-14));
        assert!(close(normal_cdf(-8.0), 6.220_960_574_271_785e-16, 1e-10));
        for &p in &[1e-12, 0.001, 0.02, 0.2, 0.5, 0.8, 0.975, 0.999_999] {
            assert!(close(normal_cdf(normal_quantile(p)), p, 1e-12), "p={p}");
        }
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-14));
        assert!(normal_quantile(1.5).is_nan());
    }
}

//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u8`/`u32`/`f64`/`str`).
//!
//! # `evolution_choose_arm`
//!
//! Request: `f64 exploration_constant`, `u32 arms`, per arm `u32 pulls`,
//! `f64 mean_reward`.
//! Response: `u32 arm`, `u8 exploration` (0/1), `u32 n` + `n x f64` UCB1
//! indices (`+inf` for untried arms), `str reason` (see [`crate::bandit`]).
//!
//! # `evolution_restart_rule`
//!
//! Request: `u8 maximize`, `f64 tolerance`, `u32 patience`,
//! `u32 max_population` (0 = no cap), `u32 population`, `u32 n` + `n x f64`
//! best fitness per generation, oldest first.
//! Response: `u8 decision` (0 continue, 1 restart, 2 stop),
//! `u32 stagnant_generations`, `f64 best`, `u32 next_population`,
//! `str reason` (see [`crate::restart`]).
//!
//! # Errors (status: details)
//!
//! 1 malformed request: `[]`; [`STATUS_BAD_ARMS`]: `[arm index, or "" for
//! the request]`; [`STATUS_BAD_POLICY`]: `[field]`.

use crate::bandit::{choose_arm, Arm};
use crate::restart::{restart_rule, RestartPolicy};
use crate::wire::{ApiError, Reader, Writer};

/// No arms, a bad exploration constant or a non-finite mean reward.
pub const STATUS_BAD_ARMS: i32 = 2;
/// A restart policy field out of range.
pub const STATUS_BAD_POLICY: i32 = 3;

/// UCB1 choice among the arms.
pub fn choose_arm_op(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let c = r.f64()?;
    let n = r.count(12)?;
    let mut arms = Vec::with_capacity(n);
    for _ in 0..n {
        arms.push(Arm {
            pulls: r.u32()?,
            mean_reward: r.f64()?,
        });
    }
    r.finish()?;
    let choice = choose_arm(&arms, c).map_err(|e| ApiError {
        code: STATUS_BAD_ARMS,
        message: e.to_string(),
        details: vec![e.arm.map(|a| a.to_string()).unwrap_or_default()],
    })?;
    let mut w = Writer::new();
    w.count(choice.arm)
        .u8(u8::from(choice.exploration))
        .count(choice.indices.len());
    for v in &choice.indices {
        w.f64(*v);
    }
    w.str(&choice.reason);
    Ok(w.into_bytes())
}

/// The stagnation/restart verdict for a run's history.
pub fn restart_rule_op(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let policy = RestartPolicy {
        maximize: r.u8()? != 0,
        tolerance: r.f64()?,
        patience: r.u32()?,
        max_population: r.u32()?,
    };
    let population = r.u32()?;
    let n = r.count(8)?;
    let mut history = Vec::with_capacity(n);
    for _ in 0..n {
        history.push(r.f64()?);
    }
    r.finish()?;
    let v = restart_rule(&policy, population, &history).map_err(|e| ApiError {
        code: STATUS_BAD_POLICY,
        message: e.to_string(),
        details: vec![e.field.into()],
    })?;
    let mut w = Writer::new();
    w.u8(v.decision as u8)
        .u32(v.stagnant_generations)
        .f64(v.best)
        .u32(v.next_population)
        .str(&v.reason);
    Ok(w.into_bytes())
}

/// Request bytes of [`choose_arm_op`].
#[cfg(test)]
pub(crate) fn arms_request(c: f64, arms: &[(u32, f64)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.f64(c).count(arms.len());
    for &(pulls, mean) in arms {
        w.u32(pulls).f64(mean);
    }
    w.into_bytes()
}

/// Request bytes of [`restart_rule_op`].
#[cfg(test)]
pub(crate) fn restart_request(p: &RestartPolicy, population: u32, history: &[f64]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(u8::from(p.maximize))
        .f64(p.tolerance)
        .u32(p.patience)
        .u32(p.max_population)
        .u32(population)
        .count(history.len());
    for &v in history {
        w.f64(v);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::STATUS_BAD_REQUEST;

    #[test]
    fn choice_response_has_every_section() {
        let out = choose_arm_op(&arms_request(0.0, &[(3, 0.2), (4, 0.7)])).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!((r.u32().unwrap(), r.u8().unwrap()), (1, 0));
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!((r.f64().unwrap(), r.f64().unwrap()), (0.2, 0.7));
        assert!(r.str().unwrap().contains("highest of 2 arms"));
        r.finish().unwrap();
        let e = choose_arm_op(&arms_request(1.0, &[])).unwrap_err();
        assert_eq!((e.code, e.details[0].as_str()), (STATUS_BAD_ARMS, ""));
        assert_eq!(choose_arm_op(&[0; 9]).unwrap_err().code, STATUS_BAD_REQUEST);
    }

    #[test]
    fn restart_errors_name_the_field() {
        let p = RestartPolicy {
            maximize: false,
            tolerance: 0.0,
            patience: 0,
            max_population: 0,
        };
        let e = restart_rule_op(&restart_request(&p, 4, &[1.0])).unwrap_err();
        assert_eq!(
            (e.code, e.details[0].as_str()),
            (STATUS_BAD_POLICY, "patience")
        );
    }
}

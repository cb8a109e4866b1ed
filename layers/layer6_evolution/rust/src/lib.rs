//! Layer 6 (Evolution) core: the bandit's arm choice (UCB1) and the
//! stagnation/restart rule (IPOP: restart with a doubled population).
//!
//! The same sources build natively (tests) and, through the `evolution_wasm`
//! face crate, into the WASM module the Python service calls (see [`api`] for
//! the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod bandit;
pub mod restart;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use bandit::{choose_arm, Arm, BanditError, Choice};
pub use restart::{restart_rule, Decision, RestartError, RestartPolicy, Verdict};

#[cfg(test)]
mod vectors;

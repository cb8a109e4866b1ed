//! Layer 8 (Resources) core: the allocation solver (requests onto nodes and
//! their devices, best fit) and the cost computation (rate x units x hours,
//! split by resource kind).
//!
//! The same sources build natively (tests) and, through the `resources_wasm`
//! face crate, into the WASM module the Python service calls (see [`api`] for
//! the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amounts;
pub mod api;
pub mod cost;
pub mod solver;
#[cfg(test)]
mod vectors;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use amounts::{Amounts, Dimension, DIMENSIONS};
pub use cost::{price, Cost, CostError, Rates};
pub use solver::{solve, Device, Mode, Node, Outcome};

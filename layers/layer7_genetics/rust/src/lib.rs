//! Layer 7 (Genetics) core: genome validation (length, bounds, finiteness),
//! population diversity and the default fitness formula.
//!
//! The same sources build natively (tests) and, through the `genetics_wasm`
//! face crate, into the WASM module the Python service calls (see [`api`] for
//! the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod fitness;
pub mod genome;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use fitness::{fitness, FitnessError, KpiInputs};
pub use genome::{check_bounds, check_population, diversity, Bounds, Diversity, GenomeError};

#[cfg(test)]
mod vectors;

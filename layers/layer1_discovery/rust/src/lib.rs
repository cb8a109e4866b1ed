//! Layer 1 (Discovery) core: statistics over sliding windows of observations
//! and threshold evaluation producing alerts with severities.
//!
//! The same sources build natively (tests) and, through the `discovery_wasm`
//! face crate, into the WASM module the Python service calls (see [`api`] for
//! the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod threshold;
pub mod window;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use threshold::{evaluate, Alert, Comparison, Observation, Severity, Threshold};
pub use window::{SlidingWindow, WindowError, WindowStats};

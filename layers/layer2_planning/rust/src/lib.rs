//! Layer 2 (Planning) core: the task dependency graph (cycle detection,
//! topological order, levels), critical-path analysis and the timeline,
//! resource sizing from the host's capacity, and risk scoring.
//!
//! The same sources build natively (tests) and, through the `planning_wasm`
//! face crate, into the WASM module the Python service calls (see [`api`] for
//! the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod dag;
pub mod resources;
pub mod risk;
pub mod schedule;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use dag::{Dag, DagError, TaskSpec};
pub use resources::{parallel_limit, peak_by_layer, size_tasks, Capacity, Resources};
pub use risk::{level, rank, score, RiskLevel};
pub use schedule::{critical_path, schedule, Cpm, Schedule};

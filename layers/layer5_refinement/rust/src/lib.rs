//! Layer 5 (Refinement) core: the layer's decision logic.
//!
//! * [`special`]: `ln Γ`, the regularized incomplete beta and gamma
//!   functions, the Student-t and normal distributions;
//! * [`welch`]: Welch's t-test (Welch–Satterthwaite df, two-sided p),
//!   Cohen's d, Hedges' g with its confidence interval, the sample size per
//!   arm for a target power;
//! * [`paired`]: the paired t-test and the Wilcoxon signed-rank test on
//!   per-unit differences;
//! * [`sequential`]: the always-valid mSPRT on paired differences;
//! * [`decision`]: the A/B rule by design (unpaired / paired at the planned
//!   size, or sequential after every pair), with guardrail vetoes;
//! * [`anomaly`]: z-score and EWMA anomaly rules, the least-squares trend;
//! * [`trigger`]: when a module's KPIs call for evolution, and why.
//!
//! The same sources build natively (tests) and, through the
//! `refinement_wasm` face crate, into the WASM module the Python service
//! calls (see [`api`] for the operations).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod api;
pub mod decision;
pub mod paired;
pub mod sequential;
pub mod special;
pub mod trigger;
pub mod welch;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

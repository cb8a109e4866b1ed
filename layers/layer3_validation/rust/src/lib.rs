//! Layer 3 (Validation) core: a WASM binary parser ([`wasm`], with
//! [`leb128`]), the module policy ([`module_policy`]), dependency sanity of
//! plans ([`plan_checks`]) and SHA-256 ([`sha256`], FIPS 180-4), std only.
//!
//! The same sources build natively (tests) and, through the
//! `validation_wasm` face crate, into the WASM module the Python service
//! calls (see [`api`] for the operations and [`wire`] for their byte format).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod findings;
pub mod leb128;
pub mod module_policy;
pub mod plan_checks;
pub mod sha256;
pub mod wasm;

/// The byte format of requests and responses (the shared `chimera_wire` crate).
pub use chimera_wire as wire;

pub use findings::{Family, Finding, Severity};
pub use module_policy::{vet, ModulePolicy, Vetting};
pub use plan_checks::{check_dependencies, PlanTask};
pub use wasm::{parse, Export, ExternKind, Import, Memory, ModuleInfo, ParseError};

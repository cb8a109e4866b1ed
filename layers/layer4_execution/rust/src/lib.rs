//! Layer-4 workload kernel: genome-driven job placement, built natively
//! (library + tests) and to `execution_core_module.wasm` from the same sources.
//!
//! The kernel places jobs (size, duration, priority) on a budget of machines
//! (see [`packer`]); the genome ([`genome`]) weights the placement score and
//! sets the search effort, so different genomes give measurably different
//! quality and, through effort, different fuel. Everything is deterministic
//! given (params, input); there is no randomness at run time.
//!
//! The face crate (`rust/wasm`, `execution_wasm`) exports it as the Chimera
//! guest ABI v1 (see the `guest_abi` crate): `memory`, `chimera_abi_version`,
//! `chimera_alloc`, `chimera_run`, `chimera_result_ptr`,
//! `chimera_result_len`. Params are the 8-value genome,
//! input is an [`instance`] encoding, and the result record holds one
//! objective (quality, higher is better) plus these metrics:
//! `quality`, `machines_used`, `machine_hours`, `utilization`,
//! `wasted_capacity`, `accepted_jobs`, `rejected_jobs`,
//! `accepted_priority_fraction`, `lookahead`, `improve_passes`,
//! `relocations`, `score_evaluations`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod genome;
pub mod instance;
pub mod packer;

use guest_abi::{GuestOutput, KernelError};

pub use genome::{Genome, BAD_GENOME, GENOME_LEN, GOOD_GENOME};
pub use instance::{generate, Instance, Job};

/// Runs the kernel: decode genome and instance, place, report.
pub fn run(params: &[f64], input: &[u8]) -> Result<GuestOutput, KernelError> {
    let genome = Genome::from_params(params).map_err(|e| KernelError::invalid_params(e.0))?;
    let inst = Instance::decode(input).map_err(|e| KernelError::invalid_input(e.0))?;
    let placement = packer::place(&inst, &genome);
    let r = placement.report(&inst);
    Ok(GuestOutput::with_objectives(vec![r.quality])
        .metric("quality", r.quality)
        .metric("machines_used", r.machines_used)
        .metric("machine_hours", r.machine_hours)
        .metric("utilization", r.utilization)
        .metric("wasted_capacity", 1.0 - r.utilization)
        .metric("accepted_jobs", r.accepted_jobs)
        .metric("rejected_jobs", r.rejected_jobs)
        .metric("accepted_priority_fraction", r.accepted_priority_fraction)
        .metric("lookahead", genome.lookahead as f64)
        .metric("improve_passes", placement.passes_run as f64)
        .metric("relocations", placement.relocations as f64)
        .metric("score_evaluations", placement.evaluations as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_abi::Status;

    #[test]
    fn run_reports_quality_and_metrics() {
        let input = generate(5, 100, 100, 110).encode();
        let out = run(&GOOD_GENOME, &input).unwrap();
        assert_eq!(out.objectives.len(), 1);
        assert_eq!(out.get("quality"), Some(out.objectives[0]));
        assert_eq!(out.metrics.len(), 12);
        assert_eq!(
            out.get("accepted_jobs").unwrap() + out.get("rejected_jobs").unwrap(),
            100.0
        );
        let bad = run(&BAD_GENOME, &input).unwrap();
        assert!(out.objectives[0] > bad.objectives[0]);
    }

    #[test]
    fn run_rejects_bad_params_and_input() {
        let input = generate(5, 10, 100, 110).encode();
        assert_eq!(
            run(&[1.0], &input).unwrap_err().status,
            Status::InvalidParams
        );
        assert_eq!(
            run(&GOOD_GENOME, b"xyz").unwrap_err().status,
            Status::InvalidInput
        );
    }
}

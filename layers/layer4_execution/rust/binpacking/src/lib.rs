//! Layer-4 kernel for online 1-D bin packing on the public protocol of
//! Romera-Paredes et al. (Nature 2024, Table 1), built natively (library +
//! tests) and to `binpacking_module.wasm` from the same sources.
//!
//! Items arrive one at a time, in the given order. Each goes into the open
//! bin with room whose **priority** is highest, or into a new bin. The
//! priority is a function of the item and the bin, parameterised by the
//! genome ([`genome`]): First Fit and Best Fit are exact special cases
//! ([`genome::FIRST_FIT`], [`genome::BEST_FIT`]). The score is the excess of
//! bins used over the L1 bound `ceil(sum(items) / capacity)`.
//!
//! The face crate (`rust/binpacking/wasm`) exports it as the Chimera guest
//! ABI v1 (see the `guest_abi` crate). Params are the genome, input is an
//! [`instance`] encoding, and the result record holds one objective (the
//! excess over L1 in %, lower is better) plus these metrics: `excess_pct`,
//! `bins_used`, `l1_bound`, `items`, `priority_evaluations`.
//!
//! Everything is deterministic given (params, input). The JAX twin
//! (`chimera.binpacking.twin`) reproduces the bin count exactly; the rules it
//! must follow are written down in [`pack`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod genome;
pub mod instance;
pub mod pack;

use guest_abi::{GuestOutput, KernelError};

pub use genome::{Genome, BEST_FIT, FIRST_FIT, GENOME_LEN, SEARCH_LEN};
pub use instance::Instance;
pub use pack::{pack, Packing};

/// Runs the kernel: decode genome and instance, pack, report.
pub fn run(params: &[f64], input: &[u8]) -> Result<GuestOutput, KernelError> {
    let genome = Genome::from_params(params).map_err(KernelError::invalid_params)?;
    let instance = Instance::decode(input).map_err(KernelError::invalid_input)?;
    let packing = pack(&instance, &genome);
    let excess_pct = packing.excess_pct();
    Ok(GuestOutput::with_objectives(vec![excess_pct])
        .metric("excess_pct", excess_pct)
        .metric("bins_used", packing.bins_used as f64)
        .metric("l1_bound", packing.l1_bound as f64)
        .metric("items", instance.items.len() as f64)
        .metric("priority_evaluations", packing.priority_evaluations as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_abi::Status;

    fn input(capacity: u32, items: &[u32]) -> Vec<u8> {
        Instance::new(capacity, items.to_vec()).unwrap().encode()
    }

    #[test]
    fn run_reports_bins_bound_and_excess() {
        let out = run(&BEST_FIT, &input(10, &[6, 5, 4, 5])).unwrap();
        // Best Fit: [6,4] [5,5] -> 2 bins, L1 = ceil(20/10) = 2.
        assert_eq!(out.get("bins_used"), Some(2.0));
        assert_eq!(out.get("l1_bound"), Some(2.0));
        assert_eq!(out.get("excess_pct"), Some(0.0));
        assert_eq!(out.objectives, vec![0.0]);
        assert_eq!(out.get("items"), Some(4.0));
        assert_eq!(out.metrics.len(), 5);
        // First Fit: 6 -> bin0, 5 -> bin1, 4 -> bin0, 5 -> bin1: also 2 bins.
        let ff = run(&FIRST_FIT, &input(10, &[6, 5, 4, 5])).unwrap();
        assert_eq!(ff.get("bins_used"), Some(2.0));
    }

    #[test]
    fn run_rejects_bad_params_and_input() {
        let ok = input(10, &[3]);
        assert_eq!(run(&[1.0], &ok).unwrap_err().status, Status::InvalidParams);
        let mut nan = BEST_FIT;
        nan[3] = f64::NAN;
        let err = run(&nan, &ok).unwrap_err();
        assert_eq!(err.status, Status::InvalidParams);
        assert!(err.message.contains("residual_1"), "{}", err.message);
        assert_eq!(
            run(&BEST_FIT, b"xyz").unwrap_err().status,
            Status::InvalidInput
        );
    }
}

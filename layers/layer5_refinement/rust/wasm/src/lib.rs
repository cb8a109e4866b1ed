//! WASM face of `refinement_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `refinement_decide` | `(ptr, len) -> status` | [`refinement_core::api::decide_experiment`] |
//! | `refinement_sample_size` | `(ptr, len) -> status` | [`refinement_core::api::sample_size`] |
//! | `refinement_patterns` | `(ptr, len) -> status` | [`refinement_core::api::patterns`] |
//! | `refinement_should_evolve` | `(ptr, len) -> status` | [`refinement_core::api::should_evolve`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// The A/B decision rule; see `refinement_core::api::decide_experiment`.
    refinement_decide => refinement_core::api::decide_experiment;
    /// Sample size per arm; see `refinement_core::api::sample_size`.
    refinement_sample_size => refinement_core::api::sample_size;
    /// Anomalies and trend; see `refinement_core::api::patterns`.
    refinement_patterns => refinement_core::api::patterns;
    /// The evolution trigger; see `refinement_core::api::should_evolve`.
    refinement_should_evolve => refinement_core::api::should_evolve;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use refinement_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.f64(0.05).f64(0.8).f64(0.5);
        let mut arena = Arena::new();
        assert_eq!(
            call(
                &mut arena,
                &w.into_bytes(),
                refinement_core::api::sample_size
            ),
            0
        );
        assert_eq!(arena.live_buffers(), 0);
        assert_eq!(Reader::new(arena.result()).u64().unwrap(), 64);
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(refinement_core::api::decide_experiment);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

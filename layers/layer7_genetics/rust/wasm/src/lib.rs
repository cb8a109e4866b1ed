//! WASM face of `genetics_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `genetics_check_population` | `(ptr, len) -> status` | [`genetics_core::api::check_population_op`] |
//! | `genetics_fitness` | `(ptr, len) -> status` | [`genetics_core::api::fitness_op`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// Bounds and genome checks, then diversity; see `genetics_core::api::check_population_op`.
    genetics_check_population => genetics_core::api::check_population_op;
    /// The default fitness formula; see `genetics_core::api::fitness_op`.
    genetics_fitness => genetics_core::api::fitness_op;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use genetics_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.count(1).f64(1.0).f64(0.0).f64(2000.0).f64(0.0);
        let req = w.into_bytes();
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &req, genetics_core::api::fitness_op), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.u32().unwrap(), 1);
        assert!((r.f64().unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(genetics_core::api::check_population_op);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

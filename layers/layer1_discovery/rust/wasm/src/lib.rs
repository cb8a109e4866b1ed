//! WASM face of `discovery_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `discovery_window_stats` | `(ptr, len) -> status` | [`discovery_core::api::window_stats`] |
//! | `discovery_evaluate` | `(ptr, len) -> status` | [`discovery_core::api::evaluate`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// Window statistics; see `discovery_core::api::window_stats`.
    discovery_window_stats => discovery_core::api::window_stats;
    /// Threshold evaluation; see `discovery_core::api::evaluate`.
    discovery_evaluate => discovery_core::api::evaluate;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use discovery_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.f64(0.5)
            .u32(0)
            .count(1)
            .str("x")
            .count(2)
            .f64(1.0)
            .f64(3.0);
        let req = w.into_bytes();
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &req, discovery_core::api::window_stats), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "x");
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(discovery_core::api::evaluate);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

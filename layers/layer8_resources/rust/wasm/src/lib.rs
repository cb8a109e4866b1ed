//! WASM face of `resources_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `resources_price` | `(ptr, len) -> status` | [`resources_core::api::price_items`] |
//! | `resources_solve` | `(ptr, len) -> status` | [`resources_core::api::solve_requests`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// Cost per item; see `resources_core::api::price_items`.
    resources_price => resources_core::api::price_items;
    /// Allocation solver; see `resources_core::api::solve_requests`.
    resources_solve => resources_core::api::solve_requests;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use resources_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.f64(1.0).f64(0.0).f64(0.0).f64(0.0).f64(0.0).count(1);
        w.f64(2.0).u64(0).u32(0).u64(0).u64(0).u32(60);
        let req = w.into_bytes();
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &req, resources_core::api::price_items), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.f64().unwrap(), 2.0);
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(resources_core::api::solve_requests);
        assert_rejects_bad_buffers(resources_core::api::price_items);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

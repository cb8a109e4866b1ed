//! WASM face of `planning_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `planning_schedule` | `(ptr, len) -> status` | [`planning_core::api::plan_schedule`] |
//! | `planning_score_risks` | `(ptr, len) -> status` | [`planning_core::api::score_risks`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// Graph validation, sizing and scheduling; see `planning_core::api::plan_schedule`.
    planning_schedule => planning_core::api::plan_schedule;
    /// Risk scoring; see `planning_core::api::score_risks`.
    planning_score_risks => planning_core::api::score_risks;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use planning_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.count(1).f64(0.5).u32(3);
        let req = w.into_bytes();
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &req, planning_core::api::score_risks), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 0);
        assert_eq!(r.f64().unwrap(), 1.5);
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(planning_core::api::plan_schedule);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

//! WASM face of `evolution_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `evolution_choose_arm` | `(ptr, len) -> status` | [`evolution_core::api::choose_arm_op`] |
//! | `evolution_restart_rule` | `(ptr, len) -> status` | [`evolution_core::api::restart_rule_op`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// UCB1 arm choice; see `evolution_core::api::choose_arm_op`.
    evolution_choose_arm => evolution_core::api::choose_arm_op;
    /// Stagnation and IPOP restarts; see `evolution_core::api::restart_rule_op`.
    evolution_restart_rule => evolution_core::api::restart_rule_op;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use evolution_core::wire::{Reader, Writer};

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.f64(0.0).count(2).u32(1).f64(0.25).u32(1).f64(0.75);
        let req = w.into_bytes();
        let mut arena = Arena::new();
        assert_eq!(
            call(&mut arena, &req, evolution_core::api::choose_arm_op),
            0
        );
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.u32().unwrap(), 1);
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(evolution_core::api::restart_rule_op);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

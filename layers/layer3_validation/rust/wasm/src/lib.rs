//! WASM face of `validation_core`: the Chimera core ABI (version 1), see
//! `chimera_wasm_export` for the fixed exports and the call sequence.
//!
//! Operations:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `validation_sha256` | `(ptr, len) -> status` | [`validation_core::api::sha256`] |
//! | `validation_vet_module` | `(ptr, len) -> status` | [`validation_core::api::vet_module`] |
//! | `validation_check_dependencies` | `(ptr, len) -> status` | [`validation_core::api::check_plan_dependencies`] |
// `#[no_mangle]` counts as unsafe code; `core_exports!` allows it on the exports only.
#![deny(unsafe_code)]

chimera_wasm_export::core_exports! {
    /// SHA-256; see `validation_core::api::sha256`.
    validation_sha256 => validation_core::api::sha256;
    /// Module vetting; see `validation_core::api::vet_module`.
    validation_vet_module => validation_core::api::vet_module;
    /// Plan dependency sanity; see `validation_core::api::check_plan_dependencies`.
    validation_check_dependencies => validation_core::api::check_plan_dependencies;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera_wasm_export::testing::{assert_rejects_bad_buffers, call};
    use chimera_wasm_export::Arena;
    use validation_core::wire::Reader;

    #[test]
    fn arena_runs_an_op_and_frees_its_input() {
        let req = b"abc".to_vec();
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &req, validation_core::api::sha256), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert!(r.str().unwrap().starts_with("ba7816bf"));
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        assert_rejects_bad_buffers(validation_core::api::vet_module);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

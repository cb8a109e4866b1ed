//! WASM face of `execution_core`: the guest ABI exports (see the `guest_abi`
//! crate for the contract) over [`execution_core::run`].
//!
//! rustc counts `#[no_mangle]` as unsafe code because exported symbol names
//! could clash at link time; that is the only reason this crate allows it.
//! There are no `unsafe` blocks; every function forwards to the safe arena in
//! `guest_abi::guest`. The functions are compiled natively too, so tests call
//! exactly what the wasm module exports.
#![allow(unsafe_code)]

use guest_abi::guest;

/// `chimera_abi_version() -> i32`.
#[no_mangle]
pub extern "C" fn chimera_abi_version() -> i32 {
    guest_abi::ABI_VERSION
}

/// `chimera_alloc(len) -> i32`: a fresh buffer's address, 0 on failure.
#[no_mangle]
pub extern "C" fn chimera_alloc(len: i32) -> i32 {
    guest::export_alloc(len)
}

/// `chimera_run(params_ptr, params_len, input_ptr, input_len) -> status`.
#[no_mangle]
pub extern "C" fn chimera_run(p_ptr: i32, p_len: i32, i_ptr: i32, i_len: i32) -> i32 {
    guest::export_run(p_ptr, p_len, i_ptr, i_len, execution_core::run)
}

/// `chimera_result_ptr() -> i32`.
#[no_mangle]
pub extern "C" fn chimera_result_ptr() -> i32 {
    guest::export_result_ptr()
}

/// `chimera_result_len() -> i32`.
#[no_mangle]
pub extern "C" fn chimera_result_len() -> i32 {
    guest::export_result_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use execution_core::{generate, run, GOOD_GENOME};
    use guest_abi::{encode_f64s, GuestOutput, Status};

    /// The exported entry points, driven the way the host drives them.
    #[test]
    fn abi_round_trip_through_exports() {
        assert_eq!(chimera_abi_version(), guest_abi::ABI_VERSION);
        let params = encode_f64s(&GOOD_GENOME);
        let input = generate(9, 50, 100, 110).encode();
        let p = chimera_alloc(params.len() as i32);
        let i = chimera_alloc(input.len() as i32);
        guest::with_arena(|a| {
            a.buffer_mut(p, params.len() as i32)
                .unwrap()
                .copy_from_slice(&params);
            a.buffer_mut(i, input.len() as i32)
                .unwrap()
                .copy_from_slice(&input);
        });
        let status = chimera_run(p, params.len() as i32, i, input.len() as i32);
        assert_eq!(status, 0);
        assert!(chimera_result_ptr() != 0);
        let bytes = guest::with_arena(|a| a.result().to_vec());
        assert_eq!(bytes.len() as i32, chimera_result_len());
        let out = GuestOutput::decode(&bytes).unwrap();
        assert_eq!(out, run(&GOOD_GENOME, &input).unwrap());

        let p = chimera_alloc(8);
        let i = chimera_alloc(0);
        let status = chimera_run(p, 8, i, 0);
        assert_eq!(status, Status::InvalidParams.code());
        let msg = guest::with_arena(|a| String::from_utf8(a.result().to_vec()).unwrap());
        assert!(msg.contains("expected 8"), "{msg}");
    }
}

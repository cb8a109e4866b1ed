//! The guest ABI exports (see the `guest_abi` crate for the contract).
//!
//! This is the crate's only `unsafe_code` exception: rustc counts
//! `#[no_mangle]` as unsafe because exported symbol names could clash at
//! link time. There are no `unsafe` blocks; every function forwards to the
//! safe arena in `guest_abi::guest`. The functions are compiled natively too,
//! so tests call exactly what the wasm module exports.
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
    guest::export_run(p_ptr, p_len, i_ptr, i_len, crate::run)
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

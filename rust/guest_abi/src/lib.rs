//! Chimera guest ABI, version 1.
//!
//! This crate is the single definition of how the layer-4 host (Python
//! wasmtime, `chimera.execution.abi` mirrors it) talks to a workload module
//! compiled for `wasm32-unknown-unknown`. The module has **no imports**: every
//! capability it has is the linear memory the host hands it, so a module can
//! compute but never touch the host.
//!
//! # Exports a guest module must provide
//!
//! | export                 | signature                         | meaning |
//! |------------------------|-----------------------------------|---------|
//! | `memory`               | linear memory                     | the only data channel |
//! | `chimera_abi_version`  | `() -> i32`                       | returns [`ABI_VERSION`] (1) |
//! | `chimera_alloc`        | `(len: i32) -> i32`               | address of a fresh guest buffer of `len` bytes, 0 on failure |
//! | `chimera_run`          | `(p_ptr, p_len, i_ptr, i_len: i32) -> i32` | runs the kernel; returns a [`Status`] code (0 = ok) |
//! | `chimera_result_ptr`   | `() -> i32`                       | address of the result bytes of the last run |
//! | `chimera_result_len`   | `() -> i32`                       | length of the result bytes of the last run |
//!
//! Addresses and lengths are wasm `i32` values carrying unsigned 32-bit
//! numbers (the host reads them as `u32`).
//!
//! # Call sequence (one instance per task)
//!
//! 1. `p = chimera_alloc(len(params))`, write the params bytes at `p`;
//! 2. `i = chimera_alloc(len(input))`, write the input bytes at `i`;
//! 3. `s = chimera_run(p, len(params), i, len(input))` — the guest consumes
//!    (frees) both buffers;
//! 4. read `chimera_result_len()` bytes at `chimera_result_ptr()`.
//!    If `s == 0` they are a result record ([`GuestOutput`]); otherwise they
//!    are a UTF-8 error message explaining the status.
//!
//! The host must re-read the memory size after every call, since any call may
//! grow memory. Instances are meant to be used once and dropped, so there is
//! no `free` export.
//!
//! # Byte formats (all little-endian)
//!
//! * **params** (the genome): `f64` array, `len % 8 == 0`.
//! * **input**: kernel specific bytes (see the kernel crate's docs).
//! * **result record**: see [`codec`] — magic `b"CHR1"`, `u32` objective
//!   count, that many `f64`, `u32` metric count, then per metric `u16` name
//!   length, UTF-8 name, `f64` value. Values are finite; names are unique,
//!   1..=255 bytes.
//!
//! # Safety
//!
//! This crate has no `unsafe` code. The guest never dereferences a raw
//! pointer: buffers are owned `Vec<u8>`s in a per-thread arena
//! ([`guest::Arena`]) looked up by the address they were handed out at; the
//! host writes into them from outside, like any FFI peer writing into memory
//! whose address was exposed to it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod guest;

pub use codec::{decode_f64s, encode_f64s, DecodeError, EncodeError, GuestOutput};
pub use guest::{Arena, KernelError};

/// Version of this ABI, returned by the `chimera_abi_version` export.
pub const ABI_VERSION: i32 = 1;

/// Status codes returned by the `chimera_run` export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The run succeeded; the result bytes are a result record.
    Ok,
    /// The params bytes were malformed or rejected by the kernel.
    InvalidParams,
    /// The input bytes were malformed or rejected by the kernel.
    InvalidInput,
    /// The kernel failed while running.
    KernelFailure,
    /// A (pointer, length) pair did not match a buffer from `chimera_alloc`.
    UnknownBuffer,
    /// The kernel produced a result that cannot be encoded.
    BadResult,
}

impl Status {
    /// All statuses, in code order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::InvalidParams,
        Status::InvalidInput,
        Status::KernelFailure,
        Status::UnknownBuffer,
        Status::BadResult,
    ];

    /// The wire code of this status.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::InvalidParams => 1,
            Status::InvalidInput => 2,
            Status::KernelFailure => 3,
            Status::UnknownBuffer => 4,
            Status::BadResult => 5,
        }
    }

    /// The status for a wire code, if it is known.
    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// A stable upper-case name, the same one the Python host uses.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::InvalidParams => "INVALID_PARAMS",
            Status::InvalidInput => "INVALID_INPUT",
            Status::KernelFailure => "KERNEL_FAILURE",
            Status::UnknownBuffer => "UNKNOWN_BUFFER",
            Status::BadResult => "BAD_RESULT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip_and_are_stable() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.code(), i as i32);
            assert_eq!(Status::from_code(s.code()), Some(*s));
        }
        assert_eq!(Status::from_code(99), None);
        assert_eq!(Status::Ok.name(), "OK");
        assert_eq!(Status::BadResult.name(), "BAD_RESULT");
    }
}

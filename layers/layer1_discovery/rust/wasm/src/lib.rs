//! WASM face of `discovery_core`: the Chimera core ABI (version 1).
//!
//! The module has no imports. Exports:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | linear memory | the only data channel |
//! | `chimera_core_abi_version` | `() -> i32` | 1 |
//! | `chimera_alloc` | `(len) -> ptr` | a fresh guest buffer of `len` bytes |
//! | `chimera_result_ptr` / `chimera_result_len` | `() -> i32` | bytes of the last result |
//! | `discovery_window_stats` | `(ptr, len) -> status` | [`discovery_core::api::window_stats`] |
//! | `discovery_evaluate` | `(ptr, len) -> status` | [`discovery_core::api::evaluate`] |
//!
//! Call sequence: `p = chimera_alloc(n)`, the host writes the request at `p`,
//! `s = op(p, n)` (the guest frees the request), then the host reads
//! `chimera_result_len()` bytes at `chimera_result_ptr()`: the response when
//! `s == 0`, otherwise an error payload (`str` message, `u32` count, that many
//! `str` details). Status 4 means `(p, n)` did not come from `chimera_alloc`.
//! Same shape as `rust/guest_abi`, whose `chimera_run` is specialised for
//! genome kernels (f64 params, objective records) and so does not fit here.
// `#[no_mangle]` counts as unsafe code; it is allowed on the exports only.
#![deny(unsafe_code)]

use discovery_core::wire::ApiError;
use std::cell::RefCell;

/// Version of the core ABI described above.
pub const CORE_ABI_VERSION: i32 = 1;
/// Status: the buffer was not handed out by `chimera_alloc`.
pub const STATUS_UNKNOWN_BUFFER: i32 = 4;

#[derive(Default)]
struct Arena {
    buffers: Vec<Vec<u8>>,
    result: Vec<u8>,
}

fn address_of(buf: &[u8]) -> i32 {
    buf.as_ptr() as usize as u32 as i32
}

impl Arena {
    fn alloc(&mut self, len: i32) -> i32 {
        let len = match usize::try_from(len) {
            Ok(len) => len,
            Err(_) => return 0,
        };
        let buf = vec![0u8; len.max(1)];
        let addr = address_of(&buf);
        self.buffers.push(buf);
        addr
    }

    fn take(&mut self, addr: i32, len: i32) -> Option<Vec<u8>> {
        let len = usize::try_from(len).ok()?;
        let i = self
            .buffers
            .iter()
            .position(|b| address_of(b) == addr && len <= b.len())?;
        let mut buf = self.buffers.swap_remove(i);
        buf.truncate(len);
        Some(buf)
    }

    fn run(&mut self, ptr: i32, len: i32, op: fn(&[u8]) -> Result<Vec<u8>, ApiError>) -> i32 {
        let (status, bytes) = match self.take(ptr, len) {
            Some(input) => match op(&input) {
                Ok(out) => (0, out),
                Err(e) => (e.code, e.encode()),
            },
            None => {
                let e = ApiError::new(
                    STATUS_UNKNOWN_BUFFER,
                    "pointer/length was not returned by chimera_alloc",
                );
                (e.code, e.encode())
            }
        };
        // A one-byte reserve keeps an empty result's address distinct and non-null.
        self.result = Vec::with_capacity(bytes.len().max(1));
        self.result.extend_from_slice(&bytes);
        status
    }
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena::default());
}

fn with_arena<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    ARENA.with(|a| f(&mut a.borrow_mut()))
}

/// Returns [`CORE_ABI_VERSION`].
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn chimera_core_abi_version() -> i32 {
    CORE_ABI_VERSION
}

/// Allocates a request buffer of `len` bytes; 0 for a negative length.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn chimera_alloc(len: i32) -> i32 {
    with_arena(|a| a.alloc(len))
}

/// Address of the last result.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn chimera_result_ptr() -> i32 {
    with_arena(|a| address_of(&a.result))
}

/// Length of the last result.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn chimera_result_len() -> i32 {
    with_arena(|a| a.result.len() as i32)
}

/// Window statistics; see `discovery_core::api::window_stats`.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn discovery_window_stats(ptr: i32, len: i32) -> i32 {
    with_arena(|a| a.run(ptr, len, discovery_core::api::window_stats))
}

/// Threshold evaluation; see `discovery_core::api::evaluate`.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn discovery_evaluate(ptr: i32, len: i32) -> i32 {
    with_arena(|a| a.run(ptr, len, discovery_core::api::evaluate))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut arena = Arena::default();
        let p = arena.alloc(req.len() as i32);
        let i = arena.buffers.len() - 1;
        arena.buffers[i].copy_from_slice(&req);
        let status = arena.run(p, req.len() as i32, discovery_core::api::window_stats);
        assert_eq!(status, 0);
        assert!(arena.buffers.is_empty());
        let mut r = Reader::new(&arena.result);
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "x");
    }

    #[test]
    fn unknown_buffers_and_errors_produce_error_payloads() {
        let mut arena = Arena::default();
        assert_eq!(
            arena.run(12345, 3, discovery_core::api::evaluate),
            STATUS_UNKNOWN_BUFFER
        );
        let mut r = Reader::new(&arena.result);
        assert!(r.str().unwrap().contains("chimera_alloc"));
        let p = arena.alloc(1);
        assert_ne!(arena.run(p, 1, discovery_core::api::evaluate), 0);
        assert_eq!(arena.alloc(-1), 0);
        assert_eq!(chimera_core_abi_version(), 1);
    }
}

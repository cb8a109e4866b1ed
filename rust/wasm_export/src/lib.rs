//! The Chimera core ABI (version 1): how a layer core's WASM face crate
//! exports its byte-level operations to the Python host (`chimera.wasm`).
//!
//! The module has no imports. Exports:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | linear memory | the only data channel |
//! | `chimera_core_abi_version` | `() -> i32` | [`CORE_ABI_VERSION`] (1) |
//! | `chimera_core_alloc` | `(len) -> ptr` | a fresh guest buffer of `len` bytes |
//! | `chimera_core_result_ptr` / `chimera_core_result_len` | `() -> i32` | bytes of the last result |
//! | one per operation | `(ptr, len) -> status` | an [`Operation`] of the layer's core |
//!
//! Call sequence: `p = chimera_core_alloc(n)`, the host writes the request at `p`,
//! `s = op(p, n)` (the guest frees the request), then the host reads
//! `chimera_core_result_len()` bytes at `chimera_core_result_ptr()`: the response when
//! `s == 0`, otherwise an error payload (`str` message, `u32` count, that many
//! `str` details; see [`ApiError::encode`]). Status [`STATUS_UNKNOWN_BUFFER`]
//! (4) means `(p, n)` did not come from `chimera_core_alloc`.
//!
//! Buffers live in the per-thread arena of `rust/guest_abi`
//! ([`guest_abi::guest::Arena`]), the same one behind layer 4's guest ABI;
//! only the call differs: layer 4's `chimera_run` is specialised for genome
//! kernels (f64 params, objective records), a core operation maps request
//! bytes to response bytes with the [`chimera_wire`] format.
//!
//! A face crate declares its exports with [`core_exports!`]:
//!
//! ```ignore
//! #![deny(unsafe_code)]
//! chimera_wasm_export::core_exports! {
//!     /// Window statistics; see `discovery_core::api::window_stats`.
//!     discovery_window_stats => discovery_core::api::window_stats;
//! }
//! ```
// `#[no_mangle]` counts as unsafe code: the macro allows it on the exports it
// generates (this crate's tests expand it), nothing else may use it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub use chimera_wire::ApiError;
use guest_abi::guest;
pub use guest_abi::guest::Arena;

/// Version of the core ABI described above.
pub const CORE_ABI_VERSION: i32 = 1;
/// Status: the buffer was not handed out by `chimera_core_alloc`.
pub const STATUS_UNKNOWN_BUFFER: i32 = 4;

/// A core operation: request bytes to response bytes, or an error whose code
/// becomes the export's status.
pub type Operation = fn(&[u8]) -> Result<Vec<u8>, ApiError>;

/// Runs `op` on the buffer at `(ptr, len)` in `arena`, frees that buffer and
/// stores the response (or error payload) as the arena's result; returns the
/// status (0 on success).
pub fn run(arena: &mut Arena, ptr: i32, len: i32, op: Operation) -> i32 {
    let (status, bytes) = match arena.take(ptr, len) {
        Some(input) => match op(&input) {
            Ok(out) => (0, out),
            Err(e) => (e.code, e.encode()),
        },
        None => {
            let e = ApiError::new(
                STATUS_UNKNOWN_BUFFER,
                "pointer/length was not returned by chimera_core_alloc",
            );
            (e.code, e.encode())
        }
    };
    arena.set_result(&bytes);
    status
}

/// Body of an operation export: [`run`] on this thread's arena.
pub fn export_op(ptr: i32, len: i32, op: Operation) -> i32 {
    guest::with_arena(|a| run(a, ptr, len, op))
}

/// Body of the `chimera_core_alloc` export.
pub fn export_alloc(len: i32) -> i32 {
    guest::export_alloc(len)
}

/// Body of the `chimera_core_result_ptr` export.
pub fn export_result_ptr() -> i32 {
    guest::export_result_ptr()
}

/// Body of the `chimera_core_result_len` export.
pub fn export_result_len() -> i32 {
    guest::export_result_len()
}

/// Native stand-ins for the host, shared by the face crates' tests.
pub mod testing {
    use super::{run, Arena, Operation, STATUS_UNKNOWN_BUFFER};
    use chimera_wire::Reader;

    /// Plays the host: allocates a buffer in `arena`, writes `request` into
    /// it and runs `op` on it. Returns the status; the response (or error
    /// payload) is then `arena.result()`.
    pub fn call(arena: &mut Arena, request: &[u8], op: Operation) -> i32 {
        let len = request.len() as i32;
        let p = arena.alloc(len);
        arena
            .buffer_mut(p, len)
            .expect("a buffer alloc just handed out")
            .copy_from_slice(request);
        run(arena, p, len, op)
    }

    /// Asserts how `op`'s export treats bad buffers: one `chimera_core_alloc` did
    /// not hand out is [`STATUS_UNKNOWN_BUFFER`] with a payload naming
    /// `chimera_core_alloc`; a one-byte request must be rejected by `op` (non-zero
    /// status); a negative allocation is address 0.
    pub fn assert_rejects_bad_buffers(op: Operation) {
        let mut arena = Arena::new();
        assert_eq!(run(&mut arena, 12345, 3, op), STATUS_UNKNOWN_BUFFER);
        let mut r = Reader::new(arena.result());
        assert!(r.str().unwrap().contains("chimera_core_alloc"));
        let p = arena.alloc(1);
        assert_ne!(run(&mut arena, p, 1, op), 0);
        assert_eq!(arena.alloc(-1), 0);
    }
}

/// Declares the core ABI exports of a face crate: the four fixed ones
/// (`chimera_core_abi_version`, `chimera_core_alloc`, `chimera_core_result_ptr`,
/// `chimera_core_result_len`) and one `extern "C" fn(ptr, len) -> status` per
/// `export_name => operation;` line (attributes such as doc comments before a
/// line go on its export). Each export carries `#[no_mangle]` and
/// `#[allow(unsafe_code)]`, so the calling crate can `#![deny(unsafe_code)]`.
#[macro_export]
macro_rules! core_exports {
    ($($(#[$attr:meta])* $export:ident => $op:path;)+) => {
        /// Returns the core ABI version (1).
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn chimera_core_abi_version() -> i32 {
            $crate::CORE_ABI_VERSION
        }

        /// Allocates a request buffer of `len` bytes; 0 for a negative length.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn chimera_core_alloc(len: i32) -> i32 {
            $crate::export_alloc(len)
        }

        /// Address of the last result.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn chimera_core_result_ptr() -> i32 {
            $crate::export_result_ptr()
        }

        /// Length of the last result.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn chimera_core_result_len() -> i32 {
            $crate::export_result_len()
        }

        $(
            $(#[$attr])*
            #[allow(unsafe_code)]
            #[no_mangle]
            pub extern "C" fn $export(ptr: i32, len: i32) -> i32 {
                $crate::export_op(ptr, len, $op)
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_rejects_bad_buffers, call};
    use super::*;
    use chimera_wire::{Reader, Writer};

    fn upper(input: &[u8]) -> Result<Vec<u8>, ApiError> {
        let mut r = Reader::new(input);
        let s = r.str()?;
        r.finish()?;
        let mut w = Writer::new();
        w.str(&s.to_uppercase());
        Ok(w.into_bytes())
    }

    fn refuse(_: &[u8]) -> Result<Vec<u8>, ApiError> {
        let mut e = ApiError::new(7, "refused");
        e.details = vec!["a".into(), "b".into()];
        Err(e)
    }

    mod exports {
        crate::core_exports! {
            /// Upper-cases a string.
            test_upper => super::upper;
            test_refuse => super::refuse;
        }
    }

    #[test]
    fn runs_an_op_and_frees_its_input() {
        let mut w = Writer::new();
        w.str("abc");
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, &w.into_bytes(), upper), 0);
        assert_eq!(arena.live_buffers(), 0);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.str().unwrap(), "ABC");
        r.finish().unwrap();
        assert_eq!(arena.result_len() as usize, arena.result().len());
    }

    #[test]
    fn errors_become_status_and_payload() {
        let mut arena = Arena::new();
        assert_eq!(call(&mut arena, b"", refuse), 7);
        let mut r = Reader::new(arena.result());
        assert_eq!(r.str().unwrap(), "refused");
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.str().unwrap(), "a");
        assert_eq!(r.str().unwrap(), "b");
        r.finish().unwrap();
        // A malformed request is the wire's status 1, with its reason.
        assert_eq!(
            call(&mut arena, b"\x01", upper),
            chimera_wire::STATUS_BAD_REQUEST
        );
        assert!(Reader::new(arena.result())
            .str()
            .unwrap()
            .contains("truncated"));
    }

    #[test]
    fn unknown_buffers_are_rejected() {
        assert_rejects_bad_buffers(upper);
        let mut arena = Arena::new();
        let p = arena.alloc(2);
        assert_eq!(run(&mut arena, p, 3, upper), STATUS_UNKNOWN_BUFFER);
        assert_eq!(arena.live_buffers(), 1, "a rejected buffer stays allocated");
    }

    #[test]
    fn generated_exports_use_the_thread_arena() {
        assert_eq!(exports::chimera_core_abi_version(), CORE_ABI_VERSION);
        let mut w = Writer::new();
        w.str("xy");
        let req = w.into_bytes();
        let p = exports::chimera_core_alloc(req.len() as i32);
        guest::with_arena(|a| {
            a.buffer_mut(p, req.len() as i32)
                .unwrap()
                .copy_from_slice(&req)
        });
        assert_eq!(exports::test_upper(p, req.len() as i32), 0);
        assert!(exports::chimera_core_result_ptr() != 0);
        let len = exports::chimera_core_result_len();
        let out = guest::with_arena(|a| a.result().to_vec());
        assert_eq!(out.len() as i32, len);
        assert_eq!(Reader::new(&out).str().unwrap(), "XY");
        let q = exports::chimera_core_alloc(0);
        assert_eq!(exports::test_refuse(q, 0), 7);
        assert_eq!(exports::test_refuse(q, 0), STATUS_UNKNOWN_BUFFER, "freed");
    }
}

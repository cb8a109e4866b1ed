//! Guest side of the ABI: the buffer arena behind `chimera_alloc` and the
//! dispatch behind `chimera_run`.
//!
//! A kernel crate exports the ABI by forwarding its `#[no_mangle]` functions
//! to [`export_alloc`], [`export_run`], [`export_result_ptr`] and
//! [`export_result_len`] (see the execution kernel's `exports` module). All
//! state lives in a per-thread [`Arena`]; on wasm32 there is one thread.

use crate::codec::{decode_f64s, GuestOutput};
use crate::Status;
use std::cell::RefCell;

/// A kernel failure: the status to return and a message for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Non-`Ok` status code reported to the host.
    pub status: Status,
    /// Human-readable reason, returned as the result bytes.
    pub message: String,
}

impl KernelError {
    /// The params (genome) were rejected.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        KernelError {
            status: Status::InvalidParams,
            message: message.into(),
        }
    }

    /// The task input was rejected.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        KernelError {
            status: Status::InvalidInput,
            message: message.into(),
        }
    }

    /// The kernel failed while running.
    pub fn failure(message: impl Into<String>) -> Self {
        KernelError {
            status: Status::KernelFailure,
            message: message.into(),
        }
    }
}

/// Owned guest buffers, found again by the address they were handed out at.
#[derive(Debug, Default)]
pub struct Arena {
    buffers: Vec<Vec<u8>>,
    result: Vec<u8>,
}

/// The address of a buffer as the host sees it (exact on wasm32; truncated
/// natively, where the arena is only exercised by tests).
fn address_of(buf: &[u8]) -> i32 {
    buf.as_ptr() as usize as u32 as i32
}

impl Arena {
    /// A fresh, empty arena.
    pub fn new() -> Self {
        Arena::default()
    }

    /// Allocates a zeroed buffer of `len` bytes and returns its address, or 0
    /// for a negative length. Zero-length requests still get a distinct,
    /// non-null address (one byte is reserved).
    pub fn alloc(&mut self, len: i32) -> i32 {
        let len = match usize::try_from(len) {
            Ok(len) => len,
            Err(_) => return 0,
        };
        let buf = vec![0u8; len.max(1)];
        let addr = address_of(&buf);
        self.buffers.push(buf);
        addr
    }

    fn find(&self, addr: i32, len: usize) -> Option<usize> {
        self.buffers
            .iter()
            .position(|b| address_of(b) == addr && len <= b.len())
    }

    /// The first `len` bytes of the buffer at `addr`, if it exists and is long enough.
    pub fn buffer(&self, addr: i32, len: i32) -> Option<&[u8]> {
        let len = usize::try_from(len).ok()?;
        self.find(addr, len).map(|i| &self.buffers[i][..len])
    }

    /// Mutable access for native tests, which play the host's part.
    pub fn buffer_mut(&mut self, addr: i32, len: i32) -> Option<&mut [u8]> {
        let len = usize::try_from(len).ok()?;
        let i = self.find(addr, len)?;
        Some(&mut self.buffers[i][..len])
    }

    /// Removes the buffer at `addr` and returns its first `len` bytes; `None`
    /// (and nothing removed) unless `alloc` handed out `addr` with at least
    /// `len` bytes.
    pub fn take(&mut self, addr: i32, len: i32) -> Option<Vec<u8>> {
        let n = usize::try_from(len).ok()?;
        let i = self.find(addr, n)?;
        let mut buf = self.buffers.swap_remove(i);
        buf.truncate(n);
        Some(buf)
    }

    /// Number of live buffers (tests check `run` frees its inputs).
    pub fn live_buffers(&self) -> usize {
        self.buffers.len()
    }

    /// Address of the last result bytes.
    pub fn result_ptr(&self) -> i32 {
        address_of(&self.result)
    }

    /// Length of the last result bytes.
    pub fn result_len(&self) -> i32 {
        self.result.len() as i32
    }

    /// The last result bytes.
    pub fn result(&self) -> &[u8] {
        &self.result
    }

    /// Replaces the result bytes with a copy of `bytes`.
    pub fn set_result(&mut self, bytes: &[u8]) {
        // A one-byte reserve keeps an empty result's address distinct and non-null.
        self.result = Vec::with_capacity(bytes.len().max(1));
        self.result.extend_from_slice(bytes);
    }

    /// Runs `kernel` on the two buffers, stores its encoded output (or error
    /// message) as the result, frees the buffers, and returns the status code.
    pub fn run<F>(&mut self, p_ptr: i32, p_len: i32, i_ptr: i32, i_len: i32, kernel: F) -> i32
    where
        F: FnOnce(&[f64], &[u8]) -> Result<GuestOutput, KernelError>,
    {
        let params = self.take(p_ptr, p_len);
        let input = self.take(i_ptr, i_len);
        let outcome = match (params, input) {
            (Some(p), Some(i)) => match decode_f64s(&p) {
                Ok(genome) => kernel(&genome, &i),
                Err(e) => Err(KernelError::invalid_params(format!("params: {e}"))),
            },
            _ => Err(KernelError {
                status: Status::UnknownBuffer,
                message: "params or input pointer/length was not returned by chimera_alloc"
                    .to_string(),
            }),
        };
        let (status, bytes) = match outcome.and_then(|out| {
            out.encode().map_err(|e| KernelError {
                status: Status::BadResult,
                message: e.0,
            })
        }) {
            Ok(bytes) => (Status::Ok, bytes),
            Err(e) => (e.status, e.message.into_bytes()),
        };
        self.set_result(&bytes);
        status.code()
    }
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena::new());
}

/// Runs `f` on this thread's arena.
pub fn with_arena<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    ARENA.with(|a| f(&mut a.borrow_mut()))
}

/// Body of the `chimera_alloc` export.
pub fn export_alloc(len: i32) -> i32 {
    with_arena(|a| a.alloc(len))
}

/// Body of the `chimera_run` export.
pub fn export_run<F>(p_ptr: i32, p_len: i32, i_ptr: i32, i_len: i32, kernel: F) -> i32
where
    F: FnOnce(&[f64], &[u8]) -> Result<GuestOutput, KernelError>,
{
    with_arena(|a| a.run(p_ptr, p_len, i_ptr, i_len, kernel))
}

/// Body of the `chimera_result_ptr` export.
pub fn export_result_ptr() -> i32 {
    with_arena(|a| a.result_ptr())
}

/// Body of the `chimera_result_len` export.
pub fn export_result_len() -> i32 {
    with_arena(|a| a.result_len())
}

/// Defines a kernel's guest ABI exports in the calling (face) crate:
/// `chimera_abi_version`, `chimera_alloc`, `chimera_run` over `$kernel`
/// (`fn(&[f64], &[u8]) -> Result<GuestOutput, KernelError>`),
/// `chimera_result_ptr` and `chimera_result_len`.
///
/// Each export forwards to the safe arena above. `#[no_mangle]` counts as
/// unsafe code to rustc, so the face crate allows `unsafe_code`; this crate
/// stays `forbid(unsafe_code)`.
#[macro_export]
macro_rules! export_guest_abi {
    ($kernel:path) => {
        /// `chimera_abi_version() -> i32`.
        #[no_mangle]
        pub extern "C" fn chimera_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        /// `chimera_alloc(len) -> i32`: a fresh buffer's address, 0 on failure.
        #[no_mangle]
        pub extern "C" fn chimera_alloc(len: i32) -> i32 {
            $crate::guest::export_alloc(len)
        }

        /// `chimera_run(params_ptr, params_len, input_ptr, input_len) -> status`.
        #[no_mangle]
        pub extern "C" fn chimera_run(p_ptr: i32, p_len: i32, i_ptr: i32, i_len: i32) -> i32 {
            $crate::guest::export_run(p_ptr, p_len, i_ptr, i_len, $kernel)
        }

        /// `chimera_result_ptr() -> i32`.
        #[no_mangle]
        pub extern "C" fn chimera_result_ptr() -> i32 {
            $crate::guest::export_result_ptr()
        }

        /// `chimera_result_len() -> i32`.
        #[no_mangle]
        pub extern "C" fn chimera_result_len() -> i32 {
            $crate::guest::export_result_len()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_f64s;

    fn sum_kernel(params: &[f64], input: &[u8]) -> Result<GuestOutput, KernelError> {
        if input.is_empty() {
            return Err(KernelError::invalid_input("empty input"));
        }
        Ok(GuestOutput::with_objectives(vec![params.iter().sum()])
            .metric("input_len", input.len() as f64))
    }

    /// Plays the host: alloc, write, run, read.
    fn host_call(a: &mut Arena, params: &[u8], input: &[u8]) -> (i32, Vec<u8>) {
        let p = a.alloc(params.len() as i32);
        a.buffer_mut(p, params.len() as i32)
            .unwrap()
            .copy_from_slice(params);
        let i = a.alloc(input.len() as i32);
        a.buffer_mut(i, input.len() as i32)
            .unwrap()
            .copy_from_slice(input);
        let status = a.run(p, params.len() as i32, i, input.len() as i32, sum_kernel);
        assert_eq!(a.result().len() as i32, a.result_len());
        (status, a.result().to_vec())
    }

    #[test]
    fn round_trip_through_the_arena() {
        let mut a = Arena::new();
        let (status, bytes) = host_call(&mut a, &encode_f64s(&[1.0, 2.5]), b"abc");
        assert_eq!(status, 0);
        let out = GuestOutput::decode(&bytes).unwrap();
        assert_eq!(out.objectives, vec![3.5]);
        assert_eq!(out.get("input_len"), Some(3.0));
        assert_eq!(a.live_buffers(), 0, "run frees both buffers");
    }

    #[test]
    fn errors_carry_status_and_message() {
        let mut a = Arena::new();
        let (status, bytes) = host_call(&mut a, &encode_f64s(&[1.0]), b"");
        assert_eq!(status, Status::InvalidInput.code());
        assert_eq!(bytes, b"empty input");
        let (status, bytes) = host_call(&mut a, &[1, 2, 3], b"x");
        assert_eq!(status, Status::InvalidParams.code());
        assert!(String::from_utf8(bytes).unwrap().contains("multiple of 8"));
        let bad = |_: &[f64], _: &[u8]| Ok(GuestOutput::with_objectives(vec![f64::NAN]));
        let p = a.alloc(0);
        let i = a.alloc(0);
        assert_eq!(a.run(p, 0, i, 0, bad), Status::BadResult.code());
    }

    #[test]
    fn unknown_or_overlong_buffers_are_rejected() {
        let mut a = Arena::new();
        let p = a.alloc(8);
        let i = a.alloc(4);
        assert_eq!(a.alloc(-1), 0);
        assert!(a.buffer(p, 9).is_none(), "longer than allocated");
        assert!(a.buffer(p.wrapping_add(1), 1).is_none());
        let status = a.run(p, 16, i, 4, sum_kernel);
        assert_eq!(status, Status::UnknownBuffer.code());
        assert!(a.result_ptr() != 0);
    }

    #[test]
    fn take_and_set_result_serve_other_call_shapes() {
        let mut a = Arena::new();
        let p = a.alloc(3);
        a.buffer_mut(p, 3).unwrap().copy_from_slice(b"abc");
        assert!(a.take(p, 4).is_none(), "longer than allocated");
        assert_eq!(a.live_buffers(), 1);
        assert_eq!(a.take(p, 2).unwrap(), b"ab");
        assert_eq!(a.live_buffers(), 0);
        assert!(a.take(p, 2).is_none(), "taken once");
        a.set_result(b"");
        assert_eq!(a.result_len(), 0);
        assert!(a.result_ptr() != 0, "an empty result still has an address");
        a.set_result(b"xyz");
        assert_eq!(a.result(), b"xyz");
    }

    #[test]
    fn thread_local_exports_work() {
        let p = export_alloc(8);
        with_arena(|a| {
            a.buffer_mut(p, 8)
                .unwrap()
                .copy_from_slice(&2.0f64.to_le_bytes())
        });
        let i = export_alloc(1);
        assert_eq!(export_run(p, 8, i, 1, sum_kernel), 0);
        let len = export_result_len();
        let bytes = with_arena(|a| a.result().to_vec());
        assert_eq!(bytes.len() as i32, len);
        assert!(export_result_ptr() != 0);
        assert_eq!(GuestOutput::decode(&bytes).unwrap().objectives, vec![2.0]);
    }
}

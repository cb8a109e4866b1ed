//! The byte format of requests and responses crossing the WASM boundary of
//! the layer cores (layers 1-3, the Chimera core ABI).
//!
//! Everything is little-endian and self-delimiting, so the Python host
//! (`chimera.wasm.wire`) mirrors it with `struct`:
//!
//! * `u8`, `u32`, `u64`: fixed width;
//! * `f64`: IEEE 754 binary64;
//! * `str`: `u32` byte length, then UTF-8 bytes;
//! * `bytes`: `u32` length, then raw bytes.
//!
//! A reader must consume its input exactly: trailing bytes are an error, so a
//! host and guest that disagree on a layout fail loudly instead of silently
//! misreading numbers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

pub mod json;

/// A malformed request: what was expected and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads values from a request buffer in order.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(WireError(format!(
                "truncated input: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.buf.len() - self.pos
            ))),
        }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1, "u8")?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4, "u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8, "u64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A little-endian `f64`.
    pub fn f64(&mut self) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A count of following items, bounded by the bytes left so that a
    /// corrupt count cannot make the guest allocate without limit.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        let left = self.buf.len() - self.pos;
        if n.saturating_mul(min_item_bytes.max(1)) > left {
            return Err(WireError(format!(
                "count {n} at offset {} exceeds the {left} bytes left",
                self.pos - 4
            )));
        }
        Ok(n)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<String, WireError> {
        let n = self.u32()? as usize;
        let b = self.take(n, "string")?;
        String::from_utf8(b.to_vec())
            .map_err(|_| WireError(format!("string at offset {} is not UTF-8", self.pos - n)))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n, "bytes")
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), WireError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(WireError(format!(
                "{} trailing bytes after offset {}",
                self.buf.len() - self.pos,
                self.pos
            )))
        }
    }
}

/// Builds a response buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A little-endian `f64`.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }

    /// A collection length as `u32` (collections here are far below 2^32).
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.count(s.len());
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A failed API call: the status code returned by the export and the error
/// payload (`str` message, `u32` count, that many `str` details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Non-zero status code.
    pub code: i32,
    /// Human-readable reason.
    pub message: String,
    /// Machine-readable details (e.g. the ids of a dependency cycle).
    pub details: Vec<String>,
}

/// Status code of a malformed request.
pub const STATUS_BAD_REQUEST: i32 = 1;

impl ApiError {
    /// An error without details.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The error payload the host reads after a non-zero status.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.message).count(self.details.len());
        for d in &self.details {
            w.str(d);
        }
        w.into_bytes()
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::new(STATUS_BAD_REQUEST, e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let mut w = Writer::new();
        w.u8(7)
            .u32(0xDEAD_BEEF)
            .u64(u64::MAX)
            .f64(-1.5)
            .str("héllo");
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 0xDEAD_BEEF);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.f64().unwrap(), -1.5);
        assert_eq!(r.str().unwrap(), "héllo");
        r.finish().unwrap();
        let raw = [3, 0, 0, 0, 0, 0xff, 7];
        let mut r = Reader::new(&raw);
        assert_eq!(r.bytes().unwrap(), &[0, 0xff, 7]);
        r.finish().unwrap();
    }

    #[test]
    fn layout_is_little_endian_and_length_prefixed() {
        let mut w = Writer::new();
        w.u32(1).str("ab");
        assert_eq!(w.into_bytes(), vec![1, 0, 0, 0, 2, 0, 0, 0, b'a', b'b']);
    }

    #[test]
    fn rejects_truncation_trailing_bytes_and_bad_counts() {
        assert!(Reader::new(&[1, 2, 3]).u32().is_err());
        let mut r = Reader::new(&[5, 0, 0, 0, b'a']);
        assert!(r.str().unwrap_err().0.contains("truncated"));
        let r = Reader::new(&[0]);
        assert!(r.finish().unwrap_err().0.contains("trailing"));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert!(r.count(8).unwrap_err().0.contains("exceeds"));
        let mut r = Reader::new(&[2, 0, 0, 0, 0xff, 0xfe]);
        assert!(r.str().unwrap_err().0.contains("UTF-8"));
    }

    #[test]
    fn error_payload_lists_details() {
        let mut e = ApiError::new(4, "cycle");
        e.details = vec!["a".into(), "b".into()];
        let bytes = e.encode();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.str().unwrap(), "cycle");
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.str().unwrap(), "a");
        assert_eq!(r.str().unwrap(), "b");
        r.finish().unwrap();
    }
}

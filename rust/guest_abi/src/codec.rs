//! Byte formats of the guest ABI: `f64` arrays and the result record.
//!
//! Result record layout (little-endian):
//!
//! ```text
//! offset  size  field
//! 0       4     magic b"CHR1"
//! 4       4     u32 n_objectives            (<= MAX_ENTRIES)
//! 8       8*n   f64 objective values        (finite)
//! ..      4     u32 n_metrics               (<= MAX_ENTRIES)
//! then per metric:
//!         2     u16 name_len                (1..=MAX_NAME_LEN)
//!         k     UTF-8 name bytes            (unique within the record)
//!         8     f64 value                   (finite)
//! ```
//!
//! Nothing may follow the last metric. The host turns the metrics into the
//! KPI report's `metrics` map, so names are unique and values finite (layer 5
//! rejects non-finite values; catching them here names the guilty module).

use std::collections::HashSet;
use std::fmt;

/// Magic bytes at the start of every result record.
pub const RESULT_MAGIC: [u8; 4] = *b"CHR1";
/// Largest number of objectives or metrics in one record.
pub const MAX_ENTRIES: usize = 4096;
/// Longest metric name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// An `f64` array whose length is not a multiple of 8.
    NotF64Aligned(usize),
    /// The record does not start with [`RESULT_MAGIC`].
    BadMagic,
    /// The record ended early while reading the named field.
    Truncated(&'static str),
    /// Bytes left over after the last metric.
    TrailingBytes(usize),
    /// A count above [`MAX_ENTRIES`].
    TooManyEntries(usize),
    /// A metric name that is empty, too long, or not UTF-8.
    BadName(String),
    /// The same metric name twice.
    DuplicateMetric(String),
    /// A NaN or infinite value in the named field.
    NonFinite(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotF64Aligned(n) => write!(f, "length {n} is not a multiple of 8"),
            DecodeError::BadMagic => write!(f, "result record does not start with CHR1"),
            DecodeError::Truncated(what) => write!(f, "record truncated while reading {what}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes after the record"),
            DecodeError::TooManyEntries(n) => {
                write!(f, "{n} entries exceed the limit of {MAX_ENTRIES}")
            }
            DecodeError::BadName(why) => write!(f, "bad metric name: {why}"),
            DecodeError::DuplicateMetric(n) => write!(f, "duplicate metric {n:?}"),
            DecodeError::NonFinite(what) => write!(f, "non-finite value in {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a [`GuestOutput`] cannot be encoded (the same rules decoding enforces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Encodes values as a little-endian `f64` array.
pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decodes a little-endian `f64` array (values are not checked for finiteness).
pub fn decode_f64s(bytes: &[u8]) -> Result<Vec<f64>, DecodeError> {
    if bytes.len() % 8 != 0 {
        return Err(DecodeError::NotF64Aligned(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// What a kernel run produced: objective values and named custom metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuestOutput {
    /// Objective values, in the order the kernel documents.
    pub objectives: Vec<f64>,
    /// Custom metrics as (name, value), in insertion order.
    pub metrics: Vec<(String, f64)>,
}

impl GuestOutput {
    /// An output with the given objectives and no metrics.
    pub fn with_objectives(objectives: Vec<f64>) -> Self {
        GuestOutput {
            objectives,
            metrics: Vec::new(),
        }
    }

    /// Appends a metric (checked when encoding).
    pub fn metric(mut self, name: &str, value: f64) -> Self {
        self.metrics.push((name.to_string(), value));
        self
    }

    /// The value of a metric by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Encodes the record, enforcing the format's rules.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.objectives.len() > MAX_ENTRIES || self.metrics.len() > MAX_ENTRIES {
            return Err(EncodeError(format!(
                "more than {MAX_ENTRIES} objectives or metrics"
            )));
        }
        let mut out = Vec::with_capacity(12 + 8 * self.objectives.len() + 32 * self.metrics.len());
        out.extend_from_slice(&RESULT_MAGIC);
        out.extend_from_slice(&(self.objectives.len() as u32).to_le_bytes());
        for (i, v) in self.objectives.iter().enumerate() {
            if !v.is_finite() {
                return Err(EncodeError(format!("objective {i} is not finite")));
            }
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.metrics.len() as u32).to_le_bytes());
        let mut seen = HashSet::new();
        for (name, v) in &self.metrics {
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(EncodeError(format!(
                    "metric name {name:?} must be 1..={MAX_NAME_LEN} bytes"
                )));
            }
            if !seen.insert(name.as_str()) {
                return Err(EncodeError(format!("duplicate metric {name:?}")));
            }
            if !v.is_finite() {
                return Err(EncodeError(format!("metric {name:?} is not finite")));
            }
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(out)
    }

    /// Decodes a record, rejecting anything [`GuestOutput::encode`] would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != RESULT_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let n_obj = r.u32("objective count")? as usize;
        if n_obj > MAX_ENTRIES {
            return Err(DecodeError::TooManyEntries(n_obj));
        }
        let mut objectives = Vec::with_capacity(n_obj);
        for i in 0..n_obj {
            let v = r.f64("objective")?;
            if !v.is_finite() {
                return Err(DecodeError::NonFinite(format!("objective {i}")));
            }
            objectives.push(v);
        }
        let n_met = r.u32("metric count")? as usize;
        if n_met > MAX_ENTRIES {
            return Err(DecodeError::TooManyEntries(n_met));
        }
        let mut metrics = Vec::with_capacity(n_met);
        let mut seen = HashSet::new();
        for _ in 0..n_met {
            let len = r.u16("metric name length")? as usize;
            if len == 0 || len > MAX_NAME_LEN {
                return Err(DecodeError::BadName(format!("length {len}")));
            }
            let name = std::str::from_utf8(r.take(len, "metric name")?)
                .map_err(|_| DecodeError::BadName("not UTF-8".to_string()))?
                .to_string();
            let v = r.f64("metric value")?;
            if !v.is_finite() {
                return Err(DecodeError::NonFinite(format!("metric {name:?}")));
            }
            if !seen.insert(name.clone()) {
                return Err(DecodeError::DuplicateMetric(name));
            }
            metrics.push((name, v));
        }
        if r.at != bytes.len() {
            return Err(DecodeError::TrailingBytes(bytes.len() - r.at));
        }
        Ok(GuestOutput {
            objectives,
            metrics,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(DecodeError::Truncated(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        let b = self.take(8, what)?;
        Ok(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared test vector; `tests/test_abi.py` checks the same hex on the Python side.
    pub(crate) const VECTOR_RESULT_HEX: &str = "43485231020000000000000000000e40000000000000f0bf0200000007007175616c6974799a9999999999e93f0f007761737465645f63617061636974790000000000000ac0";
    /// Shared params vector: `[1.0, -0.5, 3.25]`.
    pub(crate) const VECTOR_PARAMS_HEX: &str = "000000000000f03f000000000000e0bf0000000000000a40";

    fn vector_output() -> GuestOutput {
        GuestOutput::with_objectives(vec![3.75, -1.0])
            .metric("quality", 0.8)
            .metric("wasted_capacity", -3.25)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn shared_vectors_match() {
        assert_eq!(hex(&vector_output().encode().unwrap()), VECTOR_RESULT_HEX);
        assert_eq!(hex(&encode_f64s(&[1.0, -0.5, 3.25])), VECTOR_PARAMS_HEX);
    }

    #[test]
    fn result_round_trip() {
        let out = vector_output();
        let bytes = out.encode().unwrap();
        assert_eq!(GuestOutput::decode(&bytes).unwrap(), out);
        assert_eq!(out.get("quality"), Some(0.8));
        assert_eq!(out.get("missing"), None);
        let empty = GuestOutput::default();
        assert_eq!(empty.encode().unwrap().len(), 12);
        assert_eq!(
            GuestOutput::decode(&empty.encode().unwrap()).unwrap(),
            empty
        );
    }

    #[test]
    fn f64_round_trip_and_alignment() {
        let v = [0.0, -0.0, 1.5, f64::MAX, f64::MIN_POSITIVE];
        assert_eq!(decode_f64s(&encode_f64s(&v)).unwrap(), v.to_vec());
        assert_eq!(decode_f64s(&[0; 7]), Err(DecodeError::NotF64Aligned(7)));
        assert_eq!(decode_f64s(&[]).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn encode_rejects_bad_records() {
        let nan = GuestOutput::with_objectives(vec![f64::NAN]);
        assert!(nan.encode().is_err());
        let dup = GuestOutput::default().metric("a", 1.0).metric("a", 2.0);
        assert!(dup.encode().is_err());
        let empty_name = GuestOutput::default().metric("", 1.0);
        assert!(empty_name.encode().is_err());
        let long = GuestOutput::default().metric(&"x".repeat(256), 1.0);
        assert!(long.encode().is_err());
        let inf = GuestOutput::default().metric("m", f64::INFINITY);
        assert!(inf.encode().is_err());
    }

    #[test]
    fn decode_rejects_bad_records() {
        let good = vector_output().encode().unwrap();
        assert_eq!(GuestOutput::decode(b"XXXX"), Err(DecodeError::BadMagic));
        assert!(matches!(
            GuestOutput::decode(&good[..good.len() - 1]),
            Err(DecodeError::Truncated(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            GuestOutput::decode(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut nan = good.clone();
        nan[8..16].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(
            GuestOutput::decode(&nan),
            Err(DecodeError::NonFinite(_))
        ));
        let mut huge = good;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            GuestOutput::decode(&huge),
            Err(DecodeError::TooManyEntries(_))
        ));
        // Second metric renamed to the first one's name length/bytes -> duplicate.
        let dup = GuestOutput::default()
            .metric("ab", 1.0)
            .metric("cd", 2.0)
            .encode()
            .unwrap();
        let mut dup = dup;
        let second = dup.len() - 8 - 2;
        dup[second..second + 2].copy_from_slice(b"ab");
        assert_eq!(
            GuestOutput::decode(&dup),
            Err(DecodeError::DuplicateMetric("ab".to_string()))
        );
        let mut bad_utf8 = GuestOutput::default().metric("ab", 1.0).encode().unwrap();
        bad_utf8[14] = 0xff;
        assert!(matches!(
            GuestOutput::decode(&bad_utf8),
            Err(DecodeError::BadName(_))
        ));
    }
}

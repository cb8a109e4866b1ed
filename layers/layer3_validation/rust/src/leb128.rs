//! LEB128 decoding of unsigned integers, as used throughout the WASM binary
//! format: 7 bits per byte, least significant first, the high bit set on
//! every byte but the last. Over-long encodings and unused high bits in the
//! last byte are rejected, as the WASM specification requires.

use std::fmt;

/// Why a number could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LebError {
    /// The input ended inside the number.
    Truncated,
    /// More bytes than the type allows, or bits beyond its width.
    Overflow,
}

impl fmt::Display for LebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LebError::Truncated => f.write_str("truncated LEB128 number"),
            LebError::Overflow => f.write_str("LEB128 number too large"),
        }
    }
}

/// Decodes an unsigned number of at most `bits` bits from the start of
/// `data`; returns it and the bytes consumed.
pub fn read_unsigned(data: &[u8], bits: u32) -> Result<(u64, usize), LebError> {
    let max_bytes = ((bits + 6) / 7) as usize;
    let mut result = 0u64;
    for i in 0..max_bytes {
        let byte = *data.get(i).ok_or(LebError::Truncated)?;
        let shift = 7 * i as u32;
        let payload = u64::from(byte & 0x7f);
        if i == max_bytes - 1 {
            // Bits of the last byte beyond `bits` must be zero.
            let used = bits - shift;
            if byte & 0x80 != 0 || (used < 7 && payload >> used != 0) {
                return Err(LebError::Overflow);
            }
        }
        result |= payload << shift;
        if byte & 0x80 == 0 {
            return Ok((result, i + 1));
        }
    }
    Err(LebError::Overflow)
}

/// Decodes a `u32`.
pub fn read_u32(data: &[u8]) -> Result<(u32, usize), LebError> {
    read_unsigned(data, 32).map(|(v, n)| (v as u32, n))
}

/// Decodes a `u64`.
pub fn read_u64(data: &[u8]) -> Result<(u64, usize), LebError> {
    read_unsigned(data, 64)
}

/// Encodes `v` (used by tests to build modules).
pub fn encode_u64(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_specification_examples() {
        assert_eq!(read_u32(&[0x00]), Ok((0, 1)));
        assert_eq!(read_u32(&[0x7f]), Ok((127, 1)));
        assert_eq!(read_u32(&[0x80, 0x01]), Ok((128, 2)));
        assert_eq!(read_u32(&[0xe5, 0x8e, 0x26]), Ok((624_485, 3)));
        // Non-minimal but in-range encodings are valid.
        assert_eq!(read_u32(&[0x83, 0x00]), Ok((3, 2)));
        assert_eq!(read_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok((u32::MAX, 5)));
        assert_eq!(read_u64(&encode_u64(u64::MAX)), Ok((u64::MAX, 10)));
        assert_eq!(read_u32(&[0x05, 0xff]), Ok((5, 1)));
    }

    #[test]
    fn rejects_truncation_and_overflow() {
        assert_eq!(read_u32(&[]), Err(LebError::Truncated));
        assert_eq!(read_u32(&[0x80, 0x80]), Err(LebError::Truncated));
        assert_eq!(
            read_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(LebError::Overflow)
        );
        assert_eq!(
            read_u32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(LebError::Overflow)
        );
        assert_eq!(read_u64(&[0xff; 10]), Err(LebError::Overflow));
        let mut eleven = vec![0x80u8; 9];
        eleven.push(0x02);
        assert_eq!(read_u64(&eleven), Err(LebError::Overflow));
    }

    #[test]
    fn encode_round_trips() {
        for v in [0u64, 1, 127, 128, 300, 1 << 32, u64::MAX - 1] {
            let e = encode_u64(v);
            assert_eq!(read_u64(&e), Ok((v, e.len())));
        }
    }
}

//! A two-operation face crate: the Python host's tests (`py/tests/test_wasm.py`)
//! load its module, `echo_module.wasm`, as a real core module.
#![deny(unsafe_code)]

use chimera_wire::{ApiError, Reader, Writer};

/// `str` -> the string upper-cased, then its UTF-8 length as `u64`.
pub fn upper(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let s = r.str()?;
    r.finish()?;
    let mut w = Writer::new();
    w.str(&s.to_uppercase()).u64(s.len() as u64);
    Ok(w.into_bytes())
}

/// Always fails with status 7 and the request's strings as details.
pub fn refuse(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let n = r.count(4)?;
    let mut e = ApiError::new(7, "refused");
    for _ in 0..n {
        e.details.push(r.str()?);
    }
    r.finish()?;
    Err(e)
}

chimera_wasm_export::core_exports! {
    /// See [`upper`].
    echo_upper => upper;
    /// See [`refuse`].
    echo_refuse => refuse;
}

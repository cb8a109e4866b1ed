//! WASM face of the checksum crate: a dependency rebuilt for wasm32 through
//! the rust_wasm_module transition, exported with the C ABI.
// `#[no_mangle]` counts as unsafe code; it is allowed on the export only.
#![deny(unsafe_code)]

/// Adler-32 of the bytes `0, 1, .., len-1`, so the host can check the result
/// without writing guest memory.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn adler32_of_sequence(len: u32) -> u32 {
    let data: Vec<u8> = (0..len).map(|i| (i % 256) as u8).collect();
    checksum::adler32(&data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sequence_checksum_uses_dependency() {
        assert_eq!(super::adler32_of_sequence(0), 1);
        assert_eq!(super::adler32_of_sequence(3), checksum::adler32(&[0, 1, 2]));
    }
}

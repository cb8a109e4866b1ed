//! WASM face of `execution_core`: the guest ABI exports (see the `guest_abi`
//! crate for the contract) over [`execution_core::run`].
//!
//! The exports come from `guest_abi::export_guest_abi!`. rustc counts their
//! `#[no_mangle]` as unsafe code because exported symbol names could clash at
//! link time; that is the only reason this crate allows it.
//! There are no `unsafe` blocks; every function forwards to the safe arena in
//! `guest_abi::guest`. The functions are compiled natively too, so tests call
//! exactly what the wasm module exports.
#![allow(unsafe_code)]

guest_abi::export_guest_abi!(execution_core::run);

#[cfg(test)]
mod tests {
    use super::*;
    use execution_core::{generate, run, GOOD_GENOME};
    use guest_abi::guest;
    use guest_abi::{encode_f64s, GuestOutput, Status};

    /// The exported entry points, driven the way the host drives them.
    #[test]
    fn abi_round_trip_through_exports() {
        assert_eq!(chimera_abi_version(), guest_abi::ABI_VERSION);
        let params = encode_f64s(&GOOD_GENOME);
        let input = generate(9, 50, 100, 110).encode();
        let p = chimera_alloc(params.len() as i32);
        let i = chimera_alloc(input.len() as i32);
        guest::with_arena(|a| {
            a.buffer_mut(p, params.len() as i32)
                .unwrap()
                .copy_from_slice(&params);
            a.buffer_mut(i, input.len() as i32)
                .unwrap()
                .copy_from_slice(&input);
        });
        let status = chimera_run(p, params.len() as i32, i, input.len() as i32);
        assert_eq!(status, 0);
        assert!(chimera_result_ptr() != 0);
        let bytes = guest::with_arena(|a| a.result().to_vec());
        assert_eq!(bytes.len() as i32, chimera_result_len());
        let out = GuestOutput::decode(&bytes).unwrap();
        assert_eq!(out, run(&GOOD_GENOME, &input).unwrap());

        let p = chimera_alloc(8);
        let i = chimera_alloc(0);
        let status = chimera_run(p, 8, i, 0);
        assert_eq!(status, Status::InvalidParams.code());
        let msg = guest::with_arena(|a| String::from_utf8(a.result().to_vec()).unwrap());
        assert!(msg.contains("expected 8"), "{msg}");
    }
}

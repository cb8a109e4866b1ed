//! WASM face of `binpacking_core`: the guest ABI exports (see the `guest_abi`
//! crate for the contract) over [`binpacking_core::run`].
//!
//! The exports come from `guest_abi::export_guest_abi!`. rustc counts their
//! `#[no_mangle]` as unsafe code because exported symbol names could clash at
//! link time; that is the only reason this crate allows it.
//! Every function forwards to the safe arena in `guest_abi::guest`. The
//! functions are compiled natively too, so tests call exactly what the wasm
//! module exports.
#![allow(unsafe_code)]

guest_abi::export_guest_abi!(binpacking_core::run);

#[cfg(test)]
mod tests {
    use super::*;
    use binpacking_core::{run, Instance, BEST_FIT};
    use guest_abi::guest;
    use guest_abi::{encode_f64s, GuestOutput, Status};

    fn call(params: &[u8], input: &[u8]) -> i32 {
        let p = chimera_alloc(params.len() as i32);
        let i = chimera_alloc(input.len() as i32);
        guest::with_arena(|a| {
            a.buffer_mut(p, params.len() as i32)
                .unwrap()
                .copy_from_slice(params);
            a.buffer_mut(i, input.len() as i32)
                .unwrap()
                .copy_from_slice(input);
        });
        chimera_run(p, params.len() as i32, i, input.len() as i32)
    }

    /// The exported entry points, driven the way the host drives them.
    #[test]
    fn abi_round_trip_through_exports() {
        assert_eq!(chimera_abi_version(), guest_abi::ABI_VERSION);
        let input = Instance::new(100, vec![60, 50, 40, 30, 20])
            .unwrap()
            .encode();
        assert_eq!(call(&encode_f64s(&BEST_FIT), &input), 0);
        let bytes = guest::with_arena(|a| a.result().to_vec());
        assert_eq!(bytes.len() as i32, chimera_result_len());
        let out = GuestOutput::decode(&bytes).unwrap();
        assert_eq!(out, run(&BEST_FIT, &input).unwrap());

        let bad = Instance {
            capacity: 100,
            items: vec![101],
        }
        .encode();
        assert_eq!(
            call(&encode_f64s(&BEST_FIT), &bad),
            Status::InvalidInput.code()
        );
        let msg = guest::with_arena(|a| String::from_utf8(a.result().to_vec()).unwrap());
        assert!(msg.contains("items[0]"), "{msg}");
    }
}

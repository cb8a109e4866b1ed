//! The crate rustc links into every crate compiled with `-Cinstrument-coverage`
//! (rustc injects `extern crate profiler_builtins`). Debian's rustc ships none, so
//! this one wraps LLVM's own profile runtime, `libclang_rt.profile-<arch>.a` from
//! Debian's libclang-rt-<llvm>-dev, which coverage.bzl passes with `-l static=` so it
//! is bundled into this rlib. No code of its own: the runtime is C.
#![no_std]
// The attribute that marks a crate as the profiler runtime is unstable (it exists for
// the compiler's own std build): coverage.bzl sets RUSTC_BOOTSTRAP=1 for this crate's
// compile only.
#![feature(profiler_runtime)]
#![profiler_runtime]

"""The one template every Chimera layer (1-8) is declared with.

    load("//layers:defs.bzl", "chimera_layer")

    chimera_layer(
        name = "planning",
        data = ["templates.json"],
        deps = ["//proto/chimera/v1:planning_py_pb2_grpc", "//py:framework", "//py:wasm"],
        tests = ["core", "templates", "service"],
    )

A layer package holds `rust/src/` (the core crate: the layer's pure logic,
std only, `#![forbid(unsafe_code)]`), `rust/wasm/src/` (the face crate: the
WASM exports over the core, the only place `#[no_mangle]` is allowed),
`py/chimera/<name>/` (the Python package: `artifacts.py` names the layer's
files, `core.py` wraps the Rust core, domain modules, a thin `service.py`, and
`main.py` with `parse_args` / `build_server` / `main`), and `tests/`
(`test_<t>.py` files, plus any helper modules and `conftest.py`).

It declares, in the calling package:

| target | what it is for |
|---|---|
| `<name>_core` | rust_library of the core (+ `_clippy`, `_rustfmt`) |
| `<name>_core_test` | the core's native unit tests |
| `<name>_wasm` | the face crate: ABI exports over the core (+ `_clippy`, `_rustfmt`) |
| `<name>_wasm_test` | the face crate's native tests (the exports, called as the host calls them) |
| `<name>_core_module` | `<name>_core_module.wasm` (wasm32-unknown-unknown, release): what the service loads |
| `<name>` | py_library `chimera.<name>` (everything under py/, `main.py` too: tests build its server), carrying the module and `data` |
| `server` | py_binary from `main.py`: the layer's deliverable |
| `<name>_test_support` | testonly py_library of the helper modules in tests/ (if any) |
| `<t>_test` | one py_pytest_test per `tests/test_<t>.py` |
| `<name>_fuzz_test` | the contract fuzz test of the layer's gRPC service (see //py/chimera/fuzz) |

Two kinds of module, chosen by `abi`:
- `"core"` (layers 1-3, 5-8): the host calls the core's operations through
  the core ABI (`//rust/wasm_export`, host side `chimera.wasm.CoreModule`).
- `"guest"` (layer 4's workload kernel): the module is a workload layer 4
  runs in its sandbox, on the guest ABI (`//rust/guest_abi`).

Layers meet only through `proto/`: the implementation targets are visible to
their own package and the end-to-end packages (the flow test, the main job,
benchmarks); the deliverables (`server`, `<name>_core_module`) to everyone.
"""

load("//layers/private:layer.bzl", _chimera_layer = "chimera_layer")

chimera_layer = _chimera_layer

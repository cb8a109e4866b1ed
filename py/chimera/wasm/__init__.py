"""Host side of Chimera's two WASM ABIs, one reader/writer for both.

* Core ABI v1 (exports ``chimera_core_*``): every layer's Rust core is
  compiled to a WASM module with no imports (``rust/wasm_export`` generates
  its exports); :class:`CoreModule` loads such a module with wasmtime and runs
  one operation per call.
* Guest ABI v1 (exports ``chimera_*``, ``chimera_run``): workload modules that
  layer 4 runs in its sandbox; :mod:`chimera.wasm.guest` holds their byte
  formats (genome params, result records), mirroring ``rust/guest_abi``.

:class:`Writer` / :class:`Reader` build requests and read responses in the
wire format (``rust/wire``) for both. Each layer keeps only a thin typed module of its operations
(``chimera.<layer>.core``) and the paths of its files
(``chimera.<layer>.artifacts``, through :mod:`chimera.wasm.artifacts`).
"""

from __future__ import annotations

from chimera.wasm.host import CORE_ABI_VERSION, CoreError, CoreModule
from chimera.wasm.wire import Reader, WireError, Writer

__all__ = ["CORE_ABI_VERSION", "CoreError", "CoreModule", "Reader", "WireError", "Writer"]

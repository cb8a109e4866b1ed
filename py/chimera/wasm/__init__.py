"""Host side of the Chimera core ABI v1, shared by the layer services.

The Rust core of layers 1-3 is compiled to a WASM module with no imports
(``rust/wasm_export`` generates its exports); :class:`CoreModule` loads such a
module with wasmtime and runs one operation per call, and :class:`Writer` /
:class:`Reader` build requests and read responses in the core's wire format
(``rust/wire``). Each layer keeps only a thin typed module of its operations
(``chimera.<layer>.core``) and the paths of its files
(``chimera.<layer>.artifacts``, through :mod:`chimera.wasm.artifacts`).
"""

from __future__ import annotations

from chimera.wasm.host import CORE_ABI_VERSION, CoreError, CoreModule
from chimera.wasm.wire import Reader, WireError, Writer

__all__ = ["CORE_ABI_VERSION", "CoreError", "CoreModule", "Reader", "WireError", "Writer"]

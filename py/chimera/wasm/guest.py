"""Host side of the Chimera guest ABI v1 (mirror of the Rust crate `guest_abi`).

Chimera has two WASM ABIs, each with its own export names and version:

* the **core ABI** (``chimera.wasm.host``; exports prefixed ``chimera_core_``,
  version from ``chimera_core_abi_version``): a layer's Rust core, called by
  its own service, one export per operation;
* the **guest ABI** (this module; exports prefixed ``chimera_``, version
  from ``chimera_abi_version``): a workload module that layer 4 runs in its
  sandbox, one ``chimera_run`` entry point over a genome and an input.

A guest module has no imports and exports ``memory``, ``chimera_abi_version``,
``chimera_alloc``, ``chimera_run``, ``chimera_result_ptr`` and
``chimera_result_len`` (see ``rust/guest_abi/src/lib.rs`` for the contract).
This module holds the byte formats only, so it can be used and tested without
wasmtime; they are read and written with :mod:`chimera.wasm.wire`:

* params (the genome): little-endian ``f64`` array;
* result record: ``b"CHR1"``, ``u32`` objective count, that many ``f64``,
  ``u32`` metric count, then per metric ``u16`` name length, UTF-8 name,
  ``f64`` value; values finite, names unique and 1..=255 bytes, nothing after.

Both sides check the same hex test vectors, so a change to one side that the
other does not share fails a test.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from chimera.wasm.wire import Reader, WireError, Writer

ABI_VERSION = 1
RESULT_MAGIC = b"CHR1"
MAX_ENTRIES = 4096
MAX_NAME_LEN = 255

#: Exports every guest must provide: name -> (param count, result count), all i32.
REQUIRED_FUNCTIONS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "chimera_abi_version": (0, 1),
        "chimera_alloc": (1, 1),
        "chimera_run": (4, 1),
        "chimera_result_ptr": (0, 1),
        "chimera_result_len": (0, 1),
    }
)
MEMORY_EXPORT = "memory"

#: ``chimera_run`` status codes (same numbers and names as ``guest_abi::Status``).
GUEST_STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        0: "OK",
        1: "INVALID_PARAMS",
        2: "INVALID_INPUT",
        3: "KERNEL_FAILURE",
        4: "UNKNOWN_BUFFER",
        5: "BAD_RESULT",
    }
)


class AbiError(WireError):
    """Bytes that do not follow the guest ABI formats."""


def encode_f64s(values: Iterable[float]) -> bytes:
    """Little-endian f64 array; rejects values that are not real numbers."""
    vals = [float(v) for v in values]
    return struct.pack(f"<{len(vals)}d", *vals)


def decode_f64s(data: bytes) -> tuple[float, ...]:
    """Inverse of :func:`encode_f64s`; the length must be a multiple of 8."""
    if len(data) % 8:
        raise AbiError(f"length {len(data)} is not a multiple of 8")
    return struct.unpack(f"<{len(data) // 8}d", data)


def encode_params(genome: Sequence[float]) -> bytes:
    """Encodes a genome as the params buffer, rejecting non-finite values.

    The guest would reject them too, but failing here names the index.
    """
    for i, v in enumerate(genome):
        if not math.isfinite(float(v)):
            raise AbiError(f"params[{i}] must be finite, got {v!r}")
    return encode_f64s(genome)


@dataclass(frozen=True)
class GuestResult:
    """A decoded result record: objective values plus named metrics."""

    objectives: tuple[float, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Freeze whatever mapping the caller passed so results stay immutable.
        object.__setattr__(self, "objectives", tuple(float(v) for v in self.objectives))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))


def encode_result(result: GuestResult) -> bytes:
    """Encodes a result record (used by tests and WAT fixtures)."""
    if len(result.objectives) > MAX_ENTRIES or len(result.metrics) > MAX_ENTRIES:
        raise AbiError(f"more than {MAX_ENTRIES} objectives or metrics")
    w = Writer()
    w.u32(len(result.objectives))
    for i, v in enumerate(result.objectives):
        if not math.isfinite(v):
            raise AbiError(f"objective {i} is not finite")
        w.f64(v)
    w.u32(len(result.metrics))
    for name, v in result.metrics.items():
        raw = name.encode("utf-8")
        if not 1 <= len(raw) <= MAX_NAME_LEN:
            raise AbiError(f"metric name {name!r} must be 1..={MAX_NAME_LEN} bytes")
        if not math.isfinite(v):
            raise AbiError(f"metric {name!r} is not finite")
        w.u16(len(raw)).fixed(raw).f64(v)
    return RESULT_MAGIC + w.to_bytes()


def decode_result(data: bytes) -> GuestResult:
    """Decodes a result record, rejecting anything the Rust encoder would not produce."""
    data = bytes(data)
    if data[:4] != RESULT_MAGIC:
        raise AbiError("result record does not start with CHR1")
    try:
        return _decode_record(Reader(data[4:]))
    except AbiError:
        raise
    except WireError as exc:
        raise AbiError(f"record {exc}") from None


def _decode_record(r: Reader) -> GuestResult:
    n_obj = r.u32()
    if n_obj > MAX_ENTRIES:
        raise AbiError(f"{n_obj} objectives exceed the limit of {MAX_ENTRIES}")
    objectives = []
    for i in range(n_obj):
        v = r.f64()
        if not math.isfinite(v):
            raise AbiError(f"non-finite value in objective {i}")
        objectives.append(v)
    n_met = r.u32()
    if n_met > MAX_ENTRIES:
        raise AbiError(f"{n_met} metrics exceed the limit of {MAX_ENTRIES}")
    metrics: dict[str, float] = {}
    for _ in range(n_met):
        length = r.u16()
        if not 1 <= length <= MAX_NAME_LEN:
            raise AbiError(f"bad metric name: length {length}")
        try:
            name = r.fixed(length).decode("utf-8")
        except UnicodeDecodeError:
            raise AbiError("bad metric name: not UTF-8") from None
        v = r.f64()
        if not math.isfinite(v):
            raise AbiError(f"non-finite value in metric {name!r}")
        if name in metrics:
            raise AbiError(f"duplicate metric {name!r}")
        metrics[name] = v
    try:
        r.finish()
    except WireError as exc:
        raise AbiError(f"{exc} after the record") from None
    return GuestResult(tuple(objectives), metrics)

"""Guest ABI formats and the kernel input format, checked against the Rust side's vectors."""

from __future__ import annotations

import math
import struct

import pytest

from chimera.execution import workload
from chimera.wasm import guest

# Same hex strings as rust/guest_abi/src/codec.rs and rust/src/instance.rs tests.
VECTOR_RESULT_HEX = (
    "43485231020000000000000000000e40000000000000f0bf0200000007007175616c6974799a9999999999e93f"
    "0f007761737465645f63617061636974790000000000000ac0"
)
VECTOR_PARAMS_HEX = "000000000000f03f000000000000e0bf0000000000000a40"
VECTOR_INSTANCE_HEX = (
    "000000000000f03f0000000000005940000000000000004000000000008040400000000000001440"
    "000000000000f03f0000000000004240000000000000184000000000000059400000000000003840"
    "000000000000534000000000000039400000000000002a4000000000000032400000000000c05240"
)


def vector_result() -> guest.GuestResult:
    return guest.GuestResult((3.75, -1.0), {"quality": 0.8, "wasted_capacity": -3.25})


def test_shared_vectors_match_rust() -> None:
    assert guest.encode_result(vector_result()).hex() == VECTOR_RESULT_HEX
    assert guest.decode_result(bytes.fromhex(VECTOR_RESULT_HEX)) == vector_result()
    assert guest.encode_params([1.0, -0.5, 3.25]).hex() == VECTOR_PARAMS_HEX
    assert workload.generate_instance(42, 4, 100, 110).encode().hex() == VECTOR_INSTANCE_HEX


def test_round_trips() -> None:
    r = guest.GuestResult((), {})
    assert guest.decode_result(guest.encode_result(r)) == r
    assert len(guest.encode_result(r)) == 12
    vals = (0.0, 1.5, -2.25, 1e300)
    assert guest.decode_f64s(guest.encode_f64s(vals)) == vals
    inst = workload.generate_instance(7, 50)
    assert workload.decode_instance(inst.encode()) == inst


def test_result_is_immutable() -> None:
    src = {"a": 1.0}
    r = guest.GuestResult((1.0,), src)
    src["a"] = 2.0
    assert r.metrics["a"] == 1.0
    with pytest.raises(TypeError):
        r.metrics["a"] = 3.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"XXXX" + bytes(8), "CHR1"),
        (bytes.fromhex(VECTOR_RESULT_HEX)[:-1], "truncated"),
        (bytes.fromhex(VECTOR_RESULT_HEX) + b"\0", "trailing"),
        (b"CHR1" + struct.pack("<I", 1) + struct.pack("<d", math.nan) + bytes(4), "non-finite"),
        (b"CHR1" + struct.pack("<I", 5000), "exceed"),
        (b"CHR1" + bytes(4) + struct.pack("<I", 1) + struct.pack("<H", 0), "length 0"),
        (
            b"CHR1" + bytes(4) + struct.pack("<I", 1) + struct.pack("<H", 1) + b"\xff" + bytes(8),
            "UTF-8",
        ),
        (
            b"CHR1"
            + bytes(4)
            + struct.pack("<I", 2)
            + (struct.pack("<H", 1) + b"a" + struct.pack("<d", 1.0)) * 2,
            "duplicate",
        ),
    ],
)
def test_decode_rejects(data: bytes, needle: str) -> None:
    with pytest.raises(guest.AbiError, match=needle):
        guest.decode_result(data)


def test_encode_rejects() -> None:
    with pytest.raises(guest.AbiError, match="finite"):
        guest.encode_params([1.0, math.inf])
    with pytest.raises(guest.AbiError, match="finite"):
        guest.encode_result(guest.GuestResult((math.nan,), {}))
    with pytest.raises(guest.AbiError, match="1..=255"):
        guest.encode_result(guest.GuestResult((), {"x" * 256: 1.0}))
    with pytest.raises(guest.AbiError, match="multiple of 8"):
        guest.decode_f64s(b"\0" * 7)


def test_splitmix_reference_values() -> None:
    rng = workload.SplitMix64(1234567)
    assert [rng.next_u64() for _ in range(3)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
    ]


def test_generator_budget_and_ranges() -> None:
    inst = workload.generate_instance(7, 200, 100, 110)
    total = sum(j.size for j in inst.jobs)
    assert inst.max_machines == math.ceil(total * 1.1 / 100 - 1e-9)
    assert all(5 <= j.size <= 90 and 1 <= j.duration <= 120 for j in inst.jobs)
    assert {j.priority for j in inst.jobs} <= {1.0, 25.0, 50.0, 75.0, 100.0}


def test_instance_validation() -> None:
    bad = workload.Instance(100.0, 2, (workload.Job(101.0, 1.0, 1.0),))
    with pytest.raises(guest.AbiError, match="job 0: size"):
        bad.encode()
    with pytest.raises(guest.AbiError, match="version"):
        workload.decode_instance(guest.encode_f64s([2.0, 100.0, 1.0]))
    with pytest.raises(guest.AbiError, match="max_machines"):
        workload.decode_instance(guest.encode_f64s([1.0, 100.0, 1.5]))
    with pytest.raises(guest.AbiError, match="8 values|genome must have"):
        workload.genome_dict([1.0])
    assert workload.genome_dict(workload.GOOD_GENOME)["lookahead"] == 0.6

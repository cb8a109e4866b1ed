"""Loads the rust_shared_library (cdylib) with ctypes and calls its C-ABI export."""

import ctypes
import zlib

from runfiles import Runfiles

LIBRARY = "chimera/tools/rust/tests/libchecksum_shared.so"


def test_export_matches_python_reference() -> None:
    library = ctypes.CDLL(Runfiles.Create().Rlocation(LIBRARY))
    checksum = library.adler32_of_sequence
    checksum.argtypes = [ctypes.c_uint32]
    checksum.restype = ctypes.c_uint32
    for length in (0, 1, 255, 1000):
        assert checksum(length) == zlib.adler32(bytes(i % 256 for i in range(length)))

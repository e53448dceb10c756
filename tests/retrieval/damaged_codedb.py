"""Code databases damaged where HDF5 loops forever or crashes (see
tests/retrieval/test_codedb_damaged.py for the layout they rely on)."""

import numpy as np

from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database


def _database(path) -> bytes:
    codes = np.random.default_rng(0).uniform(-1, 1, (5, 12))
    batch = CodeBatch(codes, list("abcde"), np.eye(5)[:, :3])
    write_code_database(str(path), [batch], bits=12, num_classes=3)
    return path.read_bytes()


def write_heap_loop(path) -> None:
    """A database whose first global-heap object's size (18) becomes 2048:
    the next header is read 2064 bytes on, inside the zero free space."""
    data = bytearray(_database(path))
    heap = data.index(b"GCOL")
    first = heap + 16  # object 1: "keras_dhsps.codedb"
    assert int.from_bytes(data[first : first + 2], "little") == 1
    assert data[first + 16 : first + 34] == b"keras_dhsps.codedb"
    assert data[first + 2064 : first + 2096] == bytes(32)
    data[first + 8 : first + 16] = (2048).to_bytes(8, "little")
    path.write_bytes(data)


def write_crashing_datatype(path) -> None:
    """A database whose ``format`` attribute's string datatype byte is
    flipped (HDF5 dies of SIGSEGV reading it).

    The attribute message: version, reserved, sizes of the name (7),
    datatype (20) and dataspace (8), the name padded to 8 bytes, then the
    datatype: class and version (0x19: variable-length, version 1), then
    its first bit field byte (1: a string), which becomes 0xFE."""
    data = bytearray(_database(path))
    name = data.index(b"\x01\x00\x07\x00\x14\x00\x08\x00format\x00\x00")
    kind = name + 16 + 1
    assert data[kind - 1 : kind + 1] == b"\x19\x01"
    data[kind] ^= 0xFF
    path.write_bytes(data)

"""Code databases written for the retrieval tests, and search equality."""

from __future__ import annotations

import numpy as np

from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.utils.codes import unpack_codes

BITS = 24


def packed_codes(rng, n, bits=BITS, distinct=12):
    patterns = rng.integers(0, 2, (distinct, bits), dtype=np.uint8)
    return np.packbits(patterns[rng.integers(0, distinct, n)], axis=1)


def write_database(path, packed, bits=BITS):
    """A code database of ``packed`` (the paths name the rows)."""
    codes = unpack_codes(packed, bits) if len(packed) else np.zeros((0, bits))
    paths = [f"image{i}.jpg" for i in range(len(packed))]
    write_code_database(
        str(path), [CodeBatch(codes=codes, paths=paths)], bits=bits
    )
    return str(path)


def flat_over(packed, bits=BITS):
    index = HammingIndex(bits, backend="numpy")
    index.add(packed)
    return index


def assert_same(expected, got, queries, ks=(1, 5, 40, 200), radii=(0, 3)):
    for k in ks:
        pairs = zip(
            expected.search(queries, k), got.search(queries, k), strict=True
        )
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)
    for radius in radii:
        pairs = zip(
            expected.range_search(queries, radius),
            got.range_search(queries, radius),
            strict=True,
        )
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


def write_parts(directory, sizes, seed, prefix="part"):
    """One code database per size (codes of :func:`packed_codes`, seeded):
    ``(parts, files)``, the packed codes and the paths in order."""
    rng = np.random.default_rng(seed)
    parts = [packed_codes(rng, n) for n in sizes]
    files = [
        write_database(directory / f"{prefix}{i}.h5", part)
        for i, part in enumerate(parts)
    ]
    return parts, files

"""HammingIndex: brute-force oracle, backend and method parity with ties,
radius."""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps.retrieval.index import MISSING_DISTANCE
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.index import faiss_available
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError

FAISS = pytest.mark.skipif(
    not faiss_available(), reason="faiss-cpu not installed"
)

#: (backend, method) pairs an index accepts: "mih" has NumPy tables only
#: (see test_add_without_copy_keeps_the_array). "mih" probes to the end
#: here (no scan fallback): small databases get short substrings, so that
#: stays quick.
INDEXES = [
    ("numpy", "flat"),
    pytest.param("faiss", "flat", marks=FAISS),
    ("numpy", "mih"),
]


def make_index(bits, backend, method):
    return HammingIndex(
        bits, backend=backend, method=method, scan_fraction=None
    )


def oracle_distances(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Bit-by-bit Hamming distance, independent of keras_dhsps.utils.codes."""
    q_bits = np.unpackbits(queries, axis=1).astype(np.int32)
    d_bits = np.unpackbits(database, axis=1).astype(np.int32)
    return np.abs(q_bits[:, None, :] - d_bits[None, :, :]).sum(axis=2)


def oracle_search(queries, database, k):
    dist = oracle_distances(queries, database)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def random_packed(rng, n, bits, *, distinct=None):
    """Random codes; ``distinct`` few patterns force many exact ties."""
    if distinct is not None:
        patterns = rng.integers(0, 2, size=(distinct, bits)) * 2 - 1
        codes = patterns[rng.integers(0, distinct, size=n)]
    else:
        codes = rng.integers(0, 2, size=(n, bits)) * 2 - 1
    return pack_codes(codes)


@pytest.mark.parametrize(("backend", "method"), INDEXES)
@pytest.mark.parametrize("bits", [12, 64, 130])
def test_search_matches_oracle_with_ties(method, backend, bits):
    rng = np.random.default_rng(bits)
    # 40 distinct patterns among 700 codes: every distance is shared by
    # many database items, so the k-th distance is almost always a tie.
    database = random_packed(rng, 700, bits, distinct=40)
    queries = random_packed(rng, 25, bits)
    index = make_index(bits, backend, method)
    index.add(database[:300])
    index.add(database[300:])  # indices continue at 300
    for k in (1, 7, 50):
        distances, indices = index.search(queries, k)
        expected_d, expected_i = oracle_search(queries, database, k)
        assert distances.dtype == np.int32 and indices.dtype == np.int64
        np.testing.assert_array_equal(distances, expected_d)
        np.testing.assert_array_equal(indices, expected_i)


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed")
def test_backends_identical_on_random_64_bit():
    rng = np.random.default_rng(7)
    # 5,000 random 64-bit codes and k = 100: the k-th distance is ~22 and
    # about 100 codes share it, so faiss's own cut is ambiguous.
    database = random_packed(rng, 5000, 64)
    queries = random_packed(rng, 40, 64)
    results = {}
    for backend in ("numpy", "faiss"):
        index = HammingIndex(64, backend=backend)
        index.add(database)
        results[backend] = (
            index.search(queries, 100),
            index.range_search(queries, 24),
        )
    (nd, ni), n_range = results["numpy"]
    (fd, fi), f_range = results["faiss"]
    np.testing.assert_array_equal(nd, fd)
    np.testing.assert_array_equal(ni, fi)
    for a, b in zip(n_range, f_range, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("backend", "method"), INDEXES)
def test_hand_computed_ties_and_radius_inclusive(method, backend):
    # 4-bit codes; query q = 1111.
    # item 0: 1111 d=0; item 1: 0111 d=1; item 2: 1110 d=1;
    # item 3: 0000 d=4; item 4: 1111 d=0; item 5: 1100 d=2.
    codes = [
        [1, 1, 1, 1],
        [-1, 1, 1, 1],
        [1, 1, 1, -1],
        [-1, -1, -1, -1],
        [1, 1, 1, 1],
        [1, 1, -1, -1],
    ]
    index = make_index(4, backend, method)
    index.add(pack_codes(codes))
    query = pack_codes([[1, 1, 1, 1]])
    distances, indices = index.search(query, 3)
    # Ties at 0 (items 0, 4) come in index order; the tie at 1 (items 1,
    # 2) is cut at k = 3 keeping the lower index.
    assert distances.tolist() == [[0, 0, 1]]
    assert indices.tolist() == [[0, 4, 1]]
    # Radius 2 is inclusive: items at distance 2 (item 5) are in; faiss's
    # strict semantics would have dropped it.
    lims, d, i = index.range_search(query, 2)
    assert lims.tolist() == [0, 5]
    assert d.tolist() == [0, 0, 1, 1, 2]
    assert i.tolist() == [0, 4, 1, 2, 5]
    lims, d, i = index.range_search(query, 0)
    assert i.tolist() == [0, 4]
    # k larger than the index pads with -1 / int32 max.
    distances, indices = index.search(query, 8)
    assert indices[0, 6:].tolist() == [-1, -1]
    assert distances[0, 6:].tolist() == [MISSING_DISTANCE] * 2
    assert indices[0, :6].tolist() == [0, 4, 1, 2, 5, 3]


@pytest.mark.parametrize(("backend", "method"), INDEXES)
def test_range_search_matches_oracle(method, backend):
    rng = np.random.default_rng(3)
    database = random_packed(rng, 400, 24, distinct=60)
    queries = random_packed(rng, 30, 24)
    index = make_index(24, backend, method)
    index.add(database)
    dist = oracle_distances(queries, database)
    lims, d, i = index.range_search(queries, 9)
    for q in range(len(queries)):
        expected = np.flatnonzero(dist[q] <= 9)
        expected = expected[np.argsort(dist[q, expected], kind="stable")]
        got = i[lims[q] : lims[q + 1]]
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(
            d[lims[q] : lims[q + 1]], dist[q, expected]
        )


@pytest.mark.parametrize(("backend", "method"), INDEXES)
def test_empty_index_and_save_load_round_trip(method, backend, tmp_path):
    index = make_index(16, backend, method)
    query = np.zeros((2, 2), dtype=np.uint8)
    distances, indices = index.search(query, 3)
    assert (indices == -1).all() and (distances == MISSING_DISTANCE).all()
    lims, d, i = index.range_search(query, 5)
    assert lims.tolist() == [0, 0, 0] and d.size == 0
    rng = np.random.default_rng(0)
    index.add(random_packed(rng, 50, 16))
    path = str(tmp_path / "index.npz")
    index.save(path)
    for other in ("numpy", backend):
        loaded = HammingIndex.load(path, backend=other)
        assert loaded.num_bits == 16 and loaded.ntotal == 50
        np.testing.assert_array_equal(loaded.codes, index.codes)
        queries = random_packed(rng, 5, 16)
        for a, b in zip(
            loaded.search(queries, 10), index.search(queries, 10), strict=True
        ):
            np.testing.assert_array_equal(a, b)


def test_bad_inputs_raise():
    index = HammingIndex(16, backend="numpy")
    with pytest.raises(DHSPSError, match="2 bytes per code"):
        index.add(np.zeros((3, 3), dtype=np.uint8))
    with pytest.raises(DHSPSError, match="uint8"):
        index.add(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(DHSPSError, match="k must be"):
        index.search(np.zeros((1, 2), dtype=np.uint8), 0)
    with pytest.raises(DHSPSError, match="radius"):
        index.range_search(np.zeros((1, 2), dtype=np.uint8), -1)
    with pytest.raises(DHSPSError, match="unknown index backend"):
        HammingIndex(16, backend="annoy")
    with pytest.raises(DHSPSError, match="unknown index method"):
        HammingIndex(16, method="ivf")
    with pytest.raises(DHSPSError, match="num_bits must be"):
        HammingIndex(0)


def test_add_without_copy_keeps_the_array():
    codes = np.zeros((5, 2), dtype=np.uint8)
    index = HammingIndex(16, backend="numpy")
    index.add(codes, copy=False)
    assert np.shares_memory(index.codes, codes)
    index.add(codes, copy=False)  # a second add concatenates
    assert index.ntotal == 10 and not np.shares_memory(index.codes, codes)
    assert not index.codes.flags.writeable
    index.search(codes[:1], 1)
    assert index.extra_bytes == 0  # 2-byte codes: the scan reads them
    assert HammingIndex(16, method="mih").backend == "numpy"  # mih: NumPy
    with pytest.raises(DHSPSError, match="NumPy tables only"):
        HammingIndex(16, method="mih", backend="faiss")


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed")
def test_faiss_holds_its_own_copy():
    index = HammingIndex(16, backend="faiss")
    index.add(np.zeros((50, 2), dtype=np.uint8), copy=False)
    assert index.extra_bytes == 100


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, codes=np.zeros((1, 1), dtype=np.uint8))
    with pytest.raises(DHSPSError, match="not a saved HammingIndex"):
        HammingIndex.load(str(path))
    with pytest.raises(DHSPSError, match="not found"):
        HammingIndex.load(str(tmp_path / "missing.npz"))

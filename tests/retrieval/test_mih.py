"""Multi-index hashing: exactly the flat index's results, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.retrieval import mih
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.utils.errors import DHSPSError
from tests.retrieval.helpers import assert_same

# None: probe to the end; 0.0: every query past 64 entries is scanned.
SCAN_FRACTIONS = [None, 0.0, mih.SCAN_FRACTION]


def packed_codes(rng, n, bits, distinct=None):
    """Random packed codes; ``distinct`` patterns force many exact ties."""
    if distinct:
        patterns = rng.integers(0, 2, (distinct, bits), dtype=np.uint8)
        return np.packbits(patterns[rng.integers(0, distinct, n)], axis=1)
    return np.packbits(rng.integers(0, 2, (n, bits), dtype=np.uint8), axis=1)


def near_codes(rng, n, bits, centres=5, flips=0.08):
    """Codes around a few centres (trained-like: small distances, ties)."""
    centre = rng.integers(0, 2, (centres, bits), dtype=np.uint8)
    noise = (rng.random((n, bits)) < flips).astype(np.uint8)
    return np.packbits(centre[rng.integers(0, centres, n)] ^ noise, axis=1)


def indexes(bits, database, fraction, m=None):
    flat = HammingIndex(bits, backend="numpy")
    flat.add(database)
    multi = HammingIndex(
        bits,
        method="mih",
        num_substrings=m,
        scan_fraction=fraction,
    )
    multi.add(database)
    return flat, multi


@pytest.mark.parametrize("fraction", SCAN_FRACTIONS)
@settings(max_examples=15, deadline=None)
@given(
    bits=st.sampled_from([1, 5, 12, 24, 31, 64, 70]),
    n=st.integers(1, 120),
    distinct=st.sampled_from([None, 1, 3, 40]),
    near=st.booleans(),
    m=st.sampled_from([None, 1, 2, 3]),
    seed=st.integers(0, 2**16),
)
def test_equals_flat_on_random_inputs(
    fraction, bits, n, distinct, near, m, seed
):
    rng = np.random.default_rng(seed)
    if near and bits > 4:
        database = near_codes(rng, n, bits)
        queries = near_codes(rng, 6, bits)
    else:
        database = packed_codes(rng, n, bits, distinct)
        queries = packed_codes(rng, 6, bits)
    queries[0] = database[0]  # an exact match
    # Probing to the end enumerates whole substrings: 12 bits at most then.
    least = -(-bits // (12 if fraction is None else 32))
    m = least if m is None and fraction is None else m
    m = None if m is None else min(max(m, least), bits)
    flat, multi = indexes(bits, database, fraction, m)
    assert_same(flat, multi, queries, (1, 3, n, n + 5), (0, 1, 3, bits))


@pytest.mark.parametrize("fraction", SCAN_FRACTIONS)
def test_adversarial_inputs(fraction):
    rng = np.random.default_rng(1)
    same = np.tile(packed_codes(rng, 1, 40), (200, 1))  # all codes equal
    duplicates = np.repeat(packed_codes(rng, 30, 40), 7, axis=0)
    queries = np.concatenate(
        [same[:1], duplicates[:2], packed_codes(rng, 3, 40)]
    )
    for database in (same, duplicates):
        flat, multi = indexes(40, database, fraction)
        assert_same(flat, multi, queries, (1, 7, 199, 250), (0, 2, 40))
    # One code; the k larger than the database is padded.
    flat, multi = indexes(40, same[:1], fraction)
    distances, indices = multi.search(queries, 3)
    assert (indices[:, 1:] == -1).all()
    assert (distances[:, 1:] == mih.MISSING_DISTANCE).all()
    assert_same(flat, multi, queries, (1, 3), (0, 40))


def test_trained_like_codes_ties_at_the_kth():
    rng = np.random.default_rng(5)
    database = near_codes(rng, 3000, 64, centres=20, flips=0.05)
    queries = near_codes(rng, 40, 64, centres=20, flips=0.05)
    for m in (None, 2, 5):
        flat, multi = indexes(64, database, mih.SCAN_FRACTION, m)
        assert_same(flat, multi, queries, (1, 10, 100, 1000), (0, 1, 2, 3))


def test_empty_database_and_add_after_search():
    index = HammingIndex(16, backend="numpy", method="mih")
    query = np.zeros((2, 2), dtype=np.uint8)
    distances, indices = index.search(query, 3)
    assert (indices == -1).all() and (distances == mih.MISSING_DISTANCE).all()
    lims, d, i = index.range_search(query, 0)
    assert lims.tolist() == [0, 0, 0] and i.size == 0
    index.add(np.array([[0, 1], [0, 0]], dtype=np.uint8))
    assert index.search(query, 1)[1].tolist() == [[1], [1]]
    index.add(np.array([[0, 0]], dtype=np.uint8))  # the tables are rebuilt
    assert index.range_search(query, 0)[2].tolist() == [1, 2, 1, 2]


def test_rule_for_the_number_of_substrings():
    rule = mih.choose_num_substrings
    assert rule(64, 10**8) == 3  # ceil(64 / 26.6)
    assert rule(64, 10**7) == 3
    assert rule(64, 10**6) == 4
    assert rule(32, 10**7) == 2
    assert rule(128, 10**7) == 6
    assert rule(128, 2) == 4  # substrings of at most 32 bits
    assert rule(5, 10**6) == 1
    assert HammingIndex(64, method="mih", num_substrings=5).num_substrings == 5
    assert HammingIndex(64, method="flat").num_substrings is None
    with pytest.raises(DHSPSError, match="num_substrings"):
        HammingIndex(8, method="mih", num_substrings=9)
    with pytest.raises(DHSPSError, match="at most 32 bits"):
        HammingIndex(70, method="mih", num_substrings=2)
    with pytest.raises(DHSPSError, match="unknown index method"):
        HammingIndex(8, method="lsh")


def test_substrings_keys_and_masks():
    assert mih.substring_bounds(70, 3) == [(0, 24), (24, 47), (47, 70)]
    rng = np.random.default_rng(0)
    packed = packed_codes(rng, 50, 70)
    bits = np.unpackbits(packed, axis=1)
    for start, stop in mih.substring_bounds(70, 3):
        weights = 2 ** np.arange(stop - start - 1, -1, -1, dtype=np.uint64)
        expected = bits[:, start:stop].astype(np.uint64) @ weights
        np.testing.assert_array_equal(
            mih.substring_keys(packed, start, stop), expected
        )
    for radius in range(5):
        masks = mih.flip_masks(9, radius)
        assert len(masks) == len(set(masks.tolist())) == math.comb(9, radius)
        assert (np.bitwise_count(masks) == radius).all()
        assert masks.max(initial=0) < 2**9


def test_tables_bucket_the_codes_by_key():
    rng = np.random.default_rng(2)
    packed = packed_codes(rng, 5000, 64, distinct=300)
    keys = mih.substring_keys(packed, 10, 31)
    table = mih.SubstringTable.build(packed, 10, 31)
    assert table.low_bits == 21 - table.top_bits > 0  # keys share buckets
    probes = np.concatenate([keys[:50], np.arange(50, dtype=np.uint32)])
    starts, ends = table.buckets(probes)
    for probe, start, end in zip(probes, starts, ends, strict=True):
        expected = np.flatnonzero(
            keys >> table.low_bits == probe >> table.low_bits
        )
        np.testing.assert_array_equal(np.sort(table.ids[start:end]), expected)


def test_memory_beside_the_codes():
    rng = np.random.default_rng(3)
    n = 1 << 16
    packed = packed_codes(rng, n, 64)
    index = HammingIndex(64, backend="numpy", method="mih")
    index.add(packed, copy=False)
    assert np.shares_memory(index.codes, packed)  # one copy of the codes
    # uint32 ids per substring and a uint32 offset per bucket (4 or more
    # codes a bucket): at most 5 bytes a code per substring.
    m = index.num_substrings
    index.search(packed[:3], 5)  # tables and words for the scan, if any
    assert 4 * m * n < index.extra_bytes <= 5 * m * n + 4 * m
    # A 64-bit flat scan reads the codes in place.
    flat = HammingIndex(64, backend="numpy")
    flat.add(packed, copy=False)
    flat.search(packed[:1], 1)
    assert np.shares_memory(flat._database_words(), packed)
    assert flat.extra_bytes == 0
    padded = HammingIndex(40, backend="numpy")  # 5-byte codes: words of 8
    padded.add(packed[:, :5])
    padded.search(packed[:1, :5], 1)
    assert padded.extra_bytes == 8 * n

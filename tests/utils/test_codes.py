"""Tests for keras_dhsps.utils.codes: binarization, packing, popcount distances."""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps.utils.codes import InvalidInputError
from keras_dhsps.utils.codes import binarize
from keras_dhsps.utils.codes import hamming_distances
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.codes import packed_to_words
from keras_dhsps.utils.codes import unpack_codes

# Code lengths used by hashing papers (12, 24, 32, 48, 64), lengths that are
# not a multiple of 8, and lengths that span several 64-bit words.
BIT_LENGTHS = [1, 7, 8, 12, 16, 24, 31, 32, 33, 48, 63, 64, 65, 96, 128, 130]


def brute_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances by comparing signs element by element (no packing)."""
    out = np.zeros((len(a), len(b)), dtype=np.int64)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = sum(
                1 for u, v in zip(x, y, strict=True) if (u >= 0) != (v >= 0)
            )
    return out


def test_binarize_sends_zero_to_plus_one():
    # np.sign(0) == 0 would make (K - <b, b'>) / 2 non-integral; here
    # u >= 0 -> +1, including -0.0 (which compares equal to 0).
    codes = np.array([[0.0, -0.0, -1e-12, 1e-12, -3.0, 3.0]])
    np.testing.assert_array_equal(binarize(codes), [[1, 1, -1, 1, -1, 1]])
    assert binarize(codes).dtype == np.int8


def test_binarize_accepts_pm1_integers_and_lists():
    np.testing.assert_array_equal(binarize([[1, -1, 1]]), [[1, -1, 1]])
    np.testing.assert_array_equal(
        binarize(np.array([[-1, 1]], dtype=np.int64)), [[-1, 1]]
    )


@pytest.mark.parametrize(
    "codes, fragment",
    [
        (np.zeros(4), "2-D"),
        (np.zeros((2, 0)), "num_bits >= 1"),
        (np.array([[0.5, np.nan]]), "finite"),
        (np.array([[np.inf, 1.0]]), "finite"),
        (np.array([[0, 1, 1]]), r"only -1 and \+1"),  # {0, 1} bits
        (np.array([[True, False]]), "real-valued"),
        (np.array([[1, 0]], dtype=np.uint8), "real-valued"),
        (np.array([["a", "b"]]), "real-valued"),
    ],
)
def test_binarize_rejects_bad_codes_naming_shape_and_dtype(codes, fragment):
    with pytest.raises(InvalidInputError, match=fragment) as info:
        binarize(codes)
    message = str(info.value)
    assert "codes" in message and "shape" in message
    assert isinstance(info.value, ValueError)


def test_pack_codes_layout_is_msb_first_and_zero_padded():
    # K = 12: bits 1011 0000 | 1111 (+ 4 zero padding bits)
    #       -> bytes 0b10110000 = 176, 0b11110000 = 240.
    codes = [[1, -1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(pack_codes(codes), [[176, 240]])
    # Same as np.packbits of the bits.
    bits = np.array(codes) >= 0
    np.testing.assert_array_equal(pack_codes(codes), np.packbits(bits, axis=1))


@pytest.mark.parametrize("num_bits", BIT_LENGTHS)
def test_pack_unpack_round_trip(num_bits):
    rng = np.random.default_rng(num_bits)
    codes = rng.standard_normal((9, num_bits)).astype(np.float32)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8
    assert packed.shape == (9, -(-num_bits // 8))
    unpacked = unpack_codes(packed, num_bits)
    assert unpacked.dtype == np.int8
    np.testing.assert_array_equal(unpacked, binarize(codes))
    # Padding bits are zero.
    padding = packed.shape[1] * 8 - num_bits
    if padding:
        assert not np.any(packed[:, -1] & ((1 << padding) - 1))


@pytest.mark.parametrize("num_bits", BIT_LENGTHS)
def test_hamming_distances_match_brute_force(num_bits):
    rng = np.random.default_rng(100 + num_bits)
    queries = rng.standard_normal((5, num_bits))
    database = rng.standard_normal((11, num_bits))
    database[3] = queries[0]  # one exact match: distance 0
    database[4] = -queries[0]  # its complement: distance K (no exact zeros)
    got = hamming_distances(pack_codes(queries), pack_codes(database))
    assert got.dtype == np.int32 and got.shape == (5, 11)
    np.testing.assert_array_equal(got, brute_hamming(queries, database))
    assert got[0, 3] == 0 and got[0, 4] == num_bits


def test_hamming_distance_equals_inner_product_formula():
    # d = (K - <b_q, b_d>) / 2 for +-1 codes.
    rng = np.random.default_rng(7)
    q = binarize(rng.standard_normal((4, 24))).astype(np.int64)
    d = binarize(rng.standard_normal((6, 24))).astype(np.int64)
    expected = (24 - q @ d.T) // 2
    np.testing.assert_array_equal(
        hamming_distances(pack_codes(q), pack_codes(d)), expected
    )


def test_hamming_distances_worked_example():
    # q = 1111 1111 1111; d0 differs in the last two bits, d1 in all 12.
    q = pack_codes([[1] * 12])
    d = pack_codes([[1] * 10 + [-1, -1], [-1] * 12])
    np.testing.assert_array_equal(hamming_distances(q, d), [[2, 12]])


def test_hamming_distances_blocks_over_many_queries(monkeypatch):
    # Force tiny blocks: results must not depend on the block size.
    import keras_dhsps.utils.codes as codes_module

    rng = np.random.default_rng(3)
    q = pack_codes(rng.standard_normal((13, 40)))
    d = pack_codes(rng.standard_normal((17, 40)))
    expected = hamming_distances(q, d)
    monkeypatch.setattr(codes_module, "_BLOCK_ELEMENTS", 17 * 2)
    np.testing.assert_array_equal(hamming_distances(q, d), expected)


def test_hamming_distances_rejects_mismatched_or_unpacked_input():
    q = pack_codes(np.ones((2, 16)))
    with pytest.raises(InvalidInputError, match="same number of bytes"):
        hamming_distances(q, pack_codes(np.ones((2, 24))))
    with pytest.raises(InvalidInputError, match="uint8") as info:
        hamming_distances(np.ones((2, 2)), q)
    assert "query_packed" in str(info.value) and "float64" in str(info.value)
    with pytest.raises(InvalidInputError, match="database_packed"):
        hamming_distances(q, q[0])


def test_unpack_codes_validates_num_bits():
    packed = pack_codes(np.ones((2, 12)))
    with pytest.raises(InvalidInputError, match="needs 1 bytes"):
        unpack_codes(packed, 8)
    with pytest.raises(InvalidInputError, match="needs 3 bytes"):
        unpack_codes(packed, 17)
    with pytest.raises(InvalidInputError, match="int"):
        unpack_codes(packed, 12.0)
    with pytest.raises(InvalidInputError, match="uint8"):
        unpack_codes(packed.astype(np.int16), 12)


def test_packed_to_words_pads_to_the_smallest_word():
    for num_bits, dtype, width in [
        (8, np.uint8, 1),
        (12, np.uint16, 1),
        (24, np.uint32, 1),
        (32, np.uint32, 1),
        (48, np.uint64, 1),
        (64, np.uint64, 1),
        (65, np.uint64, 2),
        (130, np.uint64, 3),
    ]:
        words = packed_to_words(pack_codes(np.ones((3, num_bits))))
        assert words.dtype == dtype and words.shape == (3, width), num_bits
        # Popcount of the words = number of +1 bits (padding is zero).
        np.testing.assert_array_equal(
            np.bitwise_count(words).sum(axis=1), num_bits
        )


def test_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((4, 12))
    before = codes.copy()
    packed = pack_codes(codes)
    packed_before = packed.copy()
    binarize(codes)
    unpack_codes(packed, 12)
    hamming_distances(packed, packed)
    packed_to_words(packed)
    np.testing.assert_array_equal(codes, before)
    np.testing.assert_array_equal(packed, packed_before)

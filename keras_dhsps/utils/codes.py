"""Binary hash codes: binarization, bit packing and Hamming distances.

One convention for the whole package (docs/metrics.md §2): ``b = +1 if
u >= 0 else -1`` (an exact 0 goes to +1, never 0); bit 1 means +1, packed
most significant bit first (``np.packbits``' layout) with the last byte of a
code zero padded; ``d = popcount(bits_q XOR bits_d)`` on machine words with
``np.bitwise_count``, which equals ``(K - <b_q, b_d>) / 2`` for ±1 codes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from keras_dhsps.utils.errors import DHSPSError

__all__ = [
    "InvalidInputError",
    "binarize",
    "hamming_distances",
    "pack_codes",
    "packed_to_words",
    "unpack_codes",
]

# Query rows per block in `hamming_distances`, chosen so that one block of
# XOR words stays near 32 MiB (the largest block glibc reuses without fresh
# page faults, which dominate the cost of large temporaries).
_BLOCK_ELEMENTS = 1 << 22


class InvalidInputError(DHSPSError, ValueError):
    """An array handed to a codes or metrics function has the wrong shape,
    dtype or values. The message names the argument, its shape and dtype."""


def describe(array: np.ndarray) -> str:
    """``"shape (3, 4) and dtype float32"``, for error messages."""
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def check_real_codes(codes: npt.ArrayLike, name: str) -> np.ndarray:
    """Validates real-valued or ±1 codes of shape ``(N, K)``; returns an array.

    Floating codes must be finite (``NaN >= 0`` is False, so a NaN would be
    binarized to -1 silently). Integer codes must be ±1: ``{0, 1}`` bits would
    all binarize to +1. Bool and unsigned arrays are rejected for the same
    reason; convert bits with ``2 * bits - 1`` or use `unpack_codes`.

    Raises:
        InvalidInputError: naming ``name``, the shape and the dtype.
    """
    array = np.asarray(codes)
    if array.ndim != 2 or array.shape[1] == 0:
        raise InvalidInputError(
            f"{name} must be a 2-D array of shape (num_items, num_bits) with "
            f"num_bits >= 1; got {describe(array)}"
        )
    kind = array.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(array)):
            raise InvalidInputError(
                f"{name} must be finite; got NaN or inf in an array of "
                f"{describe(array)}"
            )
    elif kind == "i":
        if array.size and not np.all((array == 1) | (array == -1)):
            raise InvalidInputError(
                f"{name} with an integer dtype must hold only -1 and +1 "
                f"(for {{0, 1}} bits pass 2 * bits - 1); got {describe(array)}"
            )
    else:
        raise InvalidInputError(
            f"{name} must be real-valued or ±1 codes (a float or signed "
            f"integer dtype); got {describe(array)}. For {{0, 1}} bits pass "
            f"2 * bits - 1; for packed codes use unpack_codes first"
        )
    return array


def binarize(codes: npt.ArrayLike) -> npt.NDArray[np.int8]:
    r"""Maps real codes to ±1: :math:`b = +1` if :math:`u \ge 0`, else -1.

    Args:
        codes: ``(N, K)`` real-valued relaxed codes (e.g. tanh outputs) or ±1
            codes. Not modified.

    Returns:
        ``(N, K)`` ``int8`` array with values in ``{-1, +1}``; 0 maps to +1.

    Raises:
        InvalidInputError: if ``codes`` is not 2-D, holds NaN/inf, or is an
            integer array with values other than ±1.

    Example:

    >>> binarize([[0.0, -0.0, -1e-9, 2.5]])
    array([[ 1,  1, -1,  1]], dtype=int8)
    """
    array = check_real_codes(codes, "codes")
    return np.where(array >= 0, np.int8(1), np.int8(-1))


def pack_codes(codes: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Binarizes (``u >= 0`` -> bit 1) and packs codes into bytes.

    The layout is ``np.packbits(..., axis=1)``: the first bit of a code is the
    most significant bit of its first byte, and the last byte is zero padded
    when ``K`` is not a multiple of 8 (docs/peers.md §5, pitfall 16).

    Args:
        codes: ``(N, K)`` real-valued or ±1 codes. Not modified.

    Returns:
        ``(N, ceil(K / 8))`` ``uint8`` array.

    Raises:
        InvalidInputError: as `binarize`.

    Example:

    >>> pack_codes([[1, -1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1]])  # K = 12
    array([[176, 240]], dtype=uint8)
    """
    array = check_real_codes(codes, "codes")
    return np.packbits(array >= 0, axis=1)


def unpack_codes(packed: npt.ArrayLike, num_bits: int) -> npt.NDArray[np.int8]:
    """Inverse of `pack_codes`: packed bytes back to ±1 codes.

    Args:
        packed: ``(N, ceil(num_bits / 8))`` ``uint8`` array. Not modified.
        num_bits: the code length ``K``; the padding bits are dropped.

    Returns:
        ``(N, num_bits)`` ``int8`` array with values in ``{-1, +1}``.

    Raises:
        InvalidInputError: if ``packed`` is not a 2-D ``uint8`` array, or its
            width is not ``ceil(num_bits / 8)``.

    Example:

    >>> unpack_codes(np.array([[176, 240]], dtype=np.uint8), 12)
    array([[ 1, -1,  1,  1, -1, -1, -1, -1,  1,  1,  1,  1]], dtype=int8)
    """
    array = check_packed(packed, "packed")
    if isinstance(num_bits, bool) or not isinstance(
        num_bits, (int, np.integer)
    ):
        raise InvalidInputError(
            f"num_bits must be an int; got {type(num_bits).__name__}"
        )
    if num_bits < 1 or -(-num_bits // 8) != array.shape[1]:
        raise InvalidInputError(
            f"num_bits={num_bits} needs {max(-(-num_bits // 8), 0)} bytes per "
            f"code, but packed has {describe(array)}"
        )
    bits = np.unpackbits(array, axis=1, count=int(num_bits))
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)


def check_packed(packed: npt.ArrayLike, name: str) -> np.ndarray:
    """Validates a 2-D ``uint8`` array of packed codes and returns it."""
    array = np.asarray(packed)
    if array.ndim != 2 or array.dtype != np.uint8 or array.shape[1] == 0:
        raise InvalidInputError(
            f"{name} must be a 2-D uint8 array of packed codes, shape "
            f"(num_items, ceil(num_bits / 8)); got {describe(array)}"
        )
    return array


def packed_to_words(packed: npt.ArrayLike) -> np.ndarray:
    """Views packed codes as the fewest machine words that hold them.

    ``B = ceil(K / 8)`` bytes become one ``uint8``, ``uint16`` or ``uint32``
    word when ``B`` is 1, 2 or 3-4, and ``ceil(B / 8)`` ``uint64`` words
    otherwise, zero padded. XOR and popcount are bytewise, so the byte order
    inside a word does not matter as long as every operand is converted the
    same way; distances are unchanged by the padding.

    Args:
        packed: ``(N, B)`` ``uint8`` packed codes. Not modified.

    Returns:
        ``(N, W)`` C-contiguous array of unsigned words.
    """
    array = check_packed(packed, "packed")
    num_bytes = array.shape[1]
    if num_bytes == 1:
        dtype, width = np.dtype(np.uint8), 1
    elif num_bytes == 2:
        dtype, width = np.dtype(np.uint16), 2
    elif num_bytes <= 4:
        dtype, width = np.dtype(np.uint32), 4
    else:
        dtype, width = np.dtype(np.uint64), -(-num_bytes // 8) * 8
    padded = np.zeros((array.shape[0], width), dtype=np.uint8)
    padded[:, :num_bytes] = array
    return padded.view(dtype)


def hamming_distances(
    query_packed: npt.ArrayLike, database_packed: npt.ArrayLike
) -> npt.NDArray[np.int32]:
    r"""All pairwise Hamming distances between packed codes, by popcount.

    .. math:: d(q, n) = \mathrm{popcount}(\mathrm{bits}_q \oplus
              \mathrm{bits}_n) = (K - \langle b_q, b_n \rangle) / 2

    Works for any ``K`` (12, 24, 48, 130, ...): codes are viewed as machine
    words (`packed_to_words`) and the per-word popcounts summed. Queries are
    processed in blocks so temporaries stay near 32 MiB.

    Args:
        query_packed: ``(Q, B)`` ``uint8`` codes from `pack_codes`.
        database_packed: ``(N, B)`` ``uint8`` codes, same ``B``.

    Returns:
        ``(Q, N)`` ``int32`` distances.

    Raises:
        InvalidInputError: if either array is not 2-D ``uint8`` or the widths
            differ.

    Example:

    >>> q = pack_codes([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    >>> d = pack_codes([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1],
    ...                 [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]])
    >>> hamming_distances(q, d)
    array([[ 2, 12]], dtype=int32)
    """
    query = check_packed(query_packed, "query_packed")
    database = check_packed(database_packed, "database_packed")
    if query.shape[1] != database.shape[1]:
        raise InvalidInputError(
            "query_packed and database_packed must have the same number of "
            f"bytes per code; got query_packed with {describe(query)} and "
            f"database_packed with {describe(database)}"
        )
    query_words = packed_to_words(query)
    database_words = packed_to_words(database)
    num_queries, num_items = query.shape[0], database.shape[0]
    out = np.empty((num_queries, num_items), dtype=np.int32)
    block = max(1, _BLOCK_ELEMENTS // max(num_items, 1))
    for start in range(0, num_queries, block):
        stop = min(start + block, num_queries)
        out[start:stop] = word_distances(
            query_words[start:stop], database_words
        )
    return out


def distance_dtype(num_words: int, word_itemsize: int) -> np.dtype:
    """``uint8`` when every distance fits in 255 (codes of <= 248 padded
    bits), ``uint16`` otherwise."""
    return np.dtype(np.uint8 if num_words * word_itemsize <= 31 else np.uint16)


# Query rows per inner block of `word_distances` and `shares_a_label`: the
# combined words of one block (about 1 MiB) stay in cache between the XOR
# (or AND) and the popcount (or the test for zero).
_CACHE_ELEMENTS = 1 << 17


def word_distances(
    query_words: np.ndarray,
    database_words: np.ndarray,
    *,
    out: np.ndarray | None = None,
    combine: str = "xor",
) -> np.ndarray:
    """Popcounts of XOR-ed (or AND-ed) word-packed codes (`packed_to_words`).

    Internal building block shared with `keras_dhsps.metrics`: with
    ``combine="xor"`` it gives Hamming distances, with ``"and"`` the number
    of shared set bits (shared labels). Returns a ``(Q, N)`` array of
    `distance_dtype`; ``out`` (that dtype, flat or ``(Q, N)``, at least
    ``Q * N`` elements) lets a loop over query chunks reuse its memory.
    Queries are processed in blocks of about 128K pairs so the words being
    counted stay in cache.
    """
    num_queries, num_words = query_words.shape
    num_items = database_words.shape[0]
    shape = (num_queries, num_items)
    dtype = distance_dtype(num_words, query_words.itemsize)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    else:
        out = out.reshape(-1)[: shape[0] * shape[1]].reshape(shape)
    op = np.bitwise_xor if combine == "xor" else np.bitwise_and
    columns = np.ascontiguousarray(database_words.T)  # (W, N)
    block = max(1, min(num_queries, _CACHE_ELEMENTS // max(num_items, 1)))
    words = np.empty((block, num_items), dtype=query_words.dtype)
    counts = np.empty((block, num_items), dtype=np.uint8)
    for start in range(0, num_queries, block):
        stop = min(start + block, num_queries)
        rows = stop - start
        target = out[start:stop]
        for w in range(num_words):
            op(query_words[start:stop, w, None], columns[w], out=words[:rows])
            if w == 0 and dtype == np.uint8:
                np.bitwise_count(words[:rows], out=target)
                continue
            np.bitwise_count(words[:rows], out=counts[:rows])
            if w == 0:
                target[...] = counts[:rows]
            else:
                target += counts[:rows]
    return out


def shares_a_label(
    query_words: np.ndarray, database_words: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Whether word-packed labels share a bit: ``(Q, N)`` bool
    ``labels_q & labels_n != 0`` (binary relevance), written into ``out``.

    Internal building block shared with `keras_dhsps.metrics`, the bool
    counterpart of ``word_distances(..., combine="and")``, blocked the same
    way so the AND-ed words stay in cache.
    """
    num_queries, num_words = query_words.shape
    num_items = database_words.shape[0]
    columns = np.ascontiguousarray(database_words.T)  # (W, N)
    block = max(1, min(num_queries, _CACHE_ELEMENTS // max(num_items, 1)))
    words = np.empty((block, num_items), dtype=query_words.dtype)
    for start in range(0, num_queries, block):
        stop = min(start + block, num_queries)
        target, scratch = out[start:stop], words[: stop - start]
        for w in range(num_words):
            np.bitwise_and(
                query_words[start:stop, w, None], columns[w], out=scratch
            )
            if w == 0:
                np.not_equal(scratch, 0, out=target)
            else:
                target |= scratch != 0
    return out

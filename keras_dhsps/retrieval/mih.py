"""Exact multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012).

Codes are cut into ``m`` substrings, each indexed by a table keyed on its
value. A code within Hamming distance ``r`` of a query has a substring
within ``floor(r / m)`` of the query's (pigeonhole). The search widens the
substrings' radii one at a time, verifies candidates by their full distance
and stops once the k-th neighbour is certain, so the results equal the
exhaustive scan's, ties by database index included. A query whose probes
would touch too much of the database finishes by the exhaustive scan.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from keras_dhsps.retrieval.codes import packed_to_words

#: Distance reported for a missing result (faiss's binary-index filler).
MISSING_DISTANCE = np.iinfo(np.int32).max
#: Index reported for a missing result.
MISSING_INDEX = -1
#: Longest substring: table keys are ``uint32``.
MAX_SUBSTRING_BITS = 32
#: Default share of the database a query may probe before it is scanned.
SCAN_FRACTION = 1 / 16
#: Queries searched together (bounds the candidates held at once).
QUERY_BLOCK = 256


def sorted_rows(rows, cols, dists, num_rows):
    """Orders (row, distance, index) triples; returns lims, dists, indices."""
    order = np.lexsort((cols, dists, rows))
    lims = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=lims[1:])
    return (
        lims,
        dists[order].astype(np.int32, copy=False),
        cols[order].astype(np.int64, copy=False),
    )


def first_k(lims, dists, indices, k):
    """The first ``k`` results of each sorted range-search row, padded."""
    num_rows = len(lims) - 1
    out_d = np.full((num_rows, k), MISSING_DISTANCE, dtype=np.int32)
    out_i = np.full((num_rows, k), MISSING_INDEX, dtype=np.int64)
    counts = np.minimum(np.diff(lims), k)
    rows = np.repeat(np.arange(num_rows), counts)
    ranks = np.arange(counts.sum()) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    source = lims[:-1][rows] + ranks
    out_d[rows, ranks] = dists[source]
    out_i[rows, ranks] = indices[source]
    return out_d, out_i


def choose_num_substrings(num_bits: int, num_codes: int) -> int:
    """``m = ceil(b / log2 N)`` (Norouzi et al.), at least
    ``ceil(b / 32)`` and at most ``b``."""
    least = -(-num_bits // MAX_SUBSTRING_BITS)
    if num_codes < 4:
        return least
    m = math.ceil(num_bits / math.log2(num_codes))
    return int(min(num_bits, max(least, m)))


def substring_bounds(num_bits: int, num_substrings: int) -> list:
    """``[(start, stop), ...]``: ``m`` runs of bits, lengths within one."""
    base, extra = divmod(num_bits, num_substrings)
    lengths = [base + (j < extra) for j in range(num_substrings)]
    stops = np.cumsum(lengths)
    return [
        (int(stop - n), int(stop))
        for n, stop in zip(lengths, stops, strict=True)
    ]


def substring_keys(packed: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bits ``[start, stop)`` of each packed code as ``uint32`` keys."""
    first, last = start // 8, (stop - 1) // 8
    keys = np.empty(len(packed), dtype=np.uint32)
    shift = np.uint64(8 * (last + 1) - stop)
    mask = np.uint64((1 << (stop - start)) - 1)
    for lo in range(0, len(packed), 1 << 22):
        block = packed[lo : lo + (1 << 22), first : last + 1]
        acc = np.zeros(len(block), dtype=np.uint64)
        for column in range(last + 1 - first):
            acc <<= np.uint64(8)
            acc |= block[:, column]
        keys[lo : lo + len(block)] = (acc >> shift) & mask
    return keys


def flip_masks(length: int, radius: int) -> np.ndarray:
    """Every ``length``-bit ``uint32`` mask with ``radius`` bits set."""
    masks = np.zeros(1, dtype=np.uint32)
    highest = np.full(1, -1)
    for _ in range(radius):
        bits = np.arange(length)
        ok = highest[:, None] < bits[None, :]
        owner, bit = np.nonzero(ok)
        masks = masks[owner] | (np.uint32(1) << bit.astype(np.uint32))
        highest = bit
    return masks


def _bisect(values, keys, lo, hi, steps, right):
    """Per key, the first position in ``values[lo:hi]`` (sorted) with a
    value ``> key`` (``right``) or ``>= key``."""
    last = max(len(values) - 1, 0)
    for _ in range(steps):
        open_ = lo < hi
        mid = (lo + hi) >> 1
        probe = values[np.minimum(mid, last)]
        go = (probe <= keys) if right else (probe < keys)
        go &= open_
        lo = np.where(go, mid + 1, lo)
        hi = np.where(open_ & ~go, mid, hi)
    return lo


@dataclasses.dataclass(frozen=True)
class SubstringTable:
    """One substring's table: database indices sorted by key, bucketed by
    the key's ``top_bits`` high bits (``offsets``); ``low`` holds the
    remaining low bits, sorted within each bucket."""

    start: int
    stop: int
    top_bits: int
    max_bucket: int
    offsets: np.ndarray
    ids: np.ndarray
    low: np.ndarray | None

    @property
    def low_bits(self) -> int:
        return self.stop - self.start - self.top_bits

    @classmethod
    def build(cls, packed: np.ndarray, start: int, stop: int):
        """Indexes bits ``[start, stop)`` of ``packed``."""
        keys = substring_keys(packed, start, stop)
        num = len(keys)
        top = min(stop - start, max(1, min(26, num.bit_length() - 3)))
        ids, keys = _sort_by_key(keys)
        low_bits = stop - start - top
        counts = np.bincount(keys >> np.uint32(low_bits), minlength=1 << top)
        offsets = np.zeros((1 << top) + 1, dtype=_index_dtype(num))
        np.cumsum(counts, out=offsets[1:])
        low = None
        if low_bits:
            dtype = np.min_scalar_type((1 << low_bits) - 1)
            low = (keys & np.uint32((1 << low_bits) - 1)).astype(dtype)
        biggest = int(counts.max()) if num else 0
        return cls(start, stop, top, biggest, offsets, ids, low)

    def ranges(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ends)`` into ``ids`` of the codes whose key is each of
        ``keys``."""
        high = keys >> np.uint32(self.low_bits)
        starts = self.offsets[high].astype(np.int64)
        ends = self.offsets[high + 1].astype(np.int64)
        if self.low is None:
            return starts, ends
        low = (keys & np.uint32((1 << self.low_bits) - 1)).astype(
            self.low.dtype
        )
        steps = self.max_bucket.bit_length()
        starts = _bisect(self.low, low, starts, ends, steps, right=False)
        ends = _bisect(self.low, low, starts, ends, steps, right=True)
        return starts, ends

    def arrays(self) -> dict:
        """The arrays to save, by name."""
        arrays = {"offsets": self.offsets, "ids": self.ids}
        if self.low is not None:
            arrays["low"] = self.low
        return arrays

    def describe(self) -> dict:
        """The JSON-ready fields besides the arrays."""
        return {
            "start": self.start,
            "stop": self.stop,
            "top_bits": self.top_bits,
            "max_bucket": self.max_bucket,
        }

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays().values())


def _index_dtype(num: int) -> np.dtype:
    return np.dtype(np.uint32 if num < (1 << 32) else np.int64)


def _sort_by_key(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, sorted keys)``; one ``uint64`` sort of ``key << 32 | id``
    where ids fit 32 bits (several times faster than ``argsort``)."""
    num = len(keys)
    if num >= (1 << 32):
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    packed = keys.astype(np.uint64) << np.uint64(32)
    packed |= np.arange(num, dtype=np.uint64)
    packed.sort()
    ids = (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    packed >>= np.uint64(32)
    return ids, packed.astype(np.uint32)


def word_view(packed: np.ndarray) -> np.ndarray:
    """``packed_to_words(packed)``, as a view (no copy) where the code
    size is 1, 2, 4 or a multiple of 8 bytes."""
    size = packed.shape[1]
    if packed.flags.c_contiguous and (size in (1, 2, 4) or size % 8 == 0):
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}.get(size, np.uint64)
        return packed.view(dtype)
    return packed_to_words(packed)


class MultiIndex:
    """The NumPy multi-index: one :class:`SubstringTable` per substring
    over the database words (``word_view`` of the packed codes).

    ``scan_fraction``: a query whose probes and candidates pass this share
    of the database stops probing and is scanned (None: never).
    """

    def __init__(self, num_bits, words, tables, scan_fraction=SCAN_FRACTION):
        self.num_bits = num_bits
        self.words = words
        self.tables = tables
        self.scan_fraction = scan_fraction
        self._masks: dict = {}

    @classmethod
    def build(cls, num_bits, packed, num_substrings=None, **kwargs):
        m = num_substrings or choose_num_substrings(num_bits, len(packed))
        tables = [
            SubstringTable.build(packed, start, stop)
            for start, stop in substring_bounds(num_bits, m)
        ]
        return cls(num_bits, word_view(packed), tables, **kwargs)

    @property
    def num_substrings(self) -> int:
        return len(self.tables)

    @property
    def nbytes(self) -> int:
        """Bytes held besides the packed codes."""
        return sum(t.nbytes for t in self.tables)

    @property
    def limit(self) -> float:
        if self.scan_fraction is None:
            return math.inf
        return max(64.0, self.scan_fraction * len(self.words))

    def masks(self, length: int, radius: int) -> np.ndarray:
        if (length, radius) not in self._masks:
            self._masks[length, radius] = flip_masks(length, radius)
        return self._masks[length, radius]

    def search(self, queries, k, scan: Callable) -> tuple:
        """Exact k nearest (``HammingIndex.search``'s layout); ``scan(q)``
        is the exhaustive search for queries that give up probing."""
        parts = [_knn_block(self, block, k, scan) for block in _blocks(queries)]
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def range_search(self, queries, radius, scan: Callable) -> tuple:
        """Exact radius search; ``scan`` as in :meth:`search`."""
        parts = [
            _range_block(self, block, radius, scan)
            for block in _blocks(queries)
        ]
        return concatenate_ranges(parts)


def _blocks(queries):
    return [
        queries[start : start + QUERY_BLOCK]
        for start in range(0, len(queries), QUERY_BLOCK)
    ]


def concatenate_ranges(parts: list) -> tuple:
    """One ``(lims, distances, indices)`` from those of successive query
    blocks."""
    lims = [np.zeros(1, dtype=np.int64)]
    for part in parts:
        lims.append(part[0][1:] + lims[-1][-1])
    return (
        np.concatenate(lims),
        np.concatenate([p[1] for p in parts] + [np.zeros(0, np.int32)]),
        np.concatenate([p[2] for p in parts] + [np.zeros(0, np.int64)]),
    )


def _expand(starts, ends):
    """``(owner, position)`` of every position in the ranges."""
    lengths = ends - starts
    owner = np.repeat(np.arange(len(starts)), lengths)
    before = np.cumsum(lengths) - lengths
    positions = np.arange(int(lengths.sum())) + np.repeat(
        starts - before, lengths
    )
    return owner, positions


def _popcount(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words).sum(axis=1, dtype=np.int32)


class _Walk:
    """A block of queries probed one substring radius at a time.

    Step ``s`` probes substring ``s % m`` at radius ``s // m`` (its ring:
    keys at exactly that distance), so after step ``s`` every code within
    distance ``s`` has been found; each candidate is kept once, by the step
    that finds it first.
    """

    def __init__(self, index: MultiIndex, queries: np.ndarray):
        self.index = index
        tables = index.tables
        self.keys = [substring_keys(queries, t.start, t.stop) for t in tables]
        self.words = packed_to_words(queries)
        self.submasks = [_bit_mask(queries.shape[1], t) for t in tables]
        self.work = np.zeros(len(queries), dtype=np.int64)
        self.gave_up = np.zeros(len(queries), dtype=bool)

    def last_step(self) -> int:
        longest = max(t.stop - t.start for t in self.index.tables)
        return len(self.index.tables) * (longest + 1) - 1

    def step(self, step: int, rows: np.ndarray) -> tuple:
        """``(rows, ids, distances)`` of the codes first found at ``step``."""
        m = len(self.index.tables)
        j, radius = step % m, step // m
        table = self.index.tables[j]
        masks = self.index.masks(table.stop - table.start, radius)
        probes = self.keys[j][rows][:, None] ^ masks[None, :]
        starts, ends = table.ranges(probes.ravel())
        found = (ends - starts).reshape(probes.shape).sum(axis=1)
        self.work[rows] += len(masks) + found
        over = self.work[rows] > self.index.limit
        self.gave_up[rows[over]] = True
        keep = np.repeat(~over, len(masks))
        owner, positions = _expand(starts[keep], ends[keep])
        rows = rows[~over][owner // max(len(masks), 1)]
        ids = table.ids[positions].astype(np.int64)
        xor = self.index.words[ids] ^ self.words[rows]
        new = self._first_seen(xor, j, radius)
        return rows[new], ids[new], _popcount(xor[new])

    def _first_seen(self, xor, j, radius) -> np.ndarray:
        """Whether no earlier step found each candidate: substrings before
        ``j`` farther than ``radius``, those after farther than
        ``radius - 1``."""
        new = np.ones(len(xor), dtype=bool)
        for i, mask in enumerate(self.submasks):
            if i != j and (i < j or radius > 0):
                new &= _popcount(xor & mask) >= radius + (i < j)
        return new


def _bit_mask(code_size: int, table: SubstringTable) -> np.ndarray:
    """Bits ``[start, stop)`` set, as a ``(1, W)`` word row."""
    bits = np.zeros((1, 8 * code_size), dtype=bool)
    bits[0, table.start : table.stop] = True
    return packed_to_words(np.packbits(bits, axis=1))


def _knn_block(index: MultiIndex, queries, k, scan) -> tuple:
    num_codes, num_bits = len(index.words), index.num_bits
    kk = min(k, num_codes)
    walk = _Walk(index, queries)
    hist = np.zeros((len(queries), num_bits + 1), dtype=np.int64)
    active = np.arange(len(queries))
    parts = []
    for step in range(walk.last_step() + 1):
        rows, ids, dist = walk.step(step, active)
        parts.append((rows, ids, dist))
        hist += np.bincount(
            rows * (num_bits + 1) + dist, minlength=hist.size
        ).reshape(hist.shape)
        counts = hist[active]
        done = (counts[:, : step + 1].sum(axis=1) >= kk) | (
            counts.sum(axis=1) == num_codes
        )
        active = active[~(done | walk.gave_up[active])]
        if not len(active):
            break
    rows, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
    kth = np.argmax(np.cumsum(hist, axis=1) >= kk, axis=1)
    keep = ~walk.gave_up[rows] & (dist <= kth[rows])
    lims, d, i = sorted_rows(rows[keep], ids[keep], dist[keep], len(queries))
    out_d, out_i = first_k(lims, d, i, k)
    if walk.gave_up.any():
        which = np.flatnonzero(walk.gave_up)
        out_d[which], out_i[which] = scan(queries[which])
    return out_d, out_i


def _range_block(index: MultiIndex, queries, radius, scan) -> tuple:
    walk = _Walk(index, queries)
    active = np.arange(len(queries))
    parts = []
    for step in range(min(radius, walk.last_step()) + 1):
        rows, ids, dist = walk.step(step, active)
        parts.append((rows, ids, dist))
        active = active[~walk.gave_up[active]]
    rows, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
    keep = ~walk.gave_up[rows] & (dist <= radius)
    parts = [(rows[keep], ids[keep], dist[keep])]
    which = np.flatnonzero(walk.gave_up)
    if len(which):
        lims, d, i = scan(queries[which])
        parts.append((np.repeat(which, np.diff(lims)), i, d))
    rows, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
    return sorted_rows(rows, ids, dist, len(queries))


class FaissMultiIndex:
    """The same exact search over faiss's ``IndexBinaryMultiHash`` tables.

    faiss probes every substring at one radius ``nflip`` and verifies the
    candidates; a range search at ``nflip = rho`` returns every code within
    ``m (rho + 1) - 1`` (pigeonhole), so growing ``rho`` until ``k`` codes
    are within that distance makes the k nearest certain. faiss cuts the
    substrings at equal lengths ``b // m`` (the last bits may be left out:
    the bound still holds) and keeps its own copy of the codes.
    """

    def __init__(self, index, num_codes, scan_fraction=SCAN_FRACTION):
        self.index = index
        self.num_codes = num_codes
        self.scan_fraction = scan_fraction

    @classmethod
    def build(cls, num_bits, packed, num_substrings=None, **kwargs):
        import faiss

        m = num_substrings or choose_num_substrings(num_bits, len(packed))
        index = faiss.IndexBinaryMultiHash(
            8 * packed.shape[1], m, num_bits // m
        )
        index.add(np.ascontiguousarray(packed))
        return cls(index, len(packed), **kwargs)

    @property
    def num_substrings(self) -> int:
        return int(self.index.nhash)

    def _affordable(self, nflip: int) -> bool:
        """Whether probing at ``nflip`` stays under the scan limit
        (expected keys and bucket entries, as for uniform codes)."""
        if self.scan_fraction is None:
            return True
        b = int(self.index.b)
        keys = sum(math.comb(b, r) for r in range(nflip + 1))
        work = self.num_substrings * keys * (1 + self.num_codes / 2.0**b)
        return work <= max(64.0, self.scan_fraction * self.num_codes)

    def _within(self, queries, nflip):
        """Every code within ``m (nflip + 1) - 1`` of each query, sorted."""
        self.index.nflip = nflip
        radius = self.num_substrings * (nflip + 1)
        lims, dists, ids = self.index.range_search(queries, radius)
        counts = np.diff(lims.astype(np.int64))  # faiss: uint64
        rows = np.repeat(np.arange(len(queries)), counts)
        return sorted_rows(rows, ids, dists.astype(np.int32), len(queries))

    def search(self, queries, k, scan: Callable) -> tuple:
        kk = min(k, self.num_codes)
        out_d = np.full((len(queries), k), MISSING_DISTANCE, dtype=np.int32)
        out_i = np.full((len(queries), k), MISSING_INDEX, dtype=np.int64)
        active = np.arange(len(queries))
        nflip = 0
        while len(active) and nflip <= self.index.b:
            if not self._affordable(nflip):
                break
            lims, d, i = self._within(queries[active], nflip)
            done = np.diff(lims) >= kk
            found_d, found_i = first_k(lims, d, i, k)
            out_d[active[done]], out_i[active[done]] = (
                found_d[done],
                found_i[done],
            )
            active, nflip = active[~done], nflip + 1
        if len(active):
            out_d[active], out_i[active] = scan(queries[active])
        return out_d, out_i

    def range_search(self, queries, radius, scan: Callable) -> tuple:
        nflip = radius // self.num_substrings
        if not self._affordable(nflip):
            return scan(queries)
        lims, d, i = self._within(queries, nflip)
        keep = d <= radius
        rows = np.repeat(np.arange(len(queries)), np.diff(lims))
        return sorted_rows(rows[keep], i[keep], d[keep], len(queries))

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

from keras_dhsps.utils.codes import packed_to_words

#: Distance reported for a missing result (faiss's binary-index filler).
MISSING_DISTANCE = np.iinfo(np.int32).max
#: Index reported for a missing result.
MISSING_INDEX = -1
#: Longest substring: table keys are ``uint32``.
MAX_SUBSTRING_BITS = 32
#: Default share of the database a query may probe before it is scanned.
SCAN_FRACTION = 1 / 64
#: Queries searched together, and the candidates a block may hold (a
#: query holding more is scanned).
QUERY_BLOCK = 256
CANDIDATE_BUDGET = 1 << 23


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


@dataclasses.dataclass(frozen=True)
class SubstringTable:
    """One substring's table: database indices sorted by key, in buckets
    of the key's ``top_bits`` high bits (``offsets``, CSR; 4 to 8 codes a
    bucket). A bucket holds ``2**(length - top_bits)`` keys when the
    substring is longer: the search checks each entry's own key."""

    start: int
    stop: int
    top_bits: int
    offsets: np.ndarray
    ids: np.ndarray

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
        high = keys >> np.uint32(stop - start - top)
        offsets = np.zeros((1 << top) + 1, dtype=_index_dtype(num))
        np.cumsum(np.bincount(high, minlength=1 << top), out=offsets[1:])
        return cls(start, stop, top, offsets, ids)

    def buckets(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ends)`` into ``ids`` of the buckets of ``keys``."""
        high = keys >> np.uint32(self.low_bits)
        return (
            self.offsets[high].astype(np.int64),
            self.offsets[high + 1].astype(np.int64),
        )

    def arrays(self) -> dict:
        """The arrays to save, by name."""
        return {"offsets": self.offsets, "ids": self.ids}

    def describe(self) -> dict:
        """The JSON-ready fields besides the arrays."""
        return {
            "start": self.start,
            "stop": self.stop,
            "top_bits": self.top_bits,
        }

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.ids.nbytes)


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

    def masks(self, j: int, radius: int) -> tuple:
        """Substring ``j``'s flips at ``radius``: as keys, and as words."""
        if (j, radius) not in self._masks:
            table = self.tables[j]
            masks = flip_masks(table.stop - table.start, radius)
            words = _flip_words(
                masks, table, self.words.shape[1] * self.words.itemsize
            )
            self._masks[j, radius] = masks, words
        return self._masks[j, radius]

    def search(self, queries, k, scan: Callable) -> tuple:
        """Exact k nearest (``HammingIndex.search``'s layout); ``scan(q)``
        is the exhaustive search for queries that give up probing."""
        parts = [_knn_block(self, block, k, scan) for block in _blocks(queries)]
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def range_search(self, queries, radius, scan: Callable) -> tuple:
        """Exact radius search; ``scan`` as in :meth:`search`."""
        parts = []
        for start in range(0, len(queries), QUERY_BLOCK):
            block = queries[start : start + QUERY_BLOCK]
            rows, ids, dist = _range_block(self, block, radius, scan)
            parts.append((rows + start, ids, dist))
        rows, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
        return sorted_rows(rows, ids, dist, len(queries))


def _blocks(queries) -> list:
    return [
        queries[start : start + QUERY_BLOCK]
        for start in range(0, len(queries), QUERY_BLOCK)
    ]


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
    """Bits set per row of words (``(n,)`` or ``(n, W)``)."""
    if words.ndim == 1:
        return np.bitwise_count(words)
    return np.bitwise_count(words).sum(axis=1, dtype=np.int32)


def _rows_of(words: np.ndarray) -> np.ndarray:
    """Codes of one word as a flat array (faster to gather), else as is."""
    return words[:, 0] if words.shape[1] == 1 else words


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
        self.words = _rows_of(packed_to_words(queries))
        self.database = _rows_of(index.words)
        self.submasks = [
            _rows_of(_bit_mask(queries.shape[1], t))[0] for t in tables
        ]
        self.work = np.zeros(len(queries), dtype=np.int64)
        self.limit = index.limit
        self.gave_up = np.zeros(len(queries), dtype=bool)
        # Expected work of each step, as on uniform random codes: its ring's
        # probes, each meeting a bucket of N / 2**top_bits entries.
        per_probe = [1 + len(index.words) / 2.0**t.top_bits for t in tables]
        longest = max(t.stop - t.start for t in tables)
        self.costs = np.cumsum(
            [
                math.comb(t.stop - t.start, r) * cost
                for r in range(longest + 1)
                for t, cost in zip(tables, per_probe, strict=True)
            ]
        )

    def last_step(self) -> int:
        return len(self.costs) - 1

    def foresee(self, step: int, rows: np.ndarray, until: np.ndarray):
        """Gives up, before spending it, the work that would pass the limit
        anyway: the expected work of the steps after ``step`` up to
        ``until[row]``."""
        if not math.isfinite(self.limit) or not len(rows):
            return
        last = len(self.costs) - 1
        ahead = self.costs[np.minimum(until[rows], last)] - self.costs[step]
        self.gave_up[rows[self.work[rows] + ahead > self.limit]] = True

    def step(self, step: int, rows: np.ndarray, bound: np.ndarray) -> tuple:
        """``(rows, ids, distances)`` of the codes first found at ``step``
        within ``bound[row]`` of their query (farther ones cannot matter)."""
        m = len(self.index.tables)
        j, radius = step % m, step // m
        table = self.index.tables[j]
        length = table.stop - table.start
        too_many = self.work[rows] + math.comb(length, radius) > self.limit
        self.gave_up[rows[too_many]] = True
        rows = rows[~too_many]
        if not len(rows):
            return _nothing()
        masks, flips = self.index.masks(j, radius)
        probes = (self.keys[j][rows][:, None] ^ masks[None, :]).ravel()
        starts, ends = table.buckets(probes)
        found = (ends - starts).reshape(len(rows), len(masks)).sum(axis=1)
        self.work[rows] += len(masks) + found
        over = self.work[rows] > self.limit
        self.gave_up[rows[over]] = True
        keep = np.repeat(~over, len(masks))
        owner, positions = _expand(starts[keep], ends[keep])
        rows = np.repeat(rows[~over], len(masks))[owner]
        ids = table.ids[positions]
        xor = self.database[ids] ^ self.words[rows]
        if table.low_bits:  # keep the entries of each probe's own key
            match = (xor & self.submasks[j]) == flips[owner % len(masks)]
            if match.ndim > 1:
                match = match.all(axis=1)
            rows, ids, xor = rows[match], ids[match], xor[match]
        dist = _popcount(xor)
        near = dist <= bound[rows]
        rows, ids, dist, xor = rows[near], ids[near], dist[near], xor[near]
        new = self._first_seen(xor, j, radius)
        return rows[new], ids[new].astype(np.int64), dist[new]

    def _first_seen(self, xor, j, radius) -> np.ndarray:
        """Whether no earlier step found each candidate: substrings before
        ``j`` farther than ``radius``, those after farther than
        ``radius - 1``."""
        new = np.ones(len(xor), dtype=bool)
        for i, mask in enumerate(self.submasks):
            if i != j and (i < j or radius > 0):
                new &= _popcount(xor & mask) >= radius + (i < j)
        return new


def _flip_words(masks, table: SubstringTable, code_size: int) -> np.ndarray:
    """``masks`` (keys of substring ``table``) as code words, the bits in
    their place: a probe's entries XOR the query equal it there."""
    length = table.stop - table.start
    shifts = np.arange(length - 1, -1, -1, dtype=np.uint32)
    bits = np.zeros((len(masks), 8 * code_size), dtype=np.uint8)
    bits[:, table.start : table.stop] = (masks[:, None] >> shifts) & 1
    return _rows_of(packed_to_words(np.packbits(bits, axis=1)))


def _nothing() -> tuple:
    return (
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int32),
    )


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
    # The k-th distance among the candidates so far: an upper bound of the
    # k-th nearest, so farther candidates are dropped as they come.
    bound = np.full(len(queries), num_bits)
    horizon = _uniform_radius(num_bits, num_codes, kk)
    active = np.arange(len(queries))
    found = _nothing()
    for step in range(walk.last_step() + 1):
        new = walk.step(step, active, bound)
        hist += np.bincount(
            new[0] * (num_bits + 1) + new[2], minlength=hist.size
        ).reshape(hist.shape)
        counts = np.cumsum(hist[active], axis=1)
        enough = counts[:, -1] >= kk
        bound[active[enough]] = np.argmax(counts[enough] >= kk, axis=1)
        # The k nearest are certain at the latest after step ``bound``, and
        # on uniform codes after step ``horizon``: halfway there, a query
        # still short of them looks like uniform codes.
        if 2 * step >= horizon:
            walk.foresee(step, active[enough], np.minimum(bound, horizon))
        found = _prune(found, new, bound, walk.gave_up)
        done = (counts[:, min(step, num_bits)] >= kk) | (
            counts[:, -1] == num_codes
        )
        active = active[~(done | walk.gave_up[active])]
        if not len(active):
            break
    lims, d, i = sorted_rows(found[0], found[1], found[2], len(queries))
    out_d, out_i = first_k(lims, d, i, k)
    if walk.gave_up.any():
        which = np.flatnonzero(walk.gave_up)
        out_d[which], out_i[which] = scan(queries[which])
    return out_d, out_i


def _uniform_radius(num_bits: int, num_codes: int, count: int) -> int:
    """The least radius holding ``count`` of ``num_codes`` uniform random
    codes, on average."""
    within = 0.0
    for radius in range(num_bits + 1):
        within += num_codes * math.comb(num_bits, radius) / 2**num_bits
        if within >= count:
            return radius
    return num_bits


def _prune(found: tuple, new: tuple, bound, gave_up) -> tuple:
    """The candidates so far and the new ones, less those beyond their
    query's bound and those of queries that gave up; a query holding more
    than its share of ``CANDIDATE_BUDGET`` gives up (it will be scanned)."""
    rows, ids, dist = (np.concatenate(p) for p in zip(found, new, strict=True))
    for _ in range(2):
        keep = (dist <= bound[rows]) & ~gave_up[rows]
        rows, ids, dist = rows[keep], ids[keep], dist[keep]
        held = np.bincount(rows, minlength=len(gave_up))
        if held.max(initial=0) <= CANDIDATE_BUDGET // QUERY_BLOCK:
            break
        gave_up |= held > CANDIDATE_BUDGET // QUERY_BLOCK
    return rows, ids, dist


def _range_block(index: MultiIndex, queries, radius, scan) -> tuple:
    walk = _Walk(index, queries)
    bound = np.full(len(queries), radius)
    active = np.arange(len(queries))
    parts = []
    for step in range(min(radius, walk.last_step()) + 1):
        parts.append(walk.step(step, active, bound))
        walk.foresee(step, active, bound)
        active = active[~walk.gave_up[active]]
    rows, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
    keep = ~walk.gave_up[rows]
    parts = [(rows[keep], ids[keep], dist[keep])]
    which = np.flatnonzero(walk.gave_up)
    if len(which):
        lims, d, i = scan(queries[which])
        parts.append((np.repeat(which, np.diff(lims)), i, d))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

"""Exhaustive Hamming search over packed binary codes.

:class:`HammingIndex` has faiss' binary-index boundary: packed ``uint8`` rows
in (``keras_dhsps.utils.codes.pack_codes``), ``search`` returns
``(distances int32, indices int64)``. Its two backends, ``"faiss"``
(``faiss.IndexBinaryFlat``, the optional ``faiss`` extra) and ``"numpy"``
(popcount, ``O(N)`` memory), give identical results, tie order included
(distance, then database index). ``range_search`` is inclusive
(``d <= radius``); missing results are padded with ``-1``. docs/shipping.md
§4 has the conventions.
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
import numpy.typing as npt

from keras_dhsps.utils.codes import check_packed
from keras_dhsps.utils.codes import describe
from keras_dhsps.utils.codes import distance_dtype
from keras_dhsps.utils.codes import packed_to_words
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "faiss")

#: Distance reported for a missing result (faiss's binary-index filler).
MISSING_DISTANCE = np.iinfo(np.int32).max
#: Index reported for a missing result.
MISSING_INDEX = -1

_FORMAT = "keras_dhsps.HammingIndex"


def faiss_available() -> bool:
    """Whether the optional ``faiss`` module can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise DHSPSError(
            f"unknown index backend {backend!r}; choose one of "
            f"{', '.join(BACKENDS)}"
        )
    if backend == "auto":
        return "faiss" if faiss_available() else "numpy"
    if backend == "faiss" and not faiss_available():
        raise DHSPSError(
            "the faiss backend needs faiss-cpu: pip install 'keras_dhsps[faiss]'"
        )
    return backend


def _sorted_rows(
    rows: np.ndarray, cols: np.ndarray, dists: np.ndarray, num_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orders (row, distance, index) triples; returns lims, dists, indices."""
    order = np.lexsort((cols, dists, rows))
    lims = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=lims[1:])
    return (
        lims,
        dists[order].astype(np.int32, copy=False),
        cols[order].astype(np.int64, copy=False),
    )


def _first_k(
    lims: np.ndarray, dists: np.ndarray, indices: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
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


class HammingIndex:
    """An exhaustive Hamming-distance index over packed binary codes.

    Args:
        num_bits: the code length ``K``; codes are ``ceil(K / 8)`` bytes.
        backend: ``"faiss"``, ``"numpy"`` or ``"auto"`` (faiss when
            installed). Both give identical results (docs/shipping.md §4).

    Raises:
        DHSPSError: unknown backend, or ``"faiss"`` without faiss installed.

    Example:

    ```python
    index = HammingIndex(64)
    index.add(database_packed)                   # (N, 8) uint8
    distances, indices = index.search(query_packed, k=100)
    lims, d, i = index.range_search(query_packed, radius=2)   # d <= 2
    ```

    >>> from keras_dhsps.utils.codes import pack_codes
    >>> index = HammingIndex(4, backend="numpy")
    >>> index.add(pack_codes([[1, 1, 1, 1], [1, 1, 1, -1], [-1, 1, 1, 1]]))
    >>> index.search(pack_codes([[1, 1, 1, 1]]), 3)   # items 1 and 2 tie at 1
    (array([[0, 1, 1]], dtype=int32), array([[0, 1, 2]]))
    """

    def __init__(self, num_bits: int, *, backend: str = "auto") -> None:
        if (
            isinstance(num_bits, bool)
            or int(num_bits) != num_bits
            or num_bits < 1
        ):
            raise DHSPSError(
                f"num_bits must be a positive int; got {num_bits!r}"
            )
        self.num_bits = int(num_bits)
        self.code_size = -(-self.num_bits // 8)
        self.backend = _resolve_backend(backend)
        self._codes = np.zeros((0, self.code_size), dtype=np.uint8)
        self._words: np.ndarray | None = None
        self._faiss = None
        if self.backend == "faiss":
            import faiss

            # Padding bits are zero in queries and database alike, so a
            # d = 8 * code_size index gives the K-bit distances.
            self._faiss = faiss.IndexBinaryFlat(8 * self.code_size)

    # ----------------------------------------------------------- contents
    @property
    def ntotal(self) -> int:
        """Number of indexed codes."""
        return int(self._codes.shape[0])

    def __len__(self) -> int:
        return self.ntotal

    @property
    def codes(self) -> npt.NDArray[np.uint8]:
        """The indexed packed codes, in ``add`` order (read-only view)."""
        view = self._codes.view()
        view.flags.writeable = False
        return view

    def _check(self, packed: npt.ArrayLike, name: str) -> np.ndarray:
        array = check_packed(packed, name)
        if array.shape[1] != self.code_size:
            raise DHSPSError(
                f"{name} must have {self.code_size} bytes per code for "
                f"{self.num_bits}-bit codes; got {describe(array)}"
            )
        return np.ascontiguousarray(array)

    def add(self, packed: npt.ArrayLike) -> None:
        """Appends codes; they get the next database indices.

        Args:
            packed: ``(n, ceil(K / 8))`` ``uint8`` codes from ``pack_codes``.
        """
        array = self._check(packed, "packed")
        self._codes = np.concatenate([self._codes, array])
        self._words = None
        if self._faiss is not None:
            self._faiss.add(array)

    def reset(self) -> None:
        """Removes every code."""
        self._codes = np.zeros((0, self.code_size), dtype=np.uint8)
        self._words = None
        if self._faiss is not None:
            self._faiss.reset()

    def _database_words(self) -> np.ndarray:
        """Database words transposed to ``(W, N)``: each word column is
        contiguous, so one query's XOR + popcount runs at memory speed."""
        if self._words is None:
            self._words = np.ascontiguousarray(packed_to_words(self._codes).T)
        return self._words

    def _rows(self, queries: np.ndarray):
        """Yields ``(q, distances)`` for each query (NumPy backend).

        One query at a time into reused buffers: measured 5-7x faster than
        a broadcast (Q, N) block, and memory is O(N) whatever Q is. The
        yielded array is overwritten by the next iteration.
        """
        database = self._database_words()
        query_words = packed_to_words(queries)
        num_words, num_items = database.shape
        dist = np.empty(
            num_items, dtype=distance_dtype(num_words, database.itemsize)
        )
        xor = np.empty(num_items, dtype=database.dtype)
        counts = np.empty(num_items, dtype=np.uint8)
        for q in range(len(queries)):
            for w in range(num_words):
                np.bitwise_xor(database[w], query_words[q, w], out=xor)
                if w == 0:
                    np.bitwise_count(xor, out=counts)
                    dist[...] = counts
                else:
                    np.bitwise_count(xor, out=counts)
                    dist += counts
            yield q, dist

    # ------------------------------------------------------------- search
    def search(
        self, queries: npt.ArrayLike, k: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """The ``k`` nearest codes of each query.

        Args:
            queries: ``(Q, ceil(K / 8))`` ``uint8`` packed codes.
            k: results per query (``>= 1``).

        Returns:
            ``(distances, indices)``, both ``(Q, k)``: ``int32`` Hamming
            distances ascending, ``int64`` database indices; equal distances
            in ascending index order. Missing results (``k > ntotal``) are
            ``-1`` with distance ``2**31 - 1``.
        """
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise DHSPSError(f"k must be a positive int; got {k!r}")
        k = int(k)
        queries = self._check(queries, "queries")
        num_queries = len(queries)
        out_d = np.full((num_queries, k), MISSING_DISTANCE, dtype=np.int32)
        out_i = np.full((num_queries, k), MISSING_INDEX, dtype=np.int64)
        if self.ntotal == 0 or num_queries == 0:
            return out_d, out_i
        if self._faiss is not None:
            return self._search_faiss(queries, k)
        kk = min(k, self.ntotal)
        mask = np.empty(self.ntotal, dtype=bool)
        kth = 0
        for q, dist in self._rows(queries):
            # The k-th smallest distance t: the least t with at least k items
            # at d <= t, searched from the previous query's (a few counts,
            # each one vectorized pass).
            while np.count_nonzero(np.less_equal(dist, kth, out=mask)) < kk:
                kth += 1
            while kth > 0 and (
                np.count_nonzero(np.less_equal(dist, kth - 1, out=mask)) >= kk
            ):
                kth -= 1
            # Every item at d <= t in index order; a stable sort by distance
            # keeps equal distances in index order; the first k are kept.
            candidates = np.flatnonzero(np.less_equal(dist, kth, out=mask))
            order = np.argsort(dist[candidates], kind="stable")[:kk]
            out_d[q, :kk] = dist[candidates[order]]
            out_i[q, :kk] = candidates[order]
        return out_d, out_i

    def _search_faiss(self, queries: np.ndarray, k: int):
        ntotal = self.ntotal
        kk = min(k, ntotal)
        # Fetch more than k so that, for most queries, the tie at the k-th
        # distance is complete: complete when the last candidate is farther
        # than the k-th, or when every code was fetched.
        fetch = min(ntotal, 2 * kk + 16)
        dist, idx = self._faiss.search(queries, fetch)
        kth = dist[:, kk - 1]
        unresolved = (dist[:, -1] == kth) & (fetch < ntotal)
        keep = dist <= kth[:, None]
        rows, cols = np.nonzero(keep)
        lims, d, i = _sorted_rows(
            rows, idx[rows, cols], dist[rows, cols], len(queries)
        )
        out_d, out_i = _first_k(lims, d, i, k)
        if np.any(unresolved):
            which = np.flatnonzero(unresolved)
            # Every code with d <= k-th distance: a range search at radius
            # kth, inclusive (the wrapper adds the +1 faiss needs).
            r_lims, r_d, r_i = self._range_faiss_per_radius(
                queries[which], kth[which]
            )
            out_d[which], out_i[which] = _first_k(r_lims, r_d, r_i, k)
        return out_d, out_i

    def _range_faiss_per_radius(
        self, queries: np.ndarray, radii: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inclusive range search with one radius per query (faiss)."""
        all_rows, all_d, all_i = [], [], []
        for radius in np.unique(radii):
            which = np.flatnonzero(radii == radius)
            lims, d, i = self._faiss.range_search(
                queries[which], int(radius) + 1
            )
            counts = np.diff(lims.astype(np.int64))  # faiss: uint64
            all_rows.append(np.repeat(which, counts))
            all_d.append(d)
            all_i.append(i)
        rows = np.concatenate(all_rows)
        return _sorted_rows(
            rows, np.concatenate(all_i), np.concatenate(all_d), len(queries)
        )

    def range_search(
        self, queries: npt.ArrayLike, radius: int
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]
    ]:
        """Every code within Hamming distance ``radius`` (``d <= radius``).

        Note the inclusive bound: faiss's ``range_search`` is strict
        (``d < radius``); this one is not, on both backends.

        Args:
            queries: ``(Q, ceil(K / 8))`` ``uint8`` packed codes.
            radius: a non-negative int.

        Returns:
            ``(lims, distances, indices)`` in faiss's layout: the results of
            query ``q`` are ``distances[lims[q]:lims[q + 1]]`` (``int32``)
            and ``indices[lims[q]:lims[q + 1]]`` (``int64``), sorted by
            distance, then database index.
        """
        if isinstance(radius, bool) or int(radius) != radius or radius < 0:
            raise DHSPSError(
                f"radius must be a non-negative int; got {radius!r}"
            )
        radius = int(radius)
        queries = self._check(queries, "queries")
        num_queries = len(queries)
        if self.ntotal == 0 or num_queries == 0:
            return (
                np.zeros(num_queries + 1, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
                np.zeros(0, dtype=np.int64),
            )
        if self._faiss is not None:
            return self._range_faiss_per_radius(
                queries, np.full(num_queries, radius)
            )
        parts_rows, parts_cols, parts_d = [], [], []
        mask = np.empty(self.ntotal, dtype=bool)
        for q, dist in self._rows(queries):
            cols = np.flatnonzero(np.less_equal(dist, radius, out=mask))
            parts_rows.append(np.full(len(cols), q, dtype=np.int64))
            parts_cols.append(cols)
            parts_d.append(dist[cols])
        return _sorted_rows(
            np.concatenate(parts_rows),
            np.concatenate(parts_cols),
            np.concatenate(parts_d),
            num_queries,
        )

    # ---------------------------------------------------------------- I/O
    def save(self, path: str) -> None:
        """Writes the codes and ``num_bits`` to an ``.npz`` file (atomic).

        The file is backend-neutral: ``load`` can rebuild either backend.
        """

        def write(temporary: str) -> None:
            buffer = io.BytesIO()
            np.savez(
                buffer,
                format=np.array(_FORMAT),
                num_bits=np.array(self.num_bits, dtype=np.int64),
                codes=self._codes,
            )
            with open(temporary, "wb") as handle:
                handle.write(buffer.getvalue())

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str, *, backend: str = "auto") -> HammingIndex:
        """Reads an index written by :meth:`save`.

        Raises:
            DHSPSError: missing file or not a saved ``HammingIndex``.
        """
        if not os.path.isfile(path):
            raise DHSPSError(f"index file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != _FORMAT:
                    raise KeyError("format")
                num_bits = int(data["num_bits"])
                codes = np.asarray(data["codes"], dtype=np.uint8)
        except (KeyError, ValueError, OSError) as error:
            raise DHSPSError(
                f"{path}: not a saved HammingIndex ({error})"
            ) from None
        index = cls(num_bits, backend=backend)
        index.add(codes)
        return index

    def __repr__(self) -> str:
        return (
            f"HammingIndex(num_bits={self.num_bits}, backend="
            f"{self.backend!r}, ntotal={self.ntotal})"
        )

"""Hamming search over packed binary codes: exhaustive or multi-index hashing.

:class:`HammingIndex` has the faiss binary-index boundary: packed ``uint8``
codes in (``keras_dhsps.utils.codes.pack_codes``), ``(distances int32,
indices int64)`` out. ``method="flat"`` scans every code (faiss
``IndexBinaryFlat`` or NumPy popcount); ``method="mih"`` is exact multi-index
hashing (:mod:`keras_dhsps.retrieval.mih`). Every method and backend gives
the same results: by distance, then database index; radius searches are
inclusive (``d <= radius``); a missing result is index ``-1`` at distance
``2**31 - 1``. docs/search.md says which to choose.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import numpy.typing as npt

from keras_dhsps.retrieval import mih
from keras_dhsps.retrieval.mih import MISSING_DISTANCE
from keras_dhsps.retrieval.mih import MISSING_INDEX
from keras_dhsps.retrieval.mih import first_k
from keras_dhsps.retrieval.mih import sorted_rows
from keras_dhsps.utils.codes import check_packed
from keras_dhsps.utils.codes import describe
from keras_dhsps.utils.codes import distance_dtype
from keras_dhsps.utils.codes import packed_to_words
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write
from keras_dhsps.utils.files import require_file

__all__ = [
    "BACKENDS",
    "METHODS",
    "MISSING_DISTANCE",
    "MISSING_INDEX",
    "HammingIndex",
    "faiss_available",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "faiss")
METHODS = ("flat", "mih")

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


def _positive_int(value, name: str, *, allow_none: bool = False):
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise DHSPSError(f"{name} must be a positive int; got {value!r}")
    return int(value)


class HammingIndex:
    """A Hamming-distance index over packed binary codes.

    Args:
        num_bits: the code length ``K``; codes are ``ceil(K / 8)`` bytes.
        backend: ``"faiss"``, ``"numpy"`` or ``"auto"`` (faiss when
            installed) for ``"flat"``; ``"mih"`` is NumPy. All give
            identical results.
        method: ``"flat"`` (exhaustive, the default) or ``"mih"`` (exact
            multi-index hashing, sub-linear on clustered codes).
        num_substrings: ``m`` for ``"mih"``; default ``ceil(K / log2 N)``
            (:func:`keras_dhsps.retrieval.mih.choose_num_substrings`).
        scan_fraction: ``"mih"`` finishes a query by the exhaustive scan
            once its probes pass this share of the database (None: never);
            the results are the same either way.

    Raises:
        DHSPSError: unknown backend or method, or ``"faiss"`` without faiss.

    Example (more in docs/search.md):

    >>> from keras_dhsps.utils.codes import pack_codes
    >>> index = HammingIndex(4, backend="numpy")
    >>> index.add(pack_codes([[1, 1, 1, 1], [1, 1, 1, -1], [-1, 1, 1, 1]]))
    >>> index.search(pack_codes([[1, 1, 1, 1]]), 3)   # items 1 and 2 tie at 1
    (array([[0, 1, 1]], dtype=int32), array([[0, 1, 2]]))
    """

    def __init__(
        self,
        num_bits: int,
        *,
        backend: str = "auto",
        method: str = "flat",
        num_substrings: int | None = None,
        scan_fraction: float | None = mih.SCAN_FRACTION,
    ) -> None:
        self.num_bits = _positive_int(num_bits, "num_bits")
        self.code_size = -(-self.num_bits // 8)
        if method not in METHODS:
            raise DHSPSError(
                f"unknown index method {method!r}; choose one of "
                f"{', '.join(METHODS)}"
            )
        if method == "mih" and backend == "faiss":
            raise DHSPSError(
                "method 'mih' has NumPy tables only (faiss's "
                "IndexBinaryMultiHash measured slower and larger; "
                "docs/search.md)"
            )
        self.backend = _resolve_backend("numpy" if method == "mih" else backend)
        self.method = method
        self._num_substrings = _positive_int(
            num_substrings, "num_substrings", allow_none=True
        )
        least = -(-self.num_bits // mih.MAX_SUBSTRING_BITS)
        if self._num_substrings and not (
            least <= self._num_substrings <= self.num_bits
        ):
            raise DHSPSError(
                f"num_substrings must be between {least} (substrings of at "
                f"most {mih.MAX_SUBSTRING_BITS} bits) and num_bits="
                f"{self.num_bits}; got {num_substrings}"
            )
        self.scan_fraction = scan_fraction
        #: The code database files the index was opened from, in order.
        self.sources: tuple[str, ...] = ()
        self._codes = np.zeros((0, self.code_size), dtype=np.uint8)
        self._words: np.ndarray | None = None
        self._multi = None
        self._faiss = None
        if self.backend == "faiss" and method == "flat":
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

    @property
    def num_substrings(self) -> int | None:
        """``m`` of a ``"mih"`` index (chosen at its first search when not
        given); None for ``"flat"``."""
        if self.method == "flat":
            return None
        if self._multi is not None:
            return self._multi.num_substrings
        return self._num_substrings or mih.choose_num_substrings(
            self.num_bits, self.ntotal
        )

    def _check(self, packed: npt.ArrayLike, name: str) -> np.ndarray:
        array = check_packed(packed, name)
        if array.shape[1] != self.code_size:
            raise DHSPSError(
                f"{name} must have {self.code_size} bytes per code for "
                f"{self.num_bits}-bit codes; got {describe(array)}"
            )
        return np.ascontiguousarray(array)

    def add(self, packed: npt.ArrayLike, *, copy: bool = True) -> None:
        """Appends codes; they get the next database indices.

        Args:
            packed: ``(n, ceil(K / 8))`` ``uint8`` codes from ``pack_codes``.
            copy: ``False`` lets an empty index keep ``packed`` itself (no
                second copy of a large database); it must not change then.
        """
        array = self._check(packed, "packed")
        if self.ntotal == 0 and not copy:
            self._codes = array
        else:
            self._codes = np.concatenate([self._codes, array])
        self._words = self._multi = None
        if self._faiss is not None:
            self._faiss.add(array)

    def reset(self) -> None:
        """Removes every code."""
        self._codes = np.zeros((0, self.code_size), dtype=np.uint8)
        self._words = self._multi = None
        if self._faiss is not None:
            self._faiss.reset()

    def _database_words(self) -> np.ndarray:
        """Database words transposed to ``(W, N)``: each word column is
        contiguous, so one query's XOR + popcount runs at memory speed (a
        view, not a copy, for codes of one word)."""
        if self._words is None:
            self._words = np.ascontiguousarray(mih.word_view(self._codes).T)
        return self._words

    def tables(self) -> mih.MultiIndex:
        """The ``"mih"`` tables, built at the first call."""
        if self._multi is None:
            self._multi = mih.MultiIndex.build(
                self.num_bits,
                self._codes,
                self._num_substrings,
                scan_fraction=self.scan_fraction,
            )
        return self._multi

    def set_tables(self, tables) -> None:
        """Adopts ``"mih"`` tables built over these very codes."""
        self._multi = tables

    @property
    def extra_bytes(self) -> int:
        """Bytes held besides the packed codes, as built so far: the
        ``"mih"`` tables, the words of the NumPy scan where they are a copy
        (padded or transposed codes), faiss's own copy of the codes."""
        copies = [self._words]
        total = 0
        if self._multi is not None:
            total += self._multi.nbytes
            copies.append(self._multi.words)
        for words in copies:
            if words is not None and not np.may_share_memory(
                words, self._codes
            ):
                total += words.nbytes
        if self._faiss is not None:
            total += self._faiss.ntotal * self._faiss.code_size
        return int(total)

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
                np.bitwise_count(xor, out=counts)
                if w == 0:
                    dist[...] = counts
                else:
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
        k = _positive_int(k, "k")
        queries = self._check(queries, "queries")
        if self.ntotal == 0 or len(queries) == 0:
            return (
                np.full((len(queries), k), MISSING_DISTANCE, dtype=np.int32),
                np.full((len(queries), k), MISSING_INDEX, dtype=np.int64),
            )
        if self.method == "mih":
            return self.tables().search(
                queries, k, lambda rows: self._scan(rows, k)
            )
        if self._faiss is not None:
            return self._search_faiss(queries, k)
        return self._scan(queries, k)

    def _scan(self, queries: np.ndarray, k: int):
        """The exhaustive NumPy search (``search``'s results)."""
        out_d = np.full((len(queries), k), MISSING_DISTANCE, dtype=np.int32)
        out_i = np.full((len(queries), k), MISSING_INDEX, dtype=np.int64)
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
        lims, d, i = sorted_rows(
            rows, idx[rows, cols], dist[rows, cols], len(queries)
        )
        out_d, out_i = first_k(lims, d, i, k)
        if np.any(unresolved):
            which = np.flatnonzero(unresolved)
            # Every code with d <= k-th distance: a range search at radius
            # kth, inclusive (the wrapper adds the +1 faiss needs).
            r_lims, r_d, r_i = self._range_faiss_per_radius(
                queries[which], kth[which]
            )
            out_d[which], out_i[which] = first_k(r_lims, r_d, r_i, k)
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
        return sorted_rows(
            rows, np.concatenate(all_i), np.concatenate(all_d), len(queries)
        )

    def range_search(
        self, queries: npt.ArrayLike, radius: int
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]
    ]:
        """Every code within Hamming distance ``radius`` (``d <= radius``).

        Note the inclusive bound: faiss's ``range_search`` is strict
        (``d < radius``); this one is not, on every backend.

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
        if self.ntotal == 0 or len(queries) == 0:
            return (
                np.zeros(len(queries) + 1, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
                np.zeros(0, dtype=np.int64),
            )
        if self.method == "mih":
            return self.tables().range_search(
                queries, radius, lambda rows: self._scan_range(rows, radius)
            )
        if self._faiss is not None:
            return self._range_faiss_per_radius(
                queries, np.full(len(queries), radius)
            )
        return self._scan_range(queries, radius)

    def _scan_range(self, queries: np.ndarray, radius: int):
        """The exhaustive NumPy range search."""
        parts_rows, parts_cols, parts_d = [], [], []
        mask = np.empty(self.ntotal, dtype=bool)
        for q, dist in self._rows(queries):
            cols = np.flatnonzero(np.less_equal(dist, radius, out=mask))
            parts_rows.append(np.full(len(cols), q, dtype=np.int64))
            parts_cols.append(cols)
            parts_d.append(dist[cols])
        return sorted_rows(
            np.concatenate(parts_rows),
            np.concatenate(parts_cols),
            np.concatenate(parts_d),
            len(queries),
        )

    # ---------------------------------------------------------------- I/O
    def save(self, path: str) -> None:
        """Writes the codes and ``num_bits`` to an ``.npz`` file (atomic),
        from which ``load`` builds a flat index of either backend (an index
        directory keeps the method and tables: docs/search.md §4)."""

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
        require_file(path, "index file")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != _FORMAT:
                    raise KeyError("format")
                num_bits = int(data["num_bits"])
                codes = np.asarray(data["codes"], dtype=np.uint8)
        except Exception as error:  # noqa: BLE001
            # numpy and zipfile raise a zoo of types on a damaged archive
            # (BadZipFile, EOFError, NotImplementedError, KeyError, ...).
            raise DHSPSError(
                f"{path}: not a saved HammingIndex ({error})"
            ) from None
        index = cls(num_bits, backend=backend)
        index.add(codes, copy=False)
        return index

    def __repr__(self) -> str:
        return (
            f"HammingIndex(num_bits={self.num_bits}, backend="
            f"{self.backend!r}, method={self.method!r}, ntotal={self.ntotal})"
        )

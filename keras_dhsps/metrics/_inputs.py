"""Validation at the metrics boundary, and the packed form every metric uses.

Every public metric function calls `prepare` first: it checks shapes, dtypes
and values, raising `InvalidInputError` (a ``ValueError``) that names the
argument with its shape and dtype, and converts codes and labels to machine
words without touching the caller's arrays.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keras_dhsps.utils.codes import InvalidInputError
from keras_dhsps.utils.codes import check_real_codes
from keras_dhsps.utils.codes import describe
from keras_dhsps.utils.codes import packed_to_words

ALL = "all"

# Elements (queries x database items) per chunk when chunk_size is None: at
# about 45 bytes of temporaries per element, ~11 MiB. Small chunks are
# faster, not only leaner: a chunk's temporaries (the largest is the int64
# argsort, 2 MiB) stay in cache and in glibc's heap, whereas chunks of 2**21
# pairs made NumPy allocate 16 MiB blocks that glibc returns to the system
# and faults in again, 3,000 page faults and 6 ms of system time per mAP
# call on the VOC2012 benchmark case (measured in benchmarks/README.md).
DEFAULT_CHUNK_ELEMENTS = 1 << 18

# Below this many query-item pairs per thread the default chunking keeps the
# work on fewer threads: ~0.2 ms of work, about what starting a thread costs.
MIN_PAIRS_PER_THREAD = 1 << 15

# Threads when num_threads is None: at most this many, so the default peak
# memory (one chunk of buffers per thread) stays small.
MAX_DEFAULT_THREADS = 8


@dataclasses.dataclass(frozen=True)
class RetrievalInputs:
    """Validated query/database codes and labels, packed into words.

    Attributes:
        query_words: ``(Q, W)`` code words
            (`keras_dhsps.utils.codes.packed_to_words`).
        database_words: ``(N, W)`` code words.
        query_label_words: ``(Q, L)`` multi-hot labels packed into words.
        database_label_words: ``(N, L)``.
        num_bits: code length ``K``.
        num_labels: number of classes ``C``.
    """

    query_words: np.ndarray
    database_words: np.ndarray
    query_label_words: np.ndarray
    database_label_words: np.ndarray
    num_bits: int
    num_labels: int

    @property
    def num_queries(self) -> int:
        return int(self.query_words.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.database_words.shape[0])


def check_labels(labels: npt.ArrayLike, name: str) -> np.ndarray:
    """Validates a multi-hot ``(N, C)`` label matrix (0/1 or bool values)."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[1] == 0:
        raise InvalidInputError(
            f"{name} must be a 2-D multi-hot array of shape (num_items, "
            f"num_classes) with num_classes >= 1; got {describe(array)}"
        )
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{name} must have a bool or numeric dtype; got {describe(array)}"
        )
    if array.dtype.kind != "b" and not np.all((array == 0) | (array == 1)):
        raise InvalidInputError(
            f"{name} must be multi-hot (every entry 0 or 1); got other values "
            f"in an array of {describe(array)}"
        )
    return array


def pack_labels(labels: np.ndarray) -> np.ndarray:
    """Multi-hot labels -> label words; popcount(q & n) = shared labels."""
    return packed_to_words(np.packbits(labels != 0, axis=1))


def prepare_codes(codes: npt.ArrayLike, name: str) -> np.ndarray:
    """Validates real or ±1 codes, binarizes (``>= 0`` -> 1) into words."""
    array = check_real_codes(codes, name)
    return packed_to_words(np.packbits(array >= 0, axis=1))


def prepare(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
) -> RetrievalInputs:
    """Validates the four retrieval arrays and packs them (no caller array
    is modified).

    Raises:
        InvalidInputError: wrong rank, dtype, values, empty query set or
            database, mismatched code lengths, class counts or row counts.
    """
    qc = check_real_codes(query_codes, "query_codes")
    dc = check_real_codes(database_codes, "database_codes")
    ql = check_labels(query_labels, "query_labels")
    dl = check_labels(database_labels, "database_labels")
    if qc.shape[0] == 0:
        raise InvalidInputError(
            f"query_codes must hold at least one query; got {describe(qc)}"
        )
    if dc.shape[0] == 0:
        raise InvalidInputError(
            f"database_codes must hold at least one item; got {describe(dc)}"
        )
    if qc.shape[1] != dc.shape[1]:
        raise InvalidInputError(
            "query_codes and database_codes must have the same number of "
            f"bits; got query_codes with {describe(qc)} and database_codes "
            f"with {describe(dc)}"
        )
    if ql.shape[1] != dl.shape[1]:
        raise InvalidInputError(
            "query_labels and database_labels must have the same number of "
            f"classes; got query_labels with {describe(ql)} and "
            f"database_labels with {describe(dl)}"
        )
    if ql.shape[0] != qc.shape[0]:
        raise InvalidInputError(
            "query_labels must have one row per query code; got "
            f"query_labels with {describe(ql)} and query_codes with "
            f"{describe(qc)}"
        )
    if dl.shape[0] != dc.shape[0]:
        raise InvalidInputError(
            "database_labels must have one row per database code; got "
            f"database_labels with {describe(dl)} and database_codes with "
            f"{describe(dc)}"
        )
    return RetrievalInputs(
        query_words=packed_to_words(np.packbits(qc >= 0, axis=1)),
        database_words=packed_to_words(np.packbits(dc >= 0, axis=1)),
        query_label_words=pack_labels(ql),
        database_label_words=pack_labels(dl),
        num_bits=int(qc.shape[1]),
        num_labels=int(ql.shape[1]),
    )


def resolve_k(k: object, num_items: int, name: str = "k") -> int:
    """``"all"``/None -> ``num_items``; an int ``k >= 1`` -> ``min(k, N)``.

    A cut-off larger than the database means the whole database; there is no
    negative slicing (docs/peers.md §5, pitfall 3: ``topK = -1`` drops the last
    item in two peers).
    """
    if k is None or (isinstance(k, str) and k == ALL):
        return num_items
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise InvalidInputError(
            f"{name} must be a positive int or 'all'; got {k!r}"
        )
    if k < 1:
        raise InvalidInputError(
            f"{name} must be a positive int or 'all'; got {k!r} (use 'all' "
            "for the whole database, never -1)"
        )
    return int(min(int(k), num_items))


def k_label(k: object) -> str:
    """The key suffix of a cut-off: ``"all"`` or the requested integer."""
    return ALL if k is None or k == ALL else str(int(k))  # type: ignore[call-overload]


def as_cutoffs(values: object, name: str) -> tuple[object, ...]:
    """A single cut-off or a sequence of them -> a tuple (validated later)."""
    if values is None:
        return ()
    if isinstance(values, (str, int, np.integer)):
        return (values,)
    if isinstance(values, Iterable):
        return tuple(values)
    raise InvalidInputError(
        f"{name} must be a cut-off or a sequence of cut-offs; got {values!r}"
    )


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Raises unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(
            f"{name} must be one of {', '.join(map(repr, choices))}; "
            f"got {value!r}"
        )
    return value


def is_integer_at_least(value: object, minimum: int) -> bool:
    """True for a Python or NumPy int ``>= minimum``; a bool is not an int
    here (``True`` as a chunk size or radius is a mistake, not 1)."""
    return (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, (int, np.integer))
        and value >= minimum
    )


def check_optional_positive_int(value: object, name: str) -> int | None:
    """None -> None (automatic), else a positive int."""
    if value is None:
        return None
    if not is_integer_at_least(value, 1):
        raise InvalidInputError(
            f"{name} must be a positive int or None; got {value!r}"
        )
    return int(value)


def check_chunk_size(chunk_size: object, num_items: int) -> int | None:
    """None -> None (automatic), else a positive int."""
    return check_optional_positive_int(chunk_size, "chunk_size")


def default_chunk_size(
    num_queries: int, num_items: int, num_threads: int = 1
) -> int:
    """Queries per chunk: at most about 256K query-item pairs a chunk, and
    chunks of equal size whose number is a multiple of the threads used, so
    every thread gets the same amount of work. Small problems use fewer
    threads: at least `MIN_PAIRS_PER_THREAD` pairs each."""
    largest = max(1, DEFAULT_CHUNK_ELEMENTS // max(1, num_items))
    pairs = max(1, num_queries) * max(1, num_items)
    threads = max(1, min(num_threads, pairs // MIN_PAIRS_PER_THREAD))
    num_chunks = -(-max(1, num_queries) // largest)  # ceil
    num_chunks = -(-num_chunks // threads) * threads
    return max(1, -(-num_queries // num_chunks))


def default_num_threads() -> int:
    """One thread per CPU this process may run on, at most
    `MAX_DEFAULT_THREADS` (each thread holds one chunk's buffers)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_DEFAULT_THREADS))


def check_num_threads(num_threads: object) -> int | None:
    """None -> None (automatic), else a positive int."""
    return check_optional_positive_int(num_threads, "num_threads")

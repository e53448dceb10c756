"""Seeded split protocols: which images are queries, database, training.

A :class:`Protocol` names the sizes the peers use (docs/peers.md §2) and how
training images relate to the database; :func:`make_splits` draws the
split from a seed, and the same seed, images and protocol always give the
same split (NumPy's PCG64 ``default_rng``). Validation is always carved
from the training images, never from the queries.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.data.base import Split
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one dataset is split.

    Attributes:
        num_query: query images.
        num_train: training images (before validation is carved out).
        num_database: database images; None means every image that is
            not a query (and, when ``train_from_database`` is false, not a
            training image).
        train_from_database: draw training images from the database
            (DPSH/HashNet convention) instead of disjointly from it.
        per_class: draw queries and training images class by class,
            ``num_query // C`` and ``num_train // C`` per class (the
            NUS-WIDE convention: 100 queries and 500 training images per
            concept).
        validation_fraction: share of the training images moved to the
            validation split.
        source: where the sizes come from, for the manifest.
    """

    num_query: int
    num_train: int
    num_database: int | None = None
    train_from_database: bool = False
    per_class: bool = False
    validation_fraction: float = 0.1
    source: str = ""

    def replace(self, **changes) -> Protocol:
        """A copy with some fields changed (unknown names raise)."""
        return dataclasses.replace(self, **changes)


def _per_class_draw(
    labels: NDArray[np.uint8],
    candidates: NDArray[np.int64],
    per_class: int,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """``per_class`` images of each class in turn, without repeats."""
    taken = np.zeros(len(labels), dtype=bool)
    allowed = np.zeros(len(labels), dtype=bool)
    allowed[candidates] = True
    chosen = []
    for column in range(labels.shape[1]):
        pool = np.flatnonzero(allowed & ~taken & (labels[:, column] > 0))
        if len(pool) < per_class:
            logger.warning(
                "class %d has %d free images, fewer than %d",
                column,
                len(pool),
                per_class,
            )
        picked = rng.choice(pool, min(per_class, len(pool)), replace=False)
        taken[picked] = True
        chosen.append(picked)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, int)


def make_splits(
    labels: NDArray[np.uint8], protocol: Protocol, *, seed: int
) -> dict[str, NDArray[np.int64]]:
    """Row indices of each split, sorted.

    Args:
        labels: ``(N, C)`` multi-hot labels of the labelled images.
        protocol: the sizes and conventions.
        seed: the split is a function of ``(labels, protocol, seed)``.

    Returns:
        ``{"train", "validation", "query", "database"}`` -> sorted rows.

    Raises:
        DataError: the sizes ask for more images than there are, or a
            split would be empty.
    """
    count = len(labels)
    rng = np.random.default_rng(seed)
    every = np.arange(count)
    wanted = protocol.num_query + (
        0 if protocol.train_from_database else protocol.num_train
    )
    if protocol.num_database is not None:
        wanted += protocol.num_database
    if wanted > count:
        raise DataError(
            f"the split protocol needs {wanted} images "
            f"(query {protocol.num_query}, train {protocol.num_train}, "
            f"database {protocol.num_database}) but only {count} labelled "
            "images were found"
        )
    classes = labels.shape[1]
    if protocol.per_class:
        query = _per_class_draw(
            labels, every, protocol.num_query // classes, rng
        )
    else:
        query = np.sort(rng.permutation(count)[: protocol.num_query])
    rest = np.setdiff1d(every, query)
    if protocol.train_from_database:
        database = rest
        if protocol.num_database is not None:
            database = np.sort(rng.permutation(rest)[: protocol.num_database])
        train = _draw(labels, database, protocol, classes, rng)
    else:
        train = _draw(labels, rest, protocol, classes, rng)
        database = np.setdiff1d(rest, train)
        if protocol.num_database is not None:
            database = np.sort(
                rng.permutation(database)[: protocol.num_database]
            )
    order = rng.permutation(len(train))
    carve = int(round(protocol.validation_fraction * len(train)))
    validation = np.sort(train[order[:carve]])
    train = np.sort(train[order[carve:]])
    splits = {
        "train": train,
        "validation": validation,
        "query": query,
        "database": database,
    }
    for name, rows in splits.items():
        if not len(rows) and not (
            name == "validation" and protocol.validation_fraction == 0
        ):
            raise DataError(
                f"the {name!r} split is empty ({count} labelled images, "
                f"protocol {protocol})"
            )
    return splits


def _draw(labels, pool, protocol, classes, rng):
    if protocol.per_class:
        return _per_class_draw(labels, pool, protocol.num_train // classes, rng)
    return np.sort(rng.permutation(pool)[: protocol.num_train])


def overlaps(splits: dict[str, list[str]]) -> dict[str, int]:
    """Images shared by each pair of splits, keyed ``"a&b"``."""
    names = list(splits)
    sets = {name: set(paths) for name, paths in splits.items()}
    return {
        f"{a}&{b}": len(sets[a] & sets[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }


#: Pairs whose overlap is a leak (train or validation images among the
#: queries); ``train&database`` is allowed when the protocol says so.
LEAKS = ("train&query", "validation&query", "query&database")


def carve_rows(count: int, fraction: float, seed: int):
    """``(kept, carved)`` sorted rows of a seeded random ``fraction`` of
    ``count`` items carved out (rounded to the nearest item)."""
    order = np.random.default_rng(seed).permutation(count)
    size = int(round(count * fraction))
    return np.sort(order[size:]), np.sort(order[:size])


def split_rows(split: Split, rows) -> Split:
    """The images and labels of ``split`` at ``rows``, in that order."""
    if split.images is not None:
        return Split(labels=split.labels[rows], images=split.images[rows])
    paths = split.paths or ()
    return Split(
        labels=split.labels[rows], paths=tuple(paths[row] for row in rows)
    )


def carve_validation(split: Split, fraction: float, seed: int):
    """Splits ``split`` into (train, validation) by a seeded permutation.

    The validation images are removed from training, so model selection
    uses images the model was not trained on and never the query set.

    Raises:
        DHSPSError: the fraction leaves no image on one side.
    """
    count = len(split)
    if not 0 < int(round(count * fraction)) < count:
        raise DHSPSError(
            f"validation_fraction={fraction} of {count} training images "
            "leaves an empty split"
        )
    train, validation = carve_rows(count, fraction, seed)
    return split_rows(split, train), split_rows(split, validation)

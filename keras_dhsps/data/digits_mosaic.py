"""digits-mosaic: an embedded multi-label dataset that needs no download.

Each image is a 2×2 grid of 16×16 cells (32×32×3 uint8 in all). One to
``max_digits`` cells hold a handwritten digit from scikit-learn's copy of the
UCI optical digits (1,797 8×8 images, upsampled ×2); the others are black.
The labels are the set of digits shown (10 classes, distinct digits per
image), so pairs of images range over the whole of IDHN's soft similarity
``|Y_i ∩ Y_j| / sqrt(|Y_i||Y_j|)``.

Protocol (deterministic for a seed):

* the 1,797 digit images are split per class into a *query pool* (30 %) and
  a *train pool* (70 %);
* ``query`` mosaics use only query-pool digits; ``train``, ``validation``
  and ``database`` mosaics use only train-pool digits, so no query shows a
  digit image the model was trained on or that sits in the database;
* ``validation`` is carved from training data (its own mosaics of
  train-pool digits) and is the only split used for model selection;
* the number of digits per image is uniform on ``1..max_digits``, the digits
  and their cells uniform without replacement.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split

NUM_CLASSES = 10
CELL = 16
GRID = 2
IMAGE_SIZE = CELL * GRID
QUERY_POOL_FRACTION = 0.3


def digit_pools(
    rng: np.random.Generator,
) -> tuple[list[NDArray], list[NDArray]]:
    """Per-class arrays of 16×16 uint8 digit cells: (query pool, train pool)."""
    from sklearn.datasets import load_digits  # ships with scikit-learn

    digits = load_digits()
    cells = np.kron(digits.images, np.ones((2, 2)))  # 8×8 -> 16×16
    cells = np.round(cells * (255.0 / 16.0)).astype(np.uint8)
    query_pool, train_pool = [], []
    for digit in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(digits.target == digit))
        cut = int(round(QUERY_POOL_FRACTION * len(members)))
        query_pool.append(cells[members[:cut]])
        train_pool.append(cells[members[cut:]])
    return query_pool, train_pool


def _mosaics(
    pool: list[NDArray],
    count: int,
    max_digits: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    images = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    labels = np.zeros((count, NUM_CLASSES), np.uint8)
    for index in range(count):
        num_digits = rng.integers(1, max_digits + 1)
        classes = rng.choice(NUM_CLASSES, num_digits, replace=False)
        cells = rng.choice(GRID * GRID, num_digits, replace=False)
        for digit, cell in zip(classes, cells, strict=True):
            candidates = pool[digit]
            patch = candidates[rng.integers(len(candidates))]
            row, col = divmod(int(cell), GRID)
            images[
                index,
                row * CELL : (row + 1) * CELL,
                col * CELL : (col + 1) * CELL,
                :,
            ] = patch[:, :, None]
            labels[index, digit] = 1
    return images, labels


def load_digits_mosaic(
    *,
    seed: int = 0,
    num_train: int = 2000,
    num_validation: int = 250,
    num_query: int = 500,
    num_database: int = 2000,
    max_digits: int = 4,
) -> RetrievalDataset:
    """Generates the digits-mosaic splits (about a second on a CPU).

    Args:
        seed: the whole dataset is a function of this seed.
        num_train: training images.
        num_validation: validation images (training-pool digits).
        num_query: query images (query-pool digits only).
        num_database: retrieval-database images (training-pool digits).
        max_digits: at most this many digits per image (1 to 4).

    Returns:
        A :class:`RetrievalDataset` with splits train, validation, query,
        database and class names ``"0"`` … ``"9"``.
    """
    if not 1 <= max_digits <= GRID * GRID:
        raise ValueError(
            f"`max_digits` must be in 1..{GRID * GRID}. "
            f"Received: max_digits={max_digits}"
        )
    sizes = {
        "train": num_train,
        "validation": num_validation,
        "query": num_query,
        "database": num_database,
    }
    for name, size in sizes.items():
        if int(size) < 0:
            raise ValueError(f"`num_{name}` must be >= 0. Received: {size}")
    rng = np.random.default_rng(seed)
    query_pool, train_pool = digit_pools(rng)
    splits = {}
    for name, size in sizes.items():
        pool = query_pool if name == "query" else train_pool
        images, labels = _mosaics(pool, int(size), max_digits, rng)
        splits[name] = Split(labels=labels, images=images)
    return RetrievalDataset(
        name="digits-mosaic",
        class_names=tuple(str(digit) for digit in range(NUM_CLASSES)),
        splits=splits,
    )

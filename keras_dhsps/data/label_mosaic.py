"""label-mosaic: synthetic images carrying the label rows of a real dataset.

``label-mosaic:<dataset>`` (``voc2012``, ``mirflickr25k``, ``nuswide21``,
``coco``) draws real label rows from the peers' label matrices shipped in
``keras_dhsps/data/peer_files`` (:func:`keras_dhsps.data.peers.peer_labels`)
and paints each row into a 32×32×3 uint8 image, so the images have the
real label cardinality, imbalance and co-occurrence (hence the real
distribution of IDHN's soft similarities) and need no download.

Each image is a 4×4 grid of 8×8 cells. Class ``c`` is drawn as digit
``c mod 10`` (a handwritten 8×8 glyph of scikit-learn's UCI digits, the
pools of :mod:`keras_dhsps.data.digits_mosaic` at their native resolution)
in colour ``PALETTE[c // 10]``: 10 digits × 8 colours tell up to 80 classes
apart. Each label of a row sits in its own random cell; the other cells are
black.

Protocol (deterministic for a seed):

* unlabelled rows of the peers' files are dropped first and counted
  (``info["dropped"]["unlabelled"]``), as the dataset readers do;
* ``train`` and ``validation`` rows are drawn without replacement from the
  peers' training list, ``query`` rows from its test (query) list, and
  ``database`` rows from its database list when the peers publish one
  (VOC2012, MIRFlickr-25K), else from training-list rows not drawn for
  train or validation (NUS-WIDE-21, MS-COCO);
* query glyphs come from the digits' query pool (30 % per digit),
  train, validation and database glyphs from the disjoint train pool;
* a row with more labels than the grid's 16 cells keeps a random 16 of
  them (the image and its label row stay consistent) and is counted in
  ``info["truncated"]``; every other row equals its real row exactly
  (:func:`source_rows` says which).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split

# The digit pools are digits-mosaic's (one owner for the query/train glyph
# split); its 16×16 cells are ×2 upsampled 8×8 glyphs, taken back to 8×8.
from keras_dhsps.data.digits_mosaic import digit_pools
from keras_dhsps.data.peers import peer_labels

DATASETS = ("voc2012", "mirflickr25k", "nuswide21", "coco")
CELL = 8
GRID = 4
IMAGE_SIZE = CELL * GRID
MAX_LABELS = GRID * GRID
#: RGB weights of the glyph colours: class c uses PALETTE[c // 10].
PALETTE = np.array(
    [
        (1.0, 1.0, 1.0),  # white
        (1.0, 0.2, 0.2),  # red
        (0.2, 1.0, 0.2),  # green
        (0.3, 0.4, 1.0),  # blue
        (1.0, 1.0, 0.1),  # yellow
        (1.0, 0.2, 1.0),  # magenta
        (0.1, 1.0, 1.0),  # cyan
        (1.0, 0.55, 0.0),  # orange
    ]
)
SPLIT_SOURCES = {
    "train": "train",
    "validation": "train",
    "query": "test",
    "database": "database",
}


def _peer_split(dataset: str, split: str) -> str:
    """The peers' list a split's rows come from (module docstring)."""
    source = SPLIT_SOURCES[split]
    if source == "database" and dataset in ("nuswide21", "coco"):
        return "train"  # no published database list
    return source


def source_rows(
    dataset: str, seed: int, sizes: dict[str, int]
) -> dict[str, tuple[str, NDArray[np.int64]]]:
    """Which real rows each split copies: ``split -> (peer split, indices)``.

    Indices address :func:`~keras_dhsps.data.peers.peer_labels` of that
    peer split (file order); unlabelled rows are never drawn, and splits
    drawn from one peer split never share a row.

    Raises:
        ValueError: unknown dataset, or more rows asked than labelled rows
            available.
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"label-mosaic dataset must be one of {', '.join(DATASETS)}. "
            f"Received: {dataset!r}"
        )
    rng = np.random.default_rng([seed, 1])
    drawn = {}
    order = {}
    used = {}
    for split, size in sizes.items():
        source = _peer_split(dataset, split)
        if source not in order:
            labelled = np.flatnonzero(peer_labels(dataset, source).sum(1) > 0)
            order[source] = rng.permutation(labelled)
            used[source] = 0
        start = used[source]
        if start + size > len(order[source]):
            raise ValueError(
                f"label-mosaic:{dataset}: {split} asks for {size} rows but "
                f"only {len(order[source]) - start} labelled rows of the "
                f"peers' {source} list are left"
            )
        drawn[split] = (source, order[source][start : start + size])
        used[source] = start + size
    return drawn


def _paint(
    labels: NDArray[np.uint8],
    pool: list[NDArray],
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], int]:
    """Images of ``labels`` (truncated to the grid); returns
    ``(images, labels as drawn, rows truncated)``."""
    images = np.zeros((len(labels), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    drawn = np.zeros_like(labels)
    truncated = 0
    for index, row in enumerate(labels):
        classes = np.flatnonzero(row)
        if len(classes) > MAX_LABELS:
            classes = np.sort(rng.choice(classes, MAX_LABELS, replace=False))
            truncated += 1
        cells = rng.choice(MAX_LABELS, len(classes), replace=False)
        for label, cell in zip(classes, cells, strict=True):
            glyphs = pool[label % 10]
            glyph = glyphs[rng.integers(len(glyphs))][::2, ::2]
            top, left = divmod(int(cell), GRID)
            colour = PALETTE[label // 10]
            images[
                index,
                top * CELL : (top + 1) * CELL,
                left * CELL : (left + 1) * CELL,
            ] = np.round(glyph[:, :, None] * colour).astype(np.uint8)
            drawn[index, label] = 1
    return images, drawn, truncated


def load_label_mosaic(
    dataset: str,
    *,
    seed: int = 0,
    num_train: int = 2000,
    num_validation: int = 250,
    num_query: int = 500,
    num_database: int = 2000,
) -> RetrievalDataset:
    """Generates ``label-mosaic:<dataset>`` (about a second on a CPU).

    Args:
        dataset: whose label rows: one of :data:`DATASETS`.
        seed: the whole dataset is a function of this seed.
        num_train, num_validation, num_query, num_database: split sizes
            (digits-mosaic's defaults).

    Returns:
        A :class:`RetrievalDataset` with splits train, validation, query,
        database; ``info`` counts the dropped unlabelled rows of the peers'
        files and the truncated rows per split.
    """
    sizes = {
        "train": num_train,
        "validation": num_validation,
        "query": num_query,
        "database": num_database,
    }
    for name, size in sizes.items():
        if int(size) < 0:
            raise ValueError(f"`num_{name}` must be >= 0. Received: {size}")
    sizes = {name: int(size) for name, size in sizes.items()}
    rows = source_rows(dataset, seed, sizes)
    query_pool, train_pool = digit_pools(np.random.default_rng(seed))
    rng = np.random.default_rng([seed, 2])
    splits, truncated, sources = {}, {}, {}
    for name, (source, indices) in rows.items():
        real = peer_labels(dataset, source)
        pool = query_pool if name == "query" else train_pool
        images, labels, truncated[name] = _paint(real[indices], pool, rng)
        splits[name] = Split(labels=labels, images=images)
        sources[source] = int((real.sum(1) == 0).sum())
    num_classes = splits["query"].labels.shape[1]
    return RetrievalDataset(
        name=f"label-mosaic:{dataset}",
        class_names=tuple(f"{dataset}:{c}" for c in range(num_classes)),
        splits=splits,
        info={
            "label_rows_of": f"keras_dhsps/data/peer_files/{dataset}",
            "dropped": {"unlabelled": sum(sources.values())},
            "truncated": truncated,
        },
    )


#: Edges of the reported ``s_ij`` histogram: the hard bins ``[0, 0.01)``
#: and ``(0.99, 1]`` (IDHN's thresholds) and five soft bins between.
SIMILARITY_EDGES = (0.0, 0.01, 0.2, 0.4, 0.6, 0.8, 0.99, 1.0)


def in_batch_similarities(
    labels: NDArray, batch_size: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """IDHN's ``s_ij = |Y_i ∩ Y_j| / sqrt(|Y_i||Y_j|)`` of every pair
    ``i < j`` inside consecutive batches of a random order of ``labels``
    (the pairs a training step sees; a last partial batch is dropped)."""
    labels = np.asarray(labels, dtype=np.float64)
    labels = labels[labels.sum(1) > 0]  # no cosine for an empty row
    order = rng.permutation(len(labels))
    batches = len(labels) // batch_size
    upper = np.triu_indices(batch_size, k=1)
    values = []
    for batch in np.split(order[: batches * batch_size], batches or 1):
        rows = labels[batch]
        norms = np.sqrt(rows.sum(1))
        cosine = rows @ rows.T / np.outer(norms, norms)
        values.append(cosine[upper] if len(batch) == batch_size else [])
    return np.clip(np.concatenate(values), 0.0, 1.0)


def similarity_statistics(
    labels: NDArray, *, batch_size: int = 64, seed: int = 0
) -> dict:
    """Label cardinality and the in-batch ``s_ij`` distribution of
    ``labels``: the fractions of dissimilar (``s < 0.01``), identical
    (``s > 0.99``) and soft pairs, and a histogram over
    :data:`SIMILARITY_EDGES` (last bin closed). Unlabelled rows are left
    out, as the readers drop them. JSON-ready."""
    labels = np.asarray(labels)
    labels = labels[labels.sum(1) > 0]
    similarities = in_batch_similarities(
        labels, batch_size, np.random.default_rng(seed)
    )
    counts, _ = np.histogram(similarities, bins=SIMILARITY_EDGES)
    dissimilar = float(np.mean(similarities < 0.01))
    identical = float(np.mean(similarities > 0.99))
    return {
        "images": int(len(labels)),
        "classes": int(labels.shape[1]),
        "labels_per_image": float(labels.sum(1).mean()),
        "pairs": int(len(similarities)),
        "dissimilar": dissimilar,
        "identical": identical,
        "soft": 1.0 - dissimilar - identical,
        "histogram": {
            "edges": list(SIMILARITY_EDGES),
            "fractions": (counts / max(len(similarities), 1)).tolist(),
        },
    }

"""Encode splits with a hasher and score retrieval (query vs database)."""

from __future__ import annotations

import numpy as np

from keras_dhsps.config import InputConfig
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.data.readers import open_reader
from keras_dhsps.data.sizes import model_image_size


def encode(
    model,
    split: Split,
    *,
    batch_size: int = 256,
    verbose=0,
    reader=None,
    input_config=None,
):
    """Outputs ``(N, D)`` float32 of ``model`` on every image of ``split``,
    in order: relaxed codes for a hasher, features for a backbone.

    Args:
        model: a model taking float images in ``[0, 255]`` (a hasher or a
            feature extractor).
        split: the images.
        batch_size: images per forward pass.
        verbose: 0 silent, 1 a progress bar.
        reader: ``"tf.data"`` or ``"numpy"`` (every backend; see
            :mod:`keras_dhsps.data.readers`); None: ``tf.data`` where
            TensorFlow is installed.
        input_config: an ``InputConfig``: its ``resize`` mode (the centre
            crop of the cropping modes) and image ``store`` apply (with
            ``"memory"``, the split is decoded once per process and shared
            with training and later encodes); never augments. None: the
            defaults (``"direct"``).
    """
    if not len(split):
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    batches, steps = open_reader(reader).ordered_images(
        split,
        batch_size=batch_size,
        image_size=model_image_size(model),
        input_config=input_config or InputConfig(),
    )
    codes = model.predict(batches, steps=steps, verbose=verbose)
    return np.asarray(codes, dtype=np.float32)


def report_from_codes(
    query_codes,
    query_labels,
    database_codes,
    database_labels,
    eval_config,
    *,
    curves: bool = True,
) -> dict:
    """The retrieval report of ready-made codes (deep or shallow).

    Returns:
        ``keras_dhsps.metrics.retrieval_report``'s dict (``"metrics"`` and
        ``"curves"``), plus ``"counts"`` of queries and database items.
    """
    from keras_dhsps.metrics import retrieval_report

    report = retrieval_report(
        query_codes,
        query_labels,
        database_codes,
        database_labels,
        map_at=tuple(eval_config.map_at),
        ndcg_at=tuple(eval_config.ndcg_at),
        acg_at=tuple(eval_config.acg_at),
        wap_at=tuple(eval_config.wap_at),
        radius=eval_config.radius,
        tie_aware=eval_config.tie_aware,
        curves=curves,
    )
    report["counts"] = {
        "query": len(query_codes),
        "database": len(database_codes),
    }
    return report


def evaluate_retrieval(
    model,
    dataset: RetrievalDataset,
    eval_config,
    *,
    query_split: str = "query",
    database_split: str = "database",
    batch_size: int = 256,
    curves: bool = True,
    verbose=0,
    input_config=None,
) -> dict:
    """Encodes the query and database splits and computes the report
    (``input_config``: how images reach the model, see :func:`encode`).

    Returns:
        :func:`report_from_codes`' dict.
    """
    queries = dataset.split(query_split)
    database = dataset.split(database_split)
    query_codes, database_codes = (
        encode(
            model,
            split,
            batch_size=batch_size,
            verbose=verbose,
            input_config=input_config,
        )
        for split in (queries, database)
    )
    return report_from_codes(
        query_codes,
        queries.labels,
        database_codes,
        database.labels,
        eval_config,
        curves=curves,
    )

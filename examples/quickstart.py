"""keras_dhsps end to end through its public API, in about a minute on a CPU.

Trains a 32-bit IDHN hasher on the embedded digits-mosaic dataset into a run
directory, scores it, reopens it with the one loader, indexes the database
codes and searches them by Hamming distance:

    python examples/quickstart.py [RUN_DIR]
"""

import sys
import tempfile

import numpy as np

import keras_dhsps
from keras_dhsps.utils.codes import pack_codes


def main(run_dir: str, epochs: int = 3) -> dict:
    config = keras_dhsps.override(
        keras_dhsps.ExperimentConfig(),
        "model.bits=32",
        f"train.epochs={epochs}",
        "train.batch_size=64",
        "train.tensorboard=false",
    )
    dataset = keras_dhsps.load_dataset("digits-mosaic")
    result = keras_dhsps.fit(config, dataset=dataset, run_dir=run_dir)
    report = keras_dhsps.evaluate_retrieval(
        result.model,
        dataset,
        config.eval,
        curves=False,
        input_config=config.input,
    )
    print({key: round(value, 4) for key, value in report["metrics"].items()})

    hasher = keras_dhsps.load_hasher(run_dir)  # run dir, .keras or SavedModel
    queries = dataset.split("query")
    database = dataset.split("database")
    index = keras_dhsps.HammingIndex(hasher.bits)
    index.add(pack_codes(hasher.codes(database.images)))
    distances, neighbours = index.search(
        pack_codes(hasher.codes(queries.images[:3])), 5
    )
    for query, (row, near) in enumerate(
        zip(distances, neighbours, strict=True)
    ):
        shared = (database.labels[near] * queries.labels[query]).sum(axis=1)
        print(
            f"query {query}: neighbours {near.tolist()} at Hamming "
            f"{row.tolist()}, labels shared {shared.astype(int).tolist()}"
        )
    return {"report": report, "distances": np.asarray(distances)}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp("-idhn"))

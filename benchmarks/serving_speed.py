"""Serving speed: codes per second from ONNX Runtime vs Keras ``predict``.

Builds a ``small_cnn`` hasher (``--bits``, 32x32 input), exports it with
``dhsps export --format onnx``'s exporter, and times both on the same
uint8 images at the model's size, batch 1 and 256 (best of ``--repeat``
timed loops after a warm-up), checking that the packed codes agree. Run:

    nice -n 10 python benchmarks/serving_speed.py --output serving_speed.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_dhsps.utils.codes import pack_codes  # noqa: E402
from keras_dhsps.utils.files import write_json  # noqa: E402


def rate(encode, images, repeat: int, budget: int) -> float:
    """Codes per second: the best of ``repeat`` loops of ``budget`` codes."""
    encode(images)  # warm-up (compilation, session start)
    loops = max(1, budget // len(images))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            encode(images)
        best = min(best, time.perf_counter() - start)
    return loops * len(images) / best


def main() -> None:
    import keras

    from keras_dhsps.models.hasher import build_hasher
    from keras_dhsps.serving.export import export_hasher
    from keras_dhsps.serving.onnx import load_onnx_hasher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = build_hasher("small_cnn", args.bits, image_size=(32, 32))
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs",
        "keras_backend": keras.backend.backend(),
        "codes_per_second": {},
    }
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "hasher.onnx")
        export_hasher(model, path, format="onnx")
        onnx = load_onnx_hasher(path)
        for batch in (1, 256):
            images = np.random.default_rng(batch).integers(
                0, 256, (batch, 32, 32, 3), dtype=np.uint8
            )
            floats = images.astype(np.float32)
            expected = model.predict(floats, batch_size=batch, verbose=0)
            assert np.array_equal(
                pack_codes(onnx.codes_from_preprocessed(images)),
                pack_codes(expected),
            ), "ONNX Runtime and Keras disagree"
            for name, encode in (
                ("onnxruntime", onnx.codes_from_preprocessed),
                (
                    "keras predict",
                    lambda x, b=batch: model.predict(
                        x, batch_size=b, verbose=0
                    ),
                ),
            ):
                data = images if name == "onnxruntime" else floats
                speed = rate(encode, data, args.repeat, args.budget)
                results["codes_per_second"][f"{name}, batch {batch}"] = speed
                print(f"{name:>14}, batch {batch:>3}: {speed:10.1f} codes/s")
    if args.output:
        write_json(args.output, results)


if __name__ == "__main__":
    main()

"""Encoding speed: one process vs Ray Data with 1 and 2 local workers.

Writes ``--images`` random PNGs (default 400, 64x64), encodes them with a
freshly built ``small_cnn`` hasher (``--bits``, 32x32 input, direct
resize) by ``encode_collection`` in this process and by ``encode_on_ray``
with 1 and 2 workers, checks that every run gives the same packed codes
row for row, and reports images per second. Ray's times include starting
Ray and its workers (each loads the hasher once). Run:

    nice -n 10 python benchmarks/encode_scale.py --output encode_scale.json
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

from keras_dhsps.retrieval.codedb import read_code_database  # noqa: E402
from keras_dhsps.serving.encode import encode_collection  # noqa: E402
from keras_dhsps.serving.load import load_hasher  # noqa: E402
from keras_dhsps.serving.ray_encode import RayOptions  # noqa: E402
from keras_dhsps.serving.ray_encode import encode_on_ray  # noqa: E402
from keras_dhsps.serving.ray_encode import read_manifest  # noqa: E402
from keras_dhsps.utils.files import write_json  # noqa: E402


def write_images(directory: str, count: int) -> list[str]:
    from PIL import Image

    generator = np.random.default_rng(0)
    paths = []
    for number in range(count):
        pixels = generator.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        paths.append(os.path.join(directory, f"im{number:05d}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths


def save_hasher(path: str, bits: int) -> None:
    import keras

    from keras_dhsps.models.hasher import build_hasher

    keras.utils.set_random_seed(0)
    build_hasher("small_cnn", bits, image_size=(32, 32)).save(path)


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        paths = write_images(root, args.images)
        model = os.path.join(root, "hasher.keras")
        save_hasher(model, args.bits)
        local = os.path.join(root, "local.h5")
        seconds = {
            "one process": timed(
                lambda: encode_collection(
                    load_hasher(model), paths, local, batch_size=args.batch_size
                )
            )
        }
        expected = read_code_database(local).packed
        for workers in (1, 2):
            manifest = os.path.join(root, f"ray{workers}.json")
            options = RayOptions(
                num_workers=workers, batch_size=args.batch_size
            )
            seconds[f"ray, {workers} worker(s)"] = timed(
                lambda m=manifest, o=options: encode_on_ray(
                    model, paths, m, options=o
                )
            )
            same = np.array_equal(read_manifest(manifest).packed, expected)
            assert same, f"ray with {workers} worker(s) gave other codes"
    results = {
        "images": args.images,
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs",
        "seconds": seconds,
        "images_per_second": {k: args.images / v for k, v in seconds.items()},
        "same_codes": True,
    }
    for name, rate in results["images_per_second"].items():
        print(f"{name:>20}: {rate:8.1f} images/s ({seconds[name]:.1f} s)")
    if args.output:
        write_json(args.output, results)


if __name__ == "__main__":
    main()

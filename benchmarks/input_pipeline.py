"""Input-pipeline throughput: keras_dhsps tf.data vs a plain PIL loader.

Generates ``--images`` photo-like 500×375 JPEGs (quality 90, smooth colour
fields plus sensor-like noise, about the size of a Flickr/VOC JPEG) and
feeds them at 224×224 ("direct" resize, the authors' mode) through

* ``pil``: open, convert to RGB, resize (bilinear), ``np.asarray`` float32,
  one image at a time in one thread (the plain loader peers use);
* ``ours``: ``keras_dhsps.data.pipeline.make_dataset`` with an in-memory
  cache: epoch 1 decodes and fills the cache, later epochs read it.

Reported per loader and epoch: images per second of wall time, CPU seconds
used by the process (all threads), and images per CPU-second, the "per
core" figure: it does not reward using more cores, only using each better.
Both loaders are warmed up first on a few images (for TensorFlow: thread
pools and the first graph-function instantiation, a one-off cost per
process, about 0.3 CPU-seconds); each of ``--repeats`` rounds then builds
a fresh pipeline (empty cache) and times its epochs; medians are reported.

Usage::

    python benchmarks/input_pipeline.py --images 400 --epochs 3
    python benchmarks/input_pipeline.py --json results.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_jpegs(directory: str, count: int, seed: int = 0) -> list[str]:
    """``count`` photo-like 500×375 JPEGs; returns their paths."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    paths = []
    for index in range(count):
        image = np.empty((375, 500, 3), np.float32)
        for channel in range(3):
            a, b, c, d = rng.uniform(-1, 1, 4)
            image[..., channel] = (
                127
                + 70 * np.sin(a * x / 29 + b * y / 31 + c * 6)
                + 40 * np.cos(d * x * y / 9000)
            )
        image += rng.normal(0, 12, image.shape)
        path = os.path.join(directory, f"{index:05d}.jpg")
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(
            path, quality=90
        )
        paths.append(path)
    return paths


def _timed(run) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    count = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "images": count,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "images_per_s": round(count / wall, 1),
        "images_per_cpu_s": round(count / cpu, 1),
        "cores_used": round(cpu / wall, 2),
    }


def pil_epoch(paths: list[str], size: tuple[int, int]) -> int:
    for path in paths:
        with Image.open(path) as image:
            array = np.asarray(
                image.convert("RGB").resize(size, Image.BILINEAR), np.float32
            )
        assert array.shape == (size[1], size[0], 3)
    return len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import tensorflow as tf

    from keras_dhsps.data.base import Split
    from keras_dhsps.data.pipeline import make_dataset

    size = args.image_size
    with tempfile.TemporaryDirectory() as directory:
        paths = make_jpegs(directory, args.images)
        mean_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        split = Split(
            labels=np.ones((len(paths), 1), np.uint8), paths=tuple(paths)
        )
        warm = Split(labels=split.labels[:8], paths=split.paths[:8])

        def epoch_of(dataset) -> int:
            count = 0
            for images, _ in dataset:
                count += int(images.shape[0])
            return count

        pil_epoch(paths[:8], (size, size))
        epoch_of(make_dataset(warm, batch_size=4, image_size=(size, size)))
        results = {
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "images": args.images,
            "mean_jpeg_kb": round(float(mean_kb), 1),
            "pil": [],
            "ours_first_epoch": [],
            "ours_cached_epochs": [],
        }
        for _ in range(args.repeats):
            results["pil"].append(
                _timed(lambda: pil_epoch(paths, (size, size)))
            )
            dataset = make_dataset(
                split,
                batch_size=args.batch_size,
                image_size=(size, size),
                cache=True,
            )
            results["ours_first_epoch"].append(
                _timed(functools.partial(epoch_of, dataset))
            )
            for _ in range(args.epochs - 1):
                results["ours_cached_epochs"].append(
                    _timed(functools.partial(epoch_of, dataset))
                )

    def median(key: str) -> float:
        return float(np.median([r["images_per_cpu_s"] for r in results[key]]))

    pil = median("pil")
    results["median_images_per_cpu_s"] = {
        key: round(median(key), 1)
        for key in ("pil", "ours_first_epoch", "ours_cached_epochs")
    }
    results["ratio_first_epoch"] = round(median("ours_first_epoch") / pil, 2)
    results["ratio_cached_epochs"] = round(
        median("ours_cached_epochs") / pil, 2
    )
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()

"""Input-pipeline throughput: the image store vs a plain PIL loader.

Generates ``--images`` photo-like 500×375 JPEGs (quality 90, smooth colour
fields plus sensor-like noise, about the size of a Flickr/VOC JPEG) and
feeds them at 224×224 (``resize="direct"``, the authors' mode) through

* ``pil``: open, convert to RGB, resize (bilinear), ``np.asarray`` float32,
  one image at a time in one thread (the plain loader peers use);
* ``store``: ``keras_dhsps.data.store.open_store`` (decoding with tf.data
  where TensorFlow is installed): the first epoch decodes every image into
  the uint8 store and reads it; a cached epoch only reads it. An epoch reads
  shuffled batches of ``--batch-size`` uint8 images with
  ``ImageStore.read``, which is what crosses to the device (the cast to
  float32, crops and flips run there, in the model);
* ``store_file``: the same with ``memory_budget_mb=0``, so the store is a
  memory-mapped file (written, fsynced, renamed on the first epoch);
* ``--pillow-store`` adds ``store_pillow``: the store built by Pillow in
  worker processes, as on a machine without TensorFlow.

Reported per loader and epoch: images per second of wall time, CPU seconds
(this process, all threads, plus finished worker processes) and images per
CPU-second, the "per core" figure: it does not reward using more cores,
only using each better. Every loader is warmed up first on a few images
(for TensorFlow: thread pools and the first graph-function instantiation,
a one-off cost per process); each of ``--repeats`` rounds then times the
PIL loader and, for each store, a first epoch on an empty store and
``--epochs - 1`` cached epochs; medians are reported.

Usage::

    python benchmarks/input_pipeline.py --images 400 --epochs 3
    python benchmarks/input_pipeline.py --json results.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shutil
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


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(run) -> dict:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    count = run()
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
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


def store_epoch(store, batch_size: int, seed: int) -> int:
    """Reads one shuffled epoch of uint8 batches from ``store``."""
    order = np.random.default_rng(seed).permutation(len(store))
    count = 0
    for start in range(0, len(order), batch_size):
        batch = store.read(order[start : start + batch_size])
        assert batch.dtype == np.uint8
        count += len(batch)
    return count


def _store_opener(split, size: int, budget_mb: int, store_dir: str):
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data import store

    config = InputConfig(
        resize="direct", memory_budget_mb=budget_mb, store_dir=store_dir
    )
    return functools.partial(
        store.open_store, split, image_size=size, input_config=config
    )


def _store_round(kind, split, args, directory, results) -> None:
    """One round of a store: a first epoch that builds the store (from an
    empty cache and directory) and reads it, then the cached epochs (reads
    only); for a file store also the time to open it again (verification
    of the trailer and three sampled blocks)."""
    from keras_dhsps.data import store as store_module

    store_module.clear_memory_cache()
    store_dir = tempfile.mkdtemp(dir=directory, prefix="stores-")
    budget = 0 if kind == "store_file" else 1 << 20
    opener = _store_opener(split, args.image_size, budget, store_dir)
    built = {}

    def first_epoch() -> int:
        built["store"] = opener()
        return store_epoch(built["store"], args.batch_size, 0)

    results.setdefault(f"{kind}_first_epoch", []).append(_timed(first_epoch))
    for epoch in range(1, args.epochs):
        read = functools.partial(
            store_epoch, built["store"], args.batch_size, epoch
        )
        results.setdefault(f"{kind}_cached_epochs", []).append(_timed(read))
    if kind == "store_file":
        start = time.perf_counter()
        opener()
        reopen = round(time.perf_counter() - start, 4)
        results.setdefault("store_file_reopen_s", []).append(reopen)
    del built["store"]
    store_module.clear_memory_cache()
    shutil.rmtree(store_dir)


def _summarise(results: dict, kinds: list[str]) -> None:
    def median(key: str) -> float:
        return float(np.median([r["images_per_cpu_s"] for r in results[key]]))

    pil = median("pil")
    keys = ["pil"] + [
        f"{kind}_{epoch}"
        for kind in kinds
        for epoch in ("first_epoch", "cached_epochs")
        if f"{kind}_{epoch}" in results
    ]
    results["median_images_per_cpu_s"] = {
        key: round(median(key), 1) for key in keys
    }
    results["ratio_to_pil"] = {
        key: round(median(key) / pil, 2) for key in keys[1:]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--pillow-store",
        action="store_true",
        help="also time the store built by Pillow workers (no TensorFlow)",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from keras_dhsps.data import decoding
    from keras_dhsps.data import store
    from keras_dhsps.data.base import Split

    tf = decoding.tensorflow_or_none()
    kinds = ["store", "store_file"] + (
        ["store_pillow"] if args.pillow_store else []
    )
    size = args.image_size
    with tempfile.TemporaryDirectory() as directory:
        paths = make_jpegs(directory, args.images)
        mean_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        split = Split(
            labels=np.ones((len(paths), 1), np.uint8), paths=tuple(paths)
        )
        warm = Split(labels=split.labels[:8], paths=split.paths[:8])
        pil_epoch(paths[:8], (size, size))
        store_epoch(_store_opener(warm, size, 64, directory)(), 4, 0)
        results = {
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__ if tf is not None else None,
            "images": args.images,
            "mean_jpeg_kb": round(float(mean_kb), 1),
            "pil": [],
        }
        for _ in range(args.repeats):
            results["pil"].append(
                _timed(lambda: pil_epoch(paths, (size, size)))
            )
            for kind in kinds:
                if kind == "store_pillow":
                    with _without_tensorflow(store):
                        _store_round(kind, split, args, directory, results)
                else:
                    _store_round(kind, split, args, directory, results)
    _summarise(results, kinds)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


@contextlib.contextmanager
def _without_tensorflow(store_module):
    """The store's decoder choice as on a machine without TensorFlow."""
    real = store_module.tensorflow_or_none
    store_module.tensorflow_or_none = lambda: None
    try:
        yield
    finally:
        store_module.tensorflow_or_none = real


if __name__ == "__main__":
    main()

"""Fast generator of photo-like JPEGs for the benchmarks.

Each image is one of a few smooth, noisy base images (colour fields plus
sensor-like noise, as ``benchmarks/input_pipeline.py`` draws them), rolled
by a random offset and tinted, then saved as a quality-90 JPEG: about the
size and decoding cost of a Flickr photo, at a few milliseconds of CPU per
image (the JPEG encoding) instead of tens. Worker processes share the work.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os

import numpy as np
from PIL import Image

#: Width × height of a MIRFlickr/VOC-like photo.
PHOTO_SIZE = (500, 375)
BASES = 8


def _base_images(size, seed):
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    bases = []
    for _ in range(BASES):
        image = np.empty((height, width, 3), np.float32)
        for channel in range(3):
            a, b, c, d = rng.uniform(-1, 1, 4)
            image[..., channel] = (
                127
                + 70 * np.sin(a * x / 29 + b * y / 31 + c * 6)
                + 40 * np.cos(d * x * y / 9000)
            )
        image += rng.normal(0, 12, image.shape)
        bases.append(image)
    return bases


def _write_chunk(paths, size, seed):
    bases = _base_images(size, 0)
    rng = np.random.default_rng(seed)
    width, height = size
    for path in paths:
        base = bases[rng.integers(BASES)]
        shift = (int(rng.integers(height)), int(rng.integers(width)))
        tint = rng.uniform(-30, 30, 3).astype(np.float32)
        image = np.roll(base, shift, axis=(0, 1)) + tint
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(
            path, quality=90
        )
    return len(paths)


def make_photos(directory, names, *, size=PHOTO_SIZE, seed=0, workers=None):
    """Writes one JPEG per name (``NAME.jpg``) under ``directory``.

    Args:
        directory: created if missing.
        names: file stems, e.g. ``im1`` ... ``im25000``.
        size: ``(width, height)``.
        seed: images depend on it and on the number of workers only.
        workers: processes (default: every CPU, at most 16).

    Returns:
        The paths written, in the order of ``names``.
    """
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, f"{name}.jpg") for name in names]
    workers = workers or min(os.cpu_count() or 1, 16)
    chunks = [paths[i::workers] for i in range(workers)]
    if workers == 1:
        _write_chunk(paths, size, seed)
        return paths
    # spawn: the caller may already run JAX's or TensorFlow's threads, which
    # a forked child would inherit mid-lock.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, context) as pool:
        jobs = [
            pool.submit(_write_chunk, chunk, size, seed + 1 + index)
            for index, chunk in enumerate(chunks)
            if chunk
        ]
        for job in jobs:
            job.result()
    return paths

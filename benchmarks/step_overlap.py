"""What a callback that makes every training step wait costs, when the
host needs time to prepare each batch.

Keras reads every step's logs on the main thread as soon as one callback
has a per-batch end hook that is not ``async_safe``; each step then waits
for the device, and the host prepares the next batch only afterwards (host
time + device time per step). Otherwise the host prepares batch n + 1
while the device computes batch n (the larger of the two).
``keras_dhsps.training.callbacks.StopOnNaN`` is ``async_safe`` for this reason.

This script times ``model.fit`` of a small hasher on the active backend
(JAX or PyTorch: Keras runs TensorFlow's callbacks in line whatever they
declare) with a batch generator that spends ``--host-ms`` milliseconds per
batch (a sleep, standing for the gather from the image store and the copy
to the device), three ways, in one run:

* no callback (the baseline);
* the run's NaN guard, ``StopOnNaN``;
* Keras' ``TerminateOnNaN``: a per-batch hook that is not ``async_safe``,
  as the NaN guard was before.

It prints milliseconds per step and each way's ratio to the baseline. The
device here is whatever JAX or PyTorch runs on; on a CPU the "device" is
the CPU's own threads, which still run asynchronously to Python.

Usage::

    KERAS_BACKEND=jax python benchmarks/step_overlap.py
    KERAS_BACKEND=jax python benchmarks/step_overlap.py --host-ms 0 10 20
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_dhsps.losses import IDHNLoss  # noqa: E402
from keras_dhsps.models.hasher import build_hasher  # noqa: E402
from keras_dhsps.training.callbacks import StopOnNaN  # noqa: E402

WAYS = {
    "no callback": list,
    "NaN guard (StopOnNaN)": lambda: [StopOnNaN()],
    "per-step wait (TerminateOnNaN)": lambda: [
        keras.callbacks.TerminateOnNaN()
    ],
}


def batches(images, labels, host_seconds):
    """Endless ``(images, labels)``, each after ``host_seconds``."""
    while True:
        if host_seconds:
            time.sleep(host_seconds)
        yield images, labels


def milliseconds_per_step(model, stream, steps, callbacks):
    start = time.perf_counter()
    model.fit(
        stream,
        steps_per_epoch=steps,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return 1000 * (time.perf_counter() - start) / steps  # logs are synced


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host-ms", type=float, nargs="+", default=[0, 10, 20])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    size = args.image_size
    model = build_hasher("small_cnn", 32, image_size=(size, size))
    model.compile(optimizer="adam", loss=IDHNLoss())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch_size, size, size, 3), np.uint8)
    labels = (rng.random((args.batch_size, 10)) < 0.3).astype("float32")
    warm_up = batches(images, labels, 0)
    model.fit(warm_up, steps_per_epoch=5, verbose=0, shuffle=False)

    print(
        f"backend {keras.backend.backend()}, batch {args.batch_size}, "
        f"{size}x{size}, {args.steps} steps, best of {args.repeats}"
    )
    print("| host ms per batch | way | ms per step | ratio to no callback |")
    print("|---:|---|---:|---:|")
    for host_ms in args.host_ms:
        times = {}
        for way, make in WAYS.items():
            stream = batches(images, labels, host_ms / 1000)
            times[way] = min(
                milliseconds_per_step(model, stream, args.steps, make())
                for _ in range(args.repeats)
            )
        baseline = times["no callback"]
        for way, value in times.items():
            print(
                f"| {host_ms:g} | {way} | {value:.1f} | "
                f"{value / baseline:.2f} |"
            )
    return 0


if __name__ == "__main__":
    main()

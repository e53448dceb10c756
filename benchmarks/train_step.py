"""Training throughput (images/s) of one IDHN step: keras_dhsps vs PyTorch.

For each backbone (AlexNet at 227×227, ResNet50 at 224×224) it times the
training step of our hasher (``build_hasher`` + ``IDHNLoss`` + the two-rate
``LayerwiseAdam`` with the authors' step decay, run by ``model.fit`` as
``keras_dhsps.training.fit.fit`` runs it), in float32 and under the
``mixed_bfloat16`` policy (each also with the run's NaN guard and with a
callback that makes every step wait for the device: see
:func:`time_keras`), and of an equivalent plain PyTorch loop (the
stack of the popular PyTorch port: ``nn.Module`` backbone + hash ``Linear``
+ the same loss in torch ops + ``torch.optim.Adam`` with two parameter
groups and a per-step LR scheduler): eager float32, eager with bf16
autocast and channels_last, and the latter under ``torch.compile``. Same
device, batch and images, one process.

Images: ``--pool`` photo-like 500×375 JPEGs are generated, decoded and
resized once into the image store (``keras_dhsps.data.store``) and read
from it as uint8; every step sends a uint8 batch from the host (a quarter
of float32's bytes) and both models cast to float on the device and
normalize inside the model. Weights are random (throughput does not depend
on them); nothing is downloaded.

PyTorch is optional: without it the PyTorch rows are skipped with a message.
On a CPU the default batch is 8 so a 2-core machine finishes in minutes; on
a GPU it is 128 (the authors' batch).

Usage::

    python benchmarks/train_step.py                 # both models, all stacks
    python benchmarks/train_step.py --batch-size 128 --steps 20 --warmup 5
    KERAS_BACKEND=jax python benchmarks/train_step.py   # where TF is absent
    python benchmarks/train_step.py --output results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photos import make_photos  # noqa: E402

MODELS = {"alexnet": 227, "resnet50": 224}
NUM_CLASSES = 38  # MIRFlickr-25K's label count in the authors' script
BITS = 48
KERAS_PRECISIONS = ("float32", "mixed_bfloat16")
#: PyTorch loops: eager float32, eager bf16 autocast + channels_last, and
#: that under torch.compile.
TORCH_VARIANTS = ("eager", "eager_bf16", "compile_bf16")


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def random_labels(count, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((count, NUM_CLASSES)) < 0.15).astype("uint8")
    labels[np.arange(count), rng.integers(0, NUM_CLASSES, count)] = 1
    return labels


def decode_into_store(paths, labels, size, store_dir):
    """uint8 ``(N, size, size, 3)`` images of ``paths`` from the store."""
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.base import Split
    from keras_dhsps.data.store import open_store

    split = Split(labels=labels, paths=tuple(paths))
    store = open_store(
        split,
        image_size=(size, size),
        input_config=InputConfig(resize="direct", store_dir=store_dir),
    )
    return np.asarray(store.read(np.arange(len(store))))


def image_pool(size, count, seed=0):
    """``count`` uint8 images at ``size`` from the store, and labels."""
    labels = random_labels(count, seed)
    with tempfile.TemporaryDirectory() as directory:
        paths = make_photos(
            os.path.join(directory, "jpg"),
            [f"im{index}" for index in range(count)],
            seed=seed,
        )
        images = decode_into_store(
            paths, labels, size, os.path.join(directory, "store")
        )
    return images, labels.astype("float32")


def pool_batches(images, labels, batch_size):
    """Endless batches cycling through the pool (uint8 images)."""
    start = 0
    while True:
        rows = np.arange(start, start + batch_size) % len(images)
        start = (start + batch_size) % len(images)
        yield images[rows], labels[rows]


# ---------------------------------------------------------------- Keras side


def keras_device():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"GPU ({details.get('device_name', 'unknown')})"
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"GPU ({device.device_kind})"
    return f"CPU ({cpu_name()}, {os.cpu_count()} cores)"


def build_optimizer():
    """The optimizer ``keras_dhsps.training.fit.fit`` builds for the default
    ``TrainConfig``."""
    from keras_dhsps.config import TrainConfig
    from keras_dhsps.training.fit import build_optimizer as build

    return build(TrainConfig())


def time_keras(model_name, pool, batch_size, steps, warmup, options):
    """``options``: ``precision`` and ``jit_compile``. Times ``fit`` with no
    callback, then, with the same compiled step, with the run's NaN guard
    (``keras_dhsps.training.callbacks.StopOnNaN``, ``async_safe``) and with Keras'
    ``TerminateOnNaN`` (a per-batch hook that is not: Keras then reads
    every step's loss on the main thread, as the guard did before)."""
    import keras

    from keras_dhsps.losses import IDHNLoss
    from keras_dhsps.models.hasher import build_hasher
    from keras_dhsps.training.callbacks import StopOnNaN
    from keras_dhsps.training.fit import precision_scope

    keras.utils.set_random_seed(0)
    size = MODELS[model_name]
    with precision_scope(options["precision"]):
        model = build_hasher(model_name, BITS, image_size=(size, size))
    model.compile(
        optimizer=build_optimizer(),
        loss=IDHNLoss(),
        jit_compile=options["jit_compile"],
    )
    batches = pool_batches(*pool, batch_size)
    # The first fit traces (and compiles) the step; the second is timed.
    model.fit(
        batches, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False
    )
    rates = {}
    for name, callbacks in (
        ("images_per_second", []),
        ("images_per_second_nan_guard", [StopOnNaN()]),
        ("images_per_second_per_step_sync", [keras.callbacks.TerminateOnNaN()]),
    ):
        start = time.perf_counter()
        history = model.fit(
            batches,
            steps_per_epoch=steps,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=callbacks,
        )
        elapsed = time.perf_counter() - start  # fit returns synced logs
        rates[name] = round(batch_size * steps / elapsed, 2)
    rate = rates.pop("images_per_second")
    return rate, float(history.history["loss"][-1]), rates


# -------------------------------------------------------------- PyTorch side


def torch_models():
    """The PyTorch modules, defined only when torch is importable.

    Long but whole on purpose: the ``nn.Module`` classes must be defined
    after ``import torch``, which happens only when the PyTorch rows run
    (torch is not a dependency); each class is short.
    """
    import torch
    from torch import nn

    class Preprocess(nn.Module):
        """RGB [0, 255] NHWC -> BGR mean-subtracted NCHW (Caffe)."""

        def __init__(self, mean_bgr):
            super().__init__()
            self.register_buffer(
                "mean", torch.tensor(mean_bgr).view(1, 3, 1, 1)
            )

        def forward(self, x):
            return x.permute(0, 3, 1, 2).flip(1) - self.mean

    class AlexNet(nn.Module):
        """Caffe AlexNet to fc7, as keras_dhsps.models.alexnet builds it."""

        def __init__(self):
            super().__init__()
            self.pre = Preprocess([104.0, 117.0, 123.0])
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 11, 4),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2),
                nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
                nn.Conv2d(96, 256, 5, padding=2, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2),
                nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
                nn.Conv2d(256, 384, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(384, 384, 3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(9216, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
            )
            self.out_features = 4096

        def forward(self, x):
            return self.classifier(self.features(self.pre(x)))

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, stride, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False),
                    nn.BatchNorm2d(cout),
                )

        def forward(self, x):
            skip = x if self.shortcut is None else self.shortcut(x)
            return torch.relu(self.body(x) + skip)

    class ResNet50(nn.Module):
        """torchvision's ResNet-50 (v1.5) without its classifier."""

        def __init__(self):
            super().__init__()
            self.pre = Preprocess([103.939, 116.779, 123.68])
            layers = [
                nn.Conv2d(3, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            ]
            cin = 64
            for width, blocks, stride in (
                (64, 3, 1),
                (128, 4, 2),
                (256, 6, 2),
                (512, 3, 2),
            ):
                for index in range(blocks):
                    layers.append(
                        Bottleneck(cin, width, stride if index == 0 else 1)
                    )
                    cin = width * 4
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.features = nn.Sequential(*layers)
            self.out_features = 2048

        def forward(self, x):
            return self.features(self.pre(x))

    class Hasher(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone
            self.hash_layer = nn.Linear(backbone.out_features, BITS)

        def forward(self, x):
            return torch.tanh(self.hash_layer(self.backbone(x)))

    def idhn_loss(labels, codes, beta=5.0, gamma=0.1, alpha=0.1):
        """The IDHN loss of keras_dhsps.losses.idhn_loss, in torch ops."""
        k = codes.shape[1]
        normed = nn.functional.normalize(labels, dim=1)
        s = normed @ normed.t()
        hard = ((s < 0.01) | (s > 0.99)).float()
        inner = codes @ codes.t()
        theta = beta * inner / k
        hard_loss = nn.functional.softplus(theta) - s * theta
        soft_loss = gamma * k * ((inner + k) / (2 * k) - s) ** 2
        pairs = hard * hard_loss + (1 - hard) * soft_loss
        quant = (codes.abs() - 1).abs().mean(dim=1)
        return (pairs.mean(dim=1) + alpha * quant).mean()

    return {"alexnet": AlexNet, "resnet50": ResNet50}, Hasher, idhn_loss


def torch_device():
    import torch

    if torch.cuda.is_available():
        return "cuda", f"GPU ({torch.cuda.get_device_name(0)})"
    return "cpu", f"CPU ({cpu_name()}, {os.cpu_count()} cores)"


def time_torch(model_name, pool, batch_size, steps, warmup, variant):
    """``variant``: one of ``TORCH_VARIANTS``."""
    import torch

    torch.manual_seed(0)
    backbones, Hasher, idhn_loss = torch_models()
    device, _ = torch_device()
    bf16 = variant.endswith("_bf16")
    memory_format = torch.channels_last if bf16 else torch.contiguous_format
    model = Hasher(backbones[model_name]()).to(
        device, memory_format=memory_format
    )
    model.train()
    optimizer = torch.optim.Adam(
        [
            {"params": model.backbone.parameters(), "lr": 1e-5},
            {"params": model.hash_layer.parameters(), "lr": 1e-3},
        ],
        eps=1e-8,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 500, 0.5)
    forward = torch.compile(model) if variant.startswith("compile") else model
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
    batches = pool_batches(*pool, batch_size)

    def step():
        images, labels = next(batches)
        # uint8 crosses to the device; the cast runs there.
        x = torch.from_numpy(images).to(device, non_blocking=True).float()
        y = torch.from_numpy(labels).to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            codes = forward(x)
        loss = idhn_loss(y, codes.float())
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    elapsed = time.perf_counter() - start
    return batch_size * steps / elapsed, float(loss.item()), {}


# -------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="alexnet,resnet50")
    parser.add_argument(
        "--batch-size", type=int, help="default: 128 on a GPU, 8 on a CPU"
    )
    parser.add_argument("--steps", type=int, help="timed steps (GPU 20, CPU 3)")
    parser.add_argument(
        "--warmup", type=int, help="untimed steps (GPU 5, CPU 1)"
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=256,
        help="images generated and held in the store, cycled through",
    )
    parser.add_argument(
        "--jit-compile",
        default="auto",
        help="Keras jit_compile: auto|true|false",
    )
    parser.add_argument("--frameworks", default="keras,torch")
    parser.add_argument(
        "--precisions",
        default=",".join(KERAS_PRECISIONS),
        help="Keras dtype policies",
    )
    parser.add_argument(
        "--torch-variants",
        default=",".join(TORCH_VARIANTS),
        help="PyTorch loops: " + ", ".join(TORCH_VARIANTS),
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="record a failing stack's error in its row and go on",
    )
    parser.add_argument("--output", help="write the results as JSON here")
    return parser.parse_args(argv)


def available_devices(frameworks):
    """{framework: device description}; drops torch when missing."""
    devices = {}
    if "keras" in frameworks:
        devices["keras"] = keras_device()
    if "torch" in frameworks:
        try:
            import torch  # noqa: F401

            devices["torch"] = torch_device()[1]
        except ImportError:
            print(
                "PyTorch is not installed: skipping the PyTorch rows "
                "(pip install torch to compare).",
                file=sys.stderr,
            )
    return devices


def runs(args, devices):
    """(framework, label, option) of every stack to time."""
    import keras

    jit = {"true": True, "false": False}.get(args.jit_compile.lower(), "auto")
    for framework in devices:
        if framework == "keras":
            for precision in args.precisions.split(","):
                label = (
                    f"keras_dhsps (Keras {keras.__version__}, "
                    f"{keras.backend.backend()}, {precision}, "
                    f"jit_compile={jit})"
                )
                yield (
                    framework,
                    label,
                    {
                        "precision": precision,
                        "jit_compile": jit,
                    },
                )
        else:
            import torch

            for variant in args.torch_variants.split(","):
                label = f"PyTorch {torch.__version__} {variant}"
                yield framework, label, variant


def write_results(results, path):
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    os.replace(partial, path)


def scheduled_runs(args, devices):
    """``(model, framework, stack, option)`` in the order they run: the
    rows the targets compare, for every model, before ``torch.compile``'s
    (the longest to compile), so a run cut short by its time limit loses
    those first."""
    rows = [
        (model_name, *run)
        for model_name in args.models.split(",")
        for run in runs(args, devices)
    ]
    # sorted() is stable: the order within each group is kept.
    return sorted(
        rows, key=lambda row: row[1] == "torch" and "compile" in row[3]
    )


def main(argv=None):
    args = parse_args(argv)
    devices = available_devices(args.frameworks.split(","))
    on_gpu = any(d.startswith("GPU") for d in devices.values())
    batch_size = args.batch_size or (128 if on_gpu else 8)
    steps = args.steps or (20 if on_gpu else 3)
    warmup = args.warmup or (5 if on_gpu else 1)

    results, pools = [], {}
    print("| model | stack | device | batch | images/s | last loss |")
    print("|---|---|---|---|---|---|")
    for model_name, framework, stack, option in scheduled_runs(args, devices):
        if model_name not in pools:
            count = max(args.pool, batch_size)
            pools[model_name] = image_pool(MODELS[model_name], count)
        timer = time_keras if framework == "keras" else time_torch
        row = {
            "model": f"{model_name}-{MODELS[model_name]}",
            "stack": stack,
            "device": devices[framework],
            "batch_size": batch_size,
            "steps": steps,
            "input": "uint8 from the image store",
        }
        try:
            rate, loss, extra = timer(
                model_name, pools[model_name], batch_size, steps, warmup, option
            )
        except Exception as error:  # --keep-going: record, go on
            if not args.keep_going:
                raise
            print(f"{stack}: {error!r}", file=sys.stderr)
            row["error"] = repr(error)[:500]
        else:
            row["images_per_second"] = round(rate, 2)
            row["last_loss"] = round(loss, 4)
            row.update(extra)
        results.append(row)
        if args.output:  # after every row: a run cut short keeps them
            write_results(results, args.output)
        print(
            f"| {row['model']} | {stack} | {row['device']} | "
            f"{batch_size} | {row.get('images_per_second', 'failed')} | "
            f"{row.get('last_loss', '')} |",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()

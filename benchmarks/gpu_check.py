"""The GPU check: one command for a GPU machine with JAX and PyTorch but no
TensorFlow, no Keras and no network (issue 12, item 7).

It installs the carried wheels of ``.whl/`` (Keras and what Keras needs
that such a machine lacks; ``benchmarks/fetch_wheels.sh`` downloads them)
when Keras is missing, sets ``KERAS_BACKEND=jax`` and runs three parts,
each in its own process with a time limit taken from one overall budget:

* ``train_step``: ``benchmarks/train_step.py``, batch 128, AlexNet-227 and
  ResNet50-224, Keras-JAX float32 and mixed_bfloat16 against the PyTorch
  loop (eager float32, eager bf16 autocast + channels_last, and that under
  ``torch.compile``), images from the store as uint8;
* ``mirflickr_cell``: one cell of ``paper_mirflickr25k`` (IDHN, AlexNet-227,
  48 bits, the table's schedule: 100 epochs, batch 128; random weights) on
  a generated MIRFlickr-shaped tree of 500×375 JPEGs (1,000 query, 4,000
  train, 20,000 database) read through peers'-format list files (the
  ``lists`` dataset). Wall time split into generating the JPEGs, decoding
  them into the store, training, encoding and metrics; the table's deep
  cells are extrapolated as one decode plus every cell's train, encode and
  metrics;
* ``digits_table``: the digits-mosaic table of ``make reproduce``, wall time.

Before the parts, a preflight of a few seconds checks that Keras imports
from the wheels and that JAX sees a GPU (``--tiny``: any device), and ends
the check with one ``error:`` line otherwise. A JSON summary is printed
and, after every part, written to
``$OUT/gpu_check.json`` when ``OUT`` is set (else ``--json``), so a part
that runs out of time leaves the others' figures. ``--tiny`` runs every
part at a few images and steps on a CPU (the test does); the PyTorch rows
are skipped where torch is missing.

Usage (repository root)::

    python3 benchmarks/gpu_check.py            # the GPU machine, ~10 min
    python3 benchmarks/gpu_check.py --tiny     # any CPU: a few images, steps
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: In the order they run: the table estimate first, the digits table last.
PARTS = ("mirflickr_cell", "train_step", "digits_table")
#: Each part's own limit in seconds (within the overall budget).
PART_LIMITS = {"mirflickr_cell": 180, "train_step": 270, "digits_table": 200}
#: MIRFlickr-25K's split sizes in the authors' protocol, and a tiny variant.
MIRFLICKR_SPLITS = {"query": 1000, "train": 4000, "database": 20000}
TINY_SPLITS = {"query": 4, "train": 8, "database": 8}
NUM_LABELS = 38


def install_wheels(wheel_dir):
    """Installs ``wheel_dir/*.whl`` into a private folder when Keras is
    missing; returns that folder (to prepend to ``PYTHONPATH``) or None."""
    if importlib.util.find_spec("keras") is not None:
        return None
    wheels = sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))
    if not wheels:
        raise SystemExit(
            f"error: Keras is not installed and {wheel_dir} holds no wheels "
            "(run benchmarks/fetch_wheels.sh where there is network)"
        )
    target = os.path.join(tempfile.gettempdir(), "keras_dhsps_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index"]
        + ["--no-deps", "--no-compile", "--no-cache-dir", "--upgrade"]
        + ["--target", target, *wheels],
        check=True,
    )
    return target


def part_environment(site):
    """The environment of every part: JAX backend, this checkout first."""
    paths = [ROOT] + ([site] if site else [])
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # JAX takes 75 % of the GPU at start by default; PyTorch shares it in
    # the train-step part.
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


#: Run in the parts' environment before any part: Keras' own dependencies
#: first (Keras hides a missing one behind "you need to have optree"), then
#: Keras and JAX, then what JAX and PyTorch see.
PREFLIGHT = """
import importlib.metadata, json
import namex, optree
import jax, keras
device = jax.devices()[0]
seen = {"keras_backend": keras.backend.backend(),
        "jax_platform": device.platform, "jax_device": device.device_kind}
try:
    import torch
except ImportError:
    seen["torch"] = None
else:
    seen["torch"] = torch.__version__
    seen["torch_cuda"] = torch.cuda.is_available()
print(json.dumps(seen))
"""


def preflight(env, tiny):
    """Checks in seconds, before the parts spend the budget, that Keras and
    its dependencies import from the carried wheels, that JAX runs, and, on
    a full run, that JAX sees a GPU (else the parts would run the GPU sizes
    on the CPU until their limits). Returns what it saw; exits with one
    ``error:`` line otherwise."""
    completed = subprocess.run(
        [sys.executable, "-c", PREFLIGHT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines() or ["no output"]
        raise SystemExit(
            "error: the parts' environment cannot import Keras and JAX: "
            f"{lines[-1]} (is every wheel Keras needs in .whl?)"
        )
    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    if not tiny and seen["jax_platform"] == "cpu":
        raise SystemExit(
            "error: JAX sees no GPU (device: cpu), so the GPU sizes would "
            "run on the CPU; check its CUDA plugin, or run --tiny"
        )
    return seen


# ------------------------------------------------------------------ parts


def run_train_step(tiny, workdir):
    import train_step

    if tiny:
        argv = ["--models", "alexnet", "--batch-size", "2", "--steps", "1"]
        argv += ["--warmup", "1", "--pool", "4", "--precisions", "float32"]
        argv += ["--torch-variants", "eager"]
    else:
        argv = ["--batch-size", "128", "--steps", "20", "--warmup", "5"]
        argv += ["--pool", "512"]
    argv += [
        "--keep-going",
        "--output",
        os.path.join(workdir, "train_step.rows.json"),
    ]
    return {"rows": train_step.main(argv)}


def write_mirflickr_tree(root, sizes, seed=0):
    """A MIRFlickr-shaped tree: ``images/imN.jpg`` (500×375) and peers'
    list files (``train.txt``, ``test.txt``, ``database.txt``) with random
    multi-hot labels over 38 classes; returns the lists folder."""
    import numpy as np
    from photos import make_photos

    from keras_dhsps.data.listfile import LIST_FILES

    total = sum(sizes.values())
    names = [f"im{index + 1}" for index in range(total)]
    make_photos(os.path.join(root, "images"), names, seed=seed)
    rng = np.random.default_rng(seed)
    labels = rng.random((total, NUM_LABELS)) < 0.1
    labels[np.arange(total), rng.integers(0, NUM_LABELS, total)] = True
    lists = os.path.join(root, "lists")
    os.makedirs(lists, exist_ok=True)
    start = 0
    for split, count in sizes.items():
        rows = range(start, start + count)
        start += count
        lines = [
            f"images/{names[row]}.jpg "
            + " ".join(str(int(v)) for v in labels[row])
            for row in rows
        ]
        path = os.path.join(lists, LIST_FILES[split])
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
    return lists


def mirflickr_cell_config(tiny, lists_dir, root):
    """The IDHN 48-bit cell of ``paper_mirflickr25k`` on the generated tree
    (random weights); tiny: the small CNN, one epoch at batch 4."""
    from keras_dhsps.config import DataConfig
    from keras_dhsps.experiments.table_config import cell_config
    from keras_dhsps.experiments.table_config import load_table_config

    table = load_table_config(
        os.path.join(ROOT, "reproduce", "configs", "paper_mirflickr25k.py")
    )
    method = next(m for m in table.methods if m.shallow is None)
    config = cell_config(table, method, max(table.bits), table.seeds[0])
    # The authors train on all 4,000 images: nothing carved for validation.
    options = {"lists_dir": lists_dir, "validation_fraction": 0.0}
    config = dataclasses.replace(
        config,
        data=DataConfig(name="lists", seed=0, options=options),
        model=dataclasses.replace(config.model, backbone_weights=None),
    )
    if tiny:  # the small CNN: seconds on a CPU (AlexNet: train_step)
        config = dataclasses.replace(
            config,
            model=dataclasses.replace(config.model, backbone="small_cnn"),
            train=dataclasses.replace(config.train, epochs=1, batch_size=4),
        )
    deep_cells = (
        sum(m.shallow is None for m in table.methods)
        * len(table.bits)
        * len(table.seeds)
    )
    return config, deep_cells


def decode_into_stores(dataset, config):
    """Decodes every split into the image store ``fit`` and ``encode`` read
    (the same stored size and ``input`` section, so the same keys)."""
    from keras_dhsps.data.sizes import stored_image_size
    from keras_dhsps.data.store import open_store

    for name in ("train", "query", "database"):
        store = open_store(
            dataset.split(name),
            image_size=stored_image_size(config),
            input_config=config.input,
        )
        store.read([0])  # built by now


@contextlib.contextmanager
def counting_decodes():
    """Counts the images the image store decodes inside the block (the
    decode step must leave none to training and encoding)."""
    from keras_dhsps.data import decoding

    decode = decoding.decoded_batches
    counter = {"images": 0}

    def counted(split, **options):
        counter["images"] += len(split)
        return decode(split, **options)

    decoding.decoded_batches = counted
    try:
        yield counter
    finally:
        decoding.decoded_batches = decode


def run_mirflickr_cell(tiny, workdir):
    from keras_dhsps.data import load_configured_dataset
    from keras_dhsps.retrieval.evaluation import encode
    from keras_dhsps.retrieval.evaluation import report_from_codes
    from keras_dhsps.training.fit import fit

    sizes = TINY_SPLITS if tiny else MIRFLICKR_SPLITS
    seconds = {}
    clock = time.perf_counter()
    root = os.path.join(workdir, "mirflickr")
    lists_dir = write_mirflickr_tree(root, sizes)
    seconds["generate_jpegs"] = time.perf_counter() - clock

    config, deep_cells = mirflickr_cell_config(tiny, lists_dir, root)
    store_dir = os.path.join(workdir, "store")
    config = dataclasses.replace(
        config, input=dataclasses.replace(config.input, store_dir=store_dir)
    )
    dataset = load_configured_dataset(config.data, root=root)
    clock = time.perf_counter()
    decode_into_stores(dataset, config)
    seconds["decode"] = time.perf_counter() - clock

    with counting_decodes() as decoded_later:
        clock = time.perf_counter()
        result = fit(config, dataset=dataset, verbose=0)
        seconds["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
        codes = {
            name: encode(
                result.model, dataset.split(name), input_config=config.input
            )
            for name in ("query", "database")
        }
        seconds["encode"] = time.perf_counter() - clock
    clock = time.perf_counter()
    report = report_from_codes(
        codes["query"],
        dataset.split("query").labels,
        codes["database"],
        dataset.split("database").labels,
        config.eval,
        curves=False,
    )
    seconds["metrics"] = time.perf_counter() - clock
    per_cell = seconds["train"] + seconds["encode"] + seconds["metrics"]
    return {
        "cell": config.name,
        "images": sizes,
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "seconds": {k: _round(v) for k, v in seconds.items()},
        # 0: training and encoding read the stores of the decode step.
        "images_decoded_after_decode_step": decoded_later["images"],
        "metrics": {k: _round(v, 4) for k, v in report["metrics"].items()},
        "table_deep_cells": deep_cells,
        "table_estimate_s": _round(seconds["decode"] + deep_cells * per_cell),
    }


def run_digits_table(tiny, workdir):
    output = os.path.join(workdir, "digits-mosaic")
    command = [sys.executable, "-m", "keras_dhsps", "reproduce"]
    command += [os.path.join(ROOT, "reproduce", "configs", "digits_mosaic.py")]
    command += ["--output", output] + (["--smoke"] if tiny else [])
    clock = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - clock
    tables = sorted(glob.glob(os.path.join(output, "*.md")))
    text = open(tables[0], encoding="utf-8").read() if tables else ""
    return {"wall_s": _round(wall), "table_markdown": text[:4000]}


RUNNERS = {
    "train_step": run_train_step,
    "mirflickr_cell": run_mirflickr_cell,
    "digits_table": run_digits_table,
}


# ------------------------------------------------------------------ driver


def _round(value, digits=2):
    return None if value is None else round(float(value), digits)


def device_description():
    import jax

    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def versions():
    """Versions of the stack a part ran on (torch where installed)."""
    import importlib.metadata

    found = {"python": sys.version.split()[0]}
    for name in ("keras", "jax", "jaxlib", "torch", "numpy", "pillow"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_part(name, tiny, workdir):
    """Runs one part here (in its child process); returns its result."""
    sys.path.insert(0, HERE)
    clock = time.perf_counter()
    result = RUNNERS[name](tiny, workdir)
    result["part_wall_s"] = _round(time.perf_counter() - clock)
    result["device"] = device_description()
    result["versions"] = versions()
    return result


def launch_part(name, args, env, limit):
    """Runs part ``name`` in a child process within ``limit`` seconds."""
    result_file = os.path.join(args.workdir, f"{name}.result.json")
    command = [sys.executable, os.path.abspath(__file__), "--run-part", name]
    command += ["--workdir", args.workdir] + (["--tiny"] if args.tiny else [])
    clock = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            timeout=limit,
            capture_output=True,
            text=True,
        )
    except subprocess.TimeoutExpired as error:
        tail = error.stderr or b""
        if isinstance(tail, bytes):
            tail = tail.decode(errors="replace")
        failure = {"error": f"timed out after {limit:.0f} s"}
        return _with_rows(failure, tail, name, args.workdir)
    wall = time.perf_counter() - clock
    sys.stdout.write(completed.stdout)
    if completed.returncode != 0 or not os.path.exists(result_file):
        failure = {
            "error": f"exit status {completed.returncode}",
            "wall_s": _round(wall),
        }
        return _with_rows(failure, completed.stderr, name, args.workdir)
    with open(result_file, encoding="utf-8") as file:
        return json.load(file)


def _with_rows(failure, stderr, name, workdir):
    """A failed part's record: the end of its stderr, and the rows it
    measured before failing (train_step writes them as it goes)."""
    failure["stderr"] = stderr[-3000:]
    rows = os.path.join(workdir, f"{name}.rows.json")
    if os.path.exists(rows):
        with open(rows, encoding="utf-8") as file:
            failure["rows"] = json.load(file)
    return failure


def write_summary(summary, path):
    if not path:
        return
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=2)
    os.replace(partial, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument(
        "--budget-s", type=float, default=570.0, help="all parts together"
    )
    parser.add_argument("--workdir", help="scratch (default: a temp folder)")
    parser.add_argument("--json", help="summary file (default $OUT/...)")
    parser.add_argument("--wheels", default=os.path.join(ROOT, ".whl"))
    parser.add_argument("--run-part", choices=PARTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.run_part:
        result = run_part(args.run_part, args.tiny, args.workdir)
        path = os.path.join(args.workdir, f"{args.run_part}.result.json")
        with open(path, "w", encoding="utf-8") as file:
            json.dump(result, file)
        return result
    start = time.perf_counter()
    env = part_environment(install_wheels(args.wheels))
    seen = preflight(env, args.tiny)
    json_path = args.json or (
        os.path.join(os.environ["OUT"], "gpu_check.json")
        if os.environ.get("OUT")
        else None
    )
    with tempfile.TemporaryDirectory() as scratch:
        args.workdir = args.workdir or scratch
        summary = {"tiny": args.tiny, "budget_s": args.budget_s}
        summary.update(preflight=seen, parts={})
        for name in args.parts.split(","):
            left = args.budget_s - (time.perf_counter() - start)
            limit = min(PART_LIMITS[name], left)
            if limit < 10:
                summary["parts"][name] = {"error": "no time left in budget"}
            else:
                summary["parts"][name] = launch_part(name, args, env, limit)
            summary["wall_s"] = _round(time.perf_counter() - start)
            write_summary(summary, json_path)
    print(json.dumps(summary, indent=2))
    return summary


def exit_status(summary):
    """1 when a part failed or did not run (its record says why), else 0;
    a part's own run (``--run-part``) ends with 0."""
    parts = summary.get("parts", {})
    return int(any("error" in part for part in parts.values()))


if __name__ == "__main__":
    sys.exit(exit_status(main()))

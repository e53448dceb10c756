"""Reliability: interruption, partial outputs, bad data, untrusted files and
numerical guards never lose work or fail obscurely (issue 8).

Cases (README "Reliability: what is guaranteed"):

* Interruption: ``dhsps train`` killed with SIGKILL and rerun resumes from
  its last checkpoint and ends with the uninterrupted run's weights;
  ``dhsps reproduce`` killed midway does not recompute finished cells.
* No partial outputs: a crash while writing leaves the old file or the new.
* Bad data: fuzzed list files give one ``DataError`` naming file and line.
* Untrusted models: ``.keras`` files with a ``Lambda`` layer or an unknown
  object are refused; ``bvlc_alexnet.npy`` is read without running code.
* Numerical guards: a NaN loss stops training naming the step and the
  batch's label statistics; rows without a label never reach a manifest.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = (
    'data.options={"num_train": 64, "num_validation": 16, '
    '"num_query": 16, "num_database": 48}'
)


def _dhsps(*args):
    """The ``dhsps`` command line as a subprocess argument list."""
    return [sys.executable, "-m", "keras_dhsps", "--verbose", "0", *args]


def _env():
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def _kill_when(command, ready, timeout=120.0):
    """Starts ``command``, SIGKILLs it once ``ready()`` is true.

    Returns the process's exit status (``-SIGKILL`` when it was killed).
    """
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    return process.returncode


def _run(command):
    done = subprocess.run(
        command, cwd=REPO, env=_env(), capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done


def _model_weights(path):
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


# --- Interruption ----------------------------------------------------------

TRAIN_STEPS = 24  # 64 images / 32 = 2 steps per epoch, 12 epochs


def _train_command(output):
    return _dhsps(
        "train", "--dataset", "digits-mosaic", "--set", TINY,
        "--batch-size", "32", "--bits", "12", "--epochs", "12",
        "--set", "train.checkpoint_every=2",
        "--set", "train.deterministic=true",
        "--set", "train.tensorboard=false",
        "--output", output,
    )


def _checkpoint_step(run_dir):
    path = os.path.join(run_dir, "checkpoints", "checkpoint.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)["step"]
    except (OSError, ValueError):
        return None


def test_train_killed_with_sigkill_resumes_to_the_same_weights(tmp_path):
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    _run(_train_command(reference))
    _kill_when(
        _train_command(killed), lambda: _checkpoint_step(killed) is not None
    )
    step = _checkpoint_step(killed)
    # Killed mid-run: a checkpoint, but no final model yet.
    assert step is not None and 0 < step < TRAIN_STEPS
    assert not os.path.exists(os.path.join(killed, "model.keras"))
    _run(_train_command(killed))  # the same command resumes
    assert _checkpoint_step(killed) == TRAIN_STEPS
    for a, b in zip(
        _model_weights(os.path.join(reference, "model.keras")),
        _model_weights(os.path.join(killed, "model.keras")),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def _reproduce_command(output):
    return _dhsps(
        "reproduce", "reproduce/configs/digits_mosaic.py:smoke",
        "--set", "train.deterministic=true", "--output", output,
    )


def _cell_files(output):
    cells = os.path.join(output, "cells")
    if not os.path.isdir(cells):
        return {}
    return {
        name: os.stat(os.path.join(cells, name)).st_mtime_ns
        for name in os.listdir(cells)
        if name.endswith(".json") and not name.startswith(".")
    }


def test_reproduce_killed_midway_keeps_finished_cells(tmp_path):
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    _run(_reproduce_command(reference))
    _kill_when(_reproduce_command(killed), lambda: _cell_files(killed))
    finished = _cell_files(killed)
    contents = {
        name: open(os.path.join(killed, "cells", name), "rb").read()
        for name in finished
    }
    assert 0 < len(finished) < len(_cell_files(reference))
    assert not os.path.exists(os.path.join(killed, "results.json"))
    _run(_reproduce_command(killed))
    after = _cell_files(killed)
    # Finished cells were read back, not recomputed: same file, same time.
    for name, mtime in finished.items():
        assert after[name] == mtime
        with open(os.path.join(killed, "cells", name), "rb") as handle:
            assert handle.read() == contents[name]
    assert set(after) == set(_cell_files(reference))
    with open(os.path.join(reference, "results.json"), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(killed, "results.json"), encoding="utf-8") as f:
        resumed = json.load(f)
    def metrics(rows):  # train_seconds differ between runs
        return [(row["method"], row["bits"], row["metrics"]) for row in rows]

    assert metrics(resumed["rows"]) == metrics(expected["rows"])
    for key, cell in expected["cells"].items():
        assert resumed["cells"][key]["metrics"] == cell["metrics"]


# --- Numerical guards ------------------------------------------------------


class _NaNLoss(keras.losses.Loss):
    """A test-only loss that is NaN on every batch."""

    def call(self, y_true, y_pred):
        return keras.ops.mean(y_pred, axis=-1) * float("nan")


@pytest.fixture(scope="module")
def mosaic():
    from keras_dhsps.data import load_dataset

    return load_dataset(
        "digits-mosaic",
        num_train=64,
        num_validation=16,
        num_query=16,
        num_database=32,
    )


def _experiment(loss="idhn", **train):
    from keras_dhsps.config import DataConfig
    from keras_dhsps.config import ExperimentConfig
    from keras_dhsps.config import LossConfig
    from keras_dhsps.config import ModelConfig
    from keras_dhsps.config import TrainConfig

    base = dict(
        epochs=1, batch_size=16, validation_every=0, seed=3, tensorboard=False
    )
    base.update(train)
    return ExperimentConfig(
        data=DataConfig(),
        model=ModelConfig(bits=8),
        loss=LossConfig(name=loss),
        train=TrainConfig(**base),
    )


def test_nan_loss_stops_with_the_step_and_the_batch_labels(
    mosaic, tmp_path, monkeypatch
):
    from keras_dhsps import losses
    from keras_dhsps.callbacks import NonFiniteLossError
    from keras_dhsps.callbacks import label_statistics
    from keras_dhsps.data.pipeline import make_dataset
    from keras_dhsps.errors import DHSPSError
    from keras_dhsps.train import fit

    run_dir = str(tmp_path / "run")
    # 64 images / 16 = 4 steps per epoch; one clean epoch -> checkpoint 4.
    fit(_experiment(checkpoint_every=2), dataset=mosaic, verbose=0,
        run_dir=run_dir)
    assert _checkpoint_step(run_dir) == 4
    monkeypatch.setitem(losses.LOSSES, "nan_for_test", _NaNLoss)
    with pytest.raises(NonFiniteLossError) as raised:
        fit(_experiment("nan_for_test", epochs=2, checkpoint_every=2),
            dataset=mosaic, verbose=0, run_dir=run_dir)
    assert isinstance(raised.value, DHSPSError)  # the CLI prints one line
    message = str(raised.value)
    # The resumed run's first step (step 5, batch 4 of the stream) is NaN.
    assert "loss is nan at training step 5 (global batch 4" in message
    batch = make_dataset(
        mosaic.splits["train"], batch_size=16, image_size=(32, 32),
        training=True, seed=3,
    ).repeat().skip(4)
    labels = next(iter(batch))[1].numpy()
    assert label_statistics(labels) in message
    assert "batch of 16 images" in message and "labels per image" in message
    # No state with NaN weights replaced the last good checkpoint.
    assert _checkpoint_step(run_dir) == 4


def test_label_statistics_counts_images_without_labels():
    from keras_dhsps.callbacks import label_statistics

    labels = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    assert label_statistics(labels) == (
        "batch of 4 images, 2 with no label, labels per image min 0 "
        "mean 1.25 max 3"
    )

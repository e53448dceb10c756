"""Reliability: interruption, partial outputs, bad data, untrusted files and
numerical guards never lose work or fail obscurely (issue 8).

Cases (docs/reliability.md):

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
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.paths import REPO
from tests.training_helpers import NaNLoss

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
        "train",
        "--dataset",
        "digits-mosaic",
        "--set",
        TINY,
        "--batch-size",
        "32",
        "--bits",
        "12",
        "--epochs",
        "12",
        "--set",
        "train.checkpoint_every=2",
        "--set",
        "train.deterministic=true",
        "--set",
        "train.tensorboard=false",
        "--output",
        output,
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
        "reproduce",
        "reproduce/configs/digits_mosaic.py:smoke",
        "--set",
        "train.deterministic=true",
        "--output",
        output,
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
    from keras_dhsps.data.tfdata_reader import make_dataset
    from keras_dhsps.training.callbacks import NonFiniteLossError
    from keras_dhsps.training.callbacks import label_statistics
    from keras_dhsps.training.fit import fit
    from keras_dhsps.utils.errors import DHSPSError

    run_dir = str(tmp_path / "run")
    # 64 images / 16 = 4 steps per epoch; one clean epoch -> checkpoint 4.
    fit(
        _experiment(checkpoint_every=2),
        dataset=mosaic,
        verbose=0,
        run_dir=run_dir,
    )
    assert _checkpoint_step(run_dir) == 4
    monkeypatch.setitem(losses.LOSSES, "nan_for_test", NaNLoss)
    # A run directory belongs to one config, so the NaN run continues from
    # a copy of the clean run's checkpoint in a directory of its own.
    nan_dir = tmp_path / "nan_run"
    nan_dir.mkdir()
    shutil.copytree(f"{run_dir}/checkpoints", nan_dir / "checkpoints")
    with pytest.raises(NonFiniteLossError) as raised:
        fit(
            _experiment("nan_for_test", epochs=2, checkpoint_every=2),
            dataset=mosaic,
            verbose=0,
            run_dir=str(nan_dir),
        )
    assert isinstance(raised.value, DHSPSError)  # the CLI prints one line
    message = str(raised.value)
    # The resumed run's first step (step 5, batch 4 of the stream) is NaN.
    assert "loss is nan at training step 5 (global batch 4" in message
    batch = (
        make_dataset(
            mosaic.splits["train"],
            batch_size=16,
            image_size=(32, 32),
            training=True,
            seed=3,
        )
        .repeat()
        .skip(4)
    )
    labels = next(iter(batch))[1].numpy()
    assert label_statistics(labels) in message
    assert "batch of 16 images" in message and "labels per image" in message
    # No state with NaN weights replaced the last good checkpoint.
    assert _checkpoint_step(str(nan_dir)) == 4


def test_label_statistics_counts_images_without_labels():
    from keras_dhsps.training.callbacks import label_statistics

    labels = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    assert label_statistics(labels) == (
        "batch of 4 images, 2 with no label, labels per image min 0 "
        "mean 1.25 max 3"
    )


# --- Bad data --------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CORRUPTIONS = (
    "too_few_fields",
    "too_many_fields",
    "non_numeric_label",
    "label_not_binary",
    "duplicate_path",
    "parent_escape",
    "absolute_path",
    "not_utf8",
)


def _corrupt(kind, lines, index, num_classes, draw_text):
    """Line ``index`` of ``lines`` (bytes) made bad in the way ``kind`` says."""
    path, *labels = lines[index].decode().split()
    if kind == "too_few_fields":
        fields = [path, *labels[: num_classes - 1]]
    elif kind == "too_many_fields":
        fields = [path, *labels, "0"]
    elif kind == "non_numeric_label":
        labels[0] = draw_text
        fields = [path, *labels]
    elif kind == "label_not_binary":
        labels[-1] = "2"
        fields = [path, *labels]
    elif kind == "duplicate_path":
        fields = [lines[0].decode().split()[0], *labels]
    elif kind == "parent_escape":
        fields = ["../" + path, *labels]
    elif kind == "absolute_path":
        fields = ["/etc/passwd", *labels]
    else:  # not_utf8
        return path.encode() + b"\xff\xfe " + " ".join(labels).encode() + b"\n"
    return (" ".join(fields) + "\n").encode()


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(1, 5),
    rows=st.integers(2, 8),
    data=st.data(),
)
def test_fuzzed_list_files_fail_with_one_line_naming_file_and_line(
    num_classes, rows, data
):
    import tempfile

    from keras_dhsps.data.listfile import read_list_file
    from keras_dhsps.utils.errors import DataError

    kind = data.draw(st.sampled_from(CORRUPTIONS), label="kind")
    if kind == "too_few_fields" and num_classes == 1:
        kind = "too_many_fields"  # one field is caught as "path only"
    index = data.draw(st.integers(1, rows - 1), label="bad line (0-based)")
    token = data.draw(
        st.text(
            st.characters(codec="utf-8", exclude_categories=["Z", "C"]),
            min_size=1,
            max_size=6,
        ).filter(lambda text: text not in ("0", "1")),
        label="non-numeric label",
    )
    with tempfile.TemporaryDirectory() as root:
        lines = []
        for row in range(rows):
            name = f"img_{row}.png"
            open(os.path.join(root, name), "wb").close()
            bits = data.draw(
                st.lists(
                    st.sampled_from("01"),
                    min_size=num_classes,
                    max_size=num_classes,
                )
            )
            lines.append((name + " " + " ".join(bits) + "\n").encode())
        lines[index] = _corrupt(kind, lines, index, num_classes, token)
        path = os.path.join(root, "train.txt")
        with open(path, "wb") as handle:
            handle.write(b"".join(lines))
        with pytest.raises(DataError) as raised:
            read_list_file(path, root=root)
    message = str(raised.value)
    assert message.startswith(f"{path}:{index + 1}: "), (kind, message)
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n"])
def test_empty_list_file_names_the_file(tmp_path, text):
    from keras_dhsps.data.listfile import read_list_file
    from keras_dhsps.utils.errors import DataError

    path = tmp_path / "train.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=f"^{path}: list file has no entries"):
        read_list_file(str(path), root=str(tmp_path))


def test_lists_reader_drops_unlabelled_rows_unless_kept(tmp_path):
    from keras_dhsps.data import load_dataset

    for index in range(6):
        (tmp_path / f"{index}.png").touch()
    rows = ["0.png 1 0", "1.png 0 0", "2.png 0 1", "3.png 1 1"]
    (tmp_path / "train.txt").write_text("\n".join(rows) + "\n")
    (tmp_path / "test.txt").write_text("4.png 0 0\n5.png 1 0\n")
    (tmp_path / "database.txt").write_text("\n".join(rows) + "\n")
    dataset = load_dataset("lists", root=str(tmp_path), validation_fraction=0)
    for split in dataset.splits.values():
        assert (split.labels.sum(axis=1) > 0).all()
    assert dataset.info["unlabelled"] == {"train": 1, "query": 1, "database": 1}
    assert dataset.info["dropped"] == {"unlabelled": 3}
    kept = load_dataset(
        "lists",
        root=str(tmp_path),
        validation_fraction=0,
        drop_unlabelled=False,
    )
    assert len(kept.split("query")) == 2
    assert kept.info["dropped"] == {"unlabelled": 0}


def test_a_manifest_never_holds_an_unlabelled_image(tmp_path):
    from keras_dhsps.data.collection import Collection
    from keras_dhsps.data.manifest import write_manifest
    from keras_dhsps.data.splits import Protocol
    from keras_dhsps.utils.errors import DataError

    labels = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], np.uint8)
    collection = Collection(
        name="toy",
        root=str(tmp_path),
        class_names=("a", "b"),
        paths=[f"{i}.png" for i in range(4)],
        labels=labels,
        sources=[""] * 4,
    )
    splits = {
        "train": np.array([0, 1]),
        "validation": np.array([], np.int64),
        "query": np.array([2]),
        "database": np.array([3]),
    }
    target = str(tmp_path / "manifest")
    with pytest.raises(DataError, match="1 train images have no label"):
        write_manifest(
            target,
            collection=collection,
            splits=splits,
            protocol=Protocol(1, 1),
            seed=0,
            options={},
        )
    assert not os.path.exists(target)
    # Dropped and counted, it is written, and the count is in the record.
    labelled = collection.drop_unlabelled()
    splits = {
        "train": np.array([0]),
        "validation": np.array([], np.int64),
        "query": np.array([1]),
        "database": np.array([2]),
    }
    record = write_manifest(
        target,
        collection=labelled,
        splits=splits,
        protocol=Protocol(1, 1),
        seed=0,
        options={},
    )
    assert record["dropped"] == {"unlabelled": 1}


# --- Untrusted files -------------------------------------------------------


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_bvlc_npy_with_code_is_refused_not_run(tmp_path):
    from keras_dhsps.models.alexnet import read_bvlc_alexnet
    from keras_dhsps.utils.errors import DHSPSError

    marker = tmp_path / "pwned"
    path = str(tmp_path / "bvlc_alexnet.npy")
    np.save(path, np.array({"fc8": _Evil(marker)}, dtype=object))
    with pytest.raises(DHSPSError, match="refused to load global"):
        read_bvlc_alexnet(path)
    assert not marker.exists()
    # A plain dict of arrays (the real file's shape) still loads.
    weights = np.ones((2, 3), np.float32)
    np.save(path, np.array({b"fc8": [weights, np.zeros(3)]}, dtype=object))
    layers = read_bvlc_alexnet(path)
    np.testing.assert_array_equal(layers["fc8"][0], weights)


def _tiny_model(extra=None):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    if extra is not None:
        hidden = extra(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


@keras.saving.register_keras_serializable(package="reliability_test")
class _Unregistered(keras.layers.Layer):
    def call(self, inputs):
        return inputs


def test_keras_file_with_lambda_or_unknown_object_is_refused(tmp_path):
    from keras_dhsps.serving.load import load_hasher
    from keras_dhsps.utils.errors import DHSPSError

    lambda_path = str(tmp_path / "lambda.keras")
    _tiny_model(keras.layers.Lambda(lambda x: x * 2.0)).save(lambda_path)
    unknown_path = str(tmp_path / "unknown.keras")
    _tiny_model(_Unregistered()).save(unknown_path)
    # Forget the custom class, as a fresh process would.
    keras.saving.get_custom_objects().pop("reliability_test>_Unregistered")
    with pytest.raises(DHSPSError, match="Lambda|safe_mode|arbitrary"):
        load_hasher(lambda_path)
    with pytest.raises(DHSPSError, match="_Unregistered"):
        load_hasher(unknown_path)


# --- No partial outputs ----------------------------------------------------


def test_a_crash_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from keras_dhsps.utils.files import atomic_write
    from keras_dhsps.utils.files import read_json
    from keras_dhsps.utils.files import write_json

    path = str(tmp_path / "results.json")
    write_json(path, {"old": 1})

    def crash(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write('{"half": ')
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert read_json(path) == {"old": 1}
    assert os.listdir(tmp_path) == ["results.json"]
    write_json(path, {"new": 2})
    assert read_json(path) == {"new": 2}

"""Tests for train.fit: resume, freezing, precision, run_dir outputs."""

import dataclasses
import importlib.util
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dhsps.data.base import Split
from keras_dhsps.training.fit import _segments
from keras_dhsps.training.fit import fit
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from tests.training_helpers import InterruptAt
from tests.training_helpers import small_config
from tests.training_helpers import weights_of


@pytest.fixture
def dataset(tiny_dataset):
    return tiny_dataset


def make_config(**train):
    return small_config(
        bits=8, **{**dict(batch_size=16, validation_every=0), **train}
    )


class EpochLabels(keras.callbacks.Callback):
    """Records ``(epoch index, epochs)`` as the progress bar shows them."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, self.params["epochs"]))


def test_segments_cover_every_step_once():
    # 3 epochs of 4 steps, resumed at step 5 (epoch 1, batch 1).
    assert _segments(5, 3, 4, 0) == [(1, 2, 3, False), (2, 3, 4, False)]
    # A 2-epoch frozen warm-up, resumed mid-warm-up.
    assert _segments(2, 3, 4, 2) == [
        (0, 1, 2, True),
        (1, 2, 4, True),
        (2, 3, 4, False),
    ]
    assert _segments(12, 3, 4, 0) == []


def test_resume_after_interruption_matches_uninterrupted(
    dataset, tmp_path, deterministic_ops
):
    # 64 images / 16 = 4 steps per epoch, 3 epochs = 12 steps; checkpoint
    # every 2 steps; crash after step 7 -> resume from step 6, mid-epoch.
    config = make_config(epochs=3, checkpoint_every=2)
    reference = fit(
        config, dataset=dataset, verbose=0, run_dir=str(tmp_path / "a")
    )
    run_dir = str(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        fit(
            config,
            dataset=dataset,
            verbose=0,
            run_dir=run_dir,
            callbacks=[InterruptAt(7)],
        )
    labels = EpochLabels()
    resumed = fit(
        config, dataset=dataset, verbose=0, run_dir=run_dir, callbacks=[labels]
    )
    assert resumed.initial_step == 6
    # The rest of epoch 2 (index 1) is "Epoch 2/3", then "Epoch 3/3".
    assert labels.seen == [(1, 3), (2, 3)]
    for a, b in zip(
        weights_of(reference.model), weights_of(resumed.model), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.model.optimizer.iterations) == 12
    # Control: the state saved at step 6 is not the final state.
    fresh = fit(make_config(epochs=0), dataset=dataset, verbose=0)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            weights_of(reference.model), weights_of(fresh.model), strict=True
        )
    )
    # The history of the interrupted run is that of the uninterrupted one:
    # 3 epochs, epoch 1 (interrupted at its 3rd step, resumed at its 2nd)
    # averaged over its 4 steps, bit for bit.
    assert len(reference.history["loss"]) == 3
    assert resumed.history == reference.history
    with open(os.path.join(run_dir, "history.json"), encoding="utf-8") as f:
        assert json.load(f) == reference.history
    # A finished run resumes to the end without training and returns the
    # whole history.
    again = fit(config, dataset=dataset, verbose=0, run_dir=run_dir)
    assert again.initial_step == 12 and again.history == reference.history


def test_a_damaged_checkpoint_is_one_line_before_keras_opens_it(
    dataset, tmp_path
):
    # HDF5 can loop forever on a damaged file: the checkpoint's bytes are
    # checked against the checksum saved with them before Keras reads them.
    config = make_config(epochs=2, checkpoint_every=2)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(
            config,
            dataset=dataset,
            verbose=0,
            run_dir=str(run_dir),
            callbacks=[InterruptAt(3)],
        )
    (weights,) = (run_dir / "checkpoints").glob("step-*.weights.h5")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(data)
    with pytest.raises(DHSPSError, match="changed since it was saved") as e:
        fit(config, dataset=dataset, verbose=0, run_dir=str(run_dir))
    assert "\n" not in str(e.value) and str(weights.name) in str(e.value)


def test_frozen_backbone_warm_up(dataset):
    config = make_config(epochs=1, freeze_backbone_epochs=1)
    init = fit(make_config(epochs=0), dataset=dataset, verbose=0).model
    result = fit(config, dataset=dataset, verbose=0)
    model = result.model
    backbone = model.get_layer("backbone")
    initial = weights_of(init.get_layer("backbone"))
    for a, b in zip(initial, weights_of(backbone), strict=True):
        np.testing.assert_array_equal(a, b)  # incl. BN moving statistics
    hash_before = init.get_layer("hash_layer").get_weights()[0]
    hash_after = model.get_layer("hash_layer").get_weights()[0]
    assert not np.allclose(hash_before, hash_after)
    # The backbone's Adam moments stayed zero; the hash layer's did not.
    optimizer = model.optimizer
    kernel = backbone.get_layer("conv1").kernel
    moment = optimizer._momentums[optimizer._get_variable_index(kernel)]
    assert not np.any(keras.ops.convert_to_numpy(moment))
    assert backbone.trainable  # restored for the caller
    # After the warm-up the backbone trains.
    result = fit(
        dataclasses.replace(
            config, train=dataclasses.replace(config.train, epochs=2)
        ),
        dataset=dataset,
        verbose=0,
    )
    assert not np.array_equal(
        init.get_layer("backbone").get_layer("conv1").get_weights()[0],
        result.model.get_layer("backbone").get_layer("conv1").get_weights()[0],
    )


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(dataset, precision):
    result = fit(
        make_config(epochs=1, precision=precision), dataset=dataset, verbose=0
    )
    model = result.model
    compute = precision.split("_")[1]
    assert model.get_layer("hash_layer").compute_dtype == compute
    assert all(
        keras.backend.standardize_dtype(v.dtype) == "float32"
        for v in model.trainable_weights
    )
    assert np.isfinite(result.history["loss"][0])
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # not leaked


def test_bad_switches_raise(dataset):
    with pytest.raises(DHSPSError, match="precision"):
        fit(make_config(precision="float8"), dataset=dataset, verbose=0)
    with pytest.raises(DHSPSError, match="schedule"):
        fit(make_config(schedule="linear"), dataset=dataset, verbose=0)


def test_run_dir_logs_and_best_model_on_carved_validation(dataset, tmp_path):
    no_validation = dataclasses.replace(
        dataset,
        splits={k: v for k, v in dataset.splits.items() if k != "validation"},
    )
    config = make_config(
        epochs=2,
        validation_every=1,
        validation_fraction=0.25,
        jit_compile=False,
    )
    result = fit(
        config, dataset=no_validation, verbose=0, run_dir=str(tmp_path)
    )
    assert len(result.history["val_map"]) == 2
    assert result.model.jit_compile is False  # the switch reached compile
    assert all(0.0 <= v <= 1.0 for v in result.history["val_map"])
    # 64 images - 16 carved = 48 = 3 steps per epoch.
    assert int(result.model.optimizer.iterations) == 6
    assert os.path.isfile(tmp_path / "best.keras")
    logs = [f for _, _, files in os.walk(tmp_path / "logs") for f in files]
    if importlib.util.find_spec("tensorboard") is not None:
        assert any(name.startswith("events.out.tfevents") for name in logs)
    else:
        assert not logs


def test_backbone_weights_from_config(dataset, tmp_path):
    from keras_dhsps.models.backbones import build_small_cnn

    keras.utils.set_random_seed(99)
    source = build_small_cnn()
    path = str(tmp_path / "small_cnn.weights.h5")
    source.save_weights(path)
    config = make_config(epochs=0)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, backbone_weights=path)
    )
    model = fit(config, dataset=dataset, verbose=0).model
    loaded = weights_of(model.get_layer("backbone"))
    for a, b in zip(weights_of(source), loaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_directory_validates_by_default_without_changing_training(
    dataset, tmp_path, deterministic_ops
):
    # validation_every=None (the default) with a run directory and a
    # dataset that has its own validation split (16 images): val_map after
    # each of the 2 epochs (ceil(2 / 10) = 1) and best.keras; the 64
    # training images stay, so the weights are those of a run without a
    # run directory.
    config = make_config(epochs=2, validation_every=None)
    plain = fit(config, dataset=dataset, verbose=0)
    assert "val_map" not in plain.history
    kept = fit(config, dataset=dataset, verbose=0, run_dir=str(tmp_path))
    assert len(kept.history["val_map"]) == 2
    assert kept.history["loss"] == plain.history["loss"]
    for a, b in zip(
        weights_of(plain.model), weights_of(kept.model), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert os.path.isfile(tmp_path / "best.keras")
    # Without a validation split nothing is carved by default.
    no_validation = dataclasses.replace(
        dataset,
        splits={k: v for k, v in dataset.splits.items() if k != "validation"},
    )
    other = fit(
        config, dataset=no_validation, verbose=0, run_dir=str(tmp_path / "n")
    )
    assert "val_map" not in other.history
    assert not os.path.exists(tmp_path / "n" / "best.keras")
    # 0 turns validation off even with a run directory.
    off = fit(
        make_config(epochs=2, validation_every=0),
        dataset=dataset,
        verbose=0,
        run_dir=str(tmp_path / "off"),
    )
    assert "val_map" not in off.history


def test_input_config_reaches_training_and_evaluation(dataset):
    from keras_dhsps.config import InputConfig
    from keras_dhsps.retrieval.evaluation import encode

    base = make_config(epochs=1)
    plain = fit(base, dataset=dataset, verbose=0)
    flipped = fit(
        dataclasses.replace(base, input=InputConfig(random_flip=True)),
        dataset=dataset,
        verbose=0,
    )
    # Flipping half the images changes what is learned from the same
    # batches.
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            weights_of(plain.model), weights_of(flipped.model), strict=True
        )
    )
    # resize_crop: 32x32 images stay 32x32 (resize_to); the model takes
    # them and crops 24x24 itself: a random window in training, the centre
    # (offset (32 - 24) // 2 = 4) in evaluation.
    cropping = InputConfig(
        resize="resize_crop", resize_to=(32, 32), random_crop=True
    )
    config = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, image_size=(24, 24)),
        input=cropping,
    )
    model = fit(config, dataset=dataset, verbose=0).model
    assert model.input_shape == (None, 32, 32, 3)
    queries = dataset.split("query")
    features = model.get_layer("backbone")(
        queries.images[:, 4:28, 4:28].astype("float32")
    )
    expected = keras.ops.convert_to_numpy(
        model.get_layer("hash_layer")(features)
    )
    codes = encode(model, queries, input_config=cropping)
    np.testing.assert_allclose(codes, expected, atol=1e-6)


def test_input_config_errors_name_the_key(dataset):
    from keras_dhsps.config import InputConfig

    base = make_config(epochs=1)
    # Unknown modes and crop without a cropping mode are refused when the
    # config is built (tests/config/test_config_validation.py); a stored size
    # smaller than the model's input is refused by fit, before any step,
    # whatever the reader.
    small = InputConfig(resize="resize_crop", resize_to=(16, 16))
    for reader in ("tf.data", "numpy"):
        with pytest.raises(
            DHSPSError, match=r"resize_to=\[16, 16\] is smaller"
        ):
            fit(
                dataclasses.replace(base, input=small),
                dataset=dataset,
                verbose=0,
                reader=reader,
            )


def _files_dataset(dataset, directory):
    """``dataset`` with its train and query images as PNG files (lossless:
    the decoded pixels are the in-memory ones)."""
    from PIL import Image

    from keras_dhsps.data.base import RetrievalDataset

    splits = {}
    for name in ("train", "query"):
        split = dataset.split(name)
        paths = []
        for index, image in enumerate(split.images):
            paths.append(os.path.join(directory, f"{name}{index}.png"))
            Image.fromarray(image).save(paths[-1])
        splits[name] = Split(labels=split.labels, paths=tuple(paths))
    return RetrievalDataset(
        name="files", class_names=dataset.class_names, splits=splits
    )


@pytest.mark.parametrize("reader", ["tf.data", "numpy"])
def test_a_table_decodes_each_image_once(dataset, tmp_path, decodes, reader):
    # Two fits (two cells of a table) and an encode of the same split in
    # one process: the memory store decodes each training image once.
    from keras_dhsps.data import store
    from keras_dhsps.retrieval.evaluation import encode

    files = _files_dataset(dataset, str(tmp_path))
    store.clear_memory_cache()
    config = make_config(epochs=1)
    fit(config, dataset=files, verbose=0, reader=reader)
    second = fit(config, dataset=files, verbose=0, reader=reader)
    train = files.split("train")
    codes = encode(
        second.model, train, reader=reader, input_config=config.input
    )
    assert decodes == [len(train)]  # 64 images, decoded once
    # The stored pixels are the in-memory ones: the same codes.
    expected = encode(second.model, dataset.split("train"), reader=reader)
    np.testing.assert_array_equal(codes, expected)
    # store="none" decodes on each read (numpy) or in the pipeline (tf.data).
    none = dataclasses.replace(config.input, store="none")
    store.clear_memory_cache()
    again = encode(second.model, train, reader=reader, input_config=none)
    np.testing.assert_array_equal(again, expected)
    for path in train.paths:
        os.remove(path)  # the memory store was forgotten: nothing to read
    with pytest.raises((DataError, tf.errors.NotFoundError)):
        encode(second.model, train, reader=reader, input_config=none)

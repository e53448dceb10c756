"""The training and evaluation path on every Keras backend.

Every test here is marked ``backend_neutral``: ``make test`` runs them under
the default TensorFlow backend and again under ``KERAS_BACKEND=jax`` and
``KERAS_BACKEND=torch``. They
use the NumPy reader (``keras_dhsps.data.numpy_reader``), the one a machine without
TensorFlow gets, and import nothing from TensorFlow themselves.
"""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_dhsps import losses
from keras_dhsps.config import EvalConfig
from keras_dhsps.config import InputConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.data import load_dataset
from keras_dhsps.data import numpy_reader as feed
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.retrieval.evaluation import encode
from keras_dhsps.retrieval.evaluation import evaluate_retrieval
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.training.callbacks import NonFiniteLossError
from keras_dhsps.training.fit import fit
from tests.training_helpers import InterruptAt
from tests.training_helpers import NaNLoss
from tests.training_helpers import backend_without_tensorflow
from tests.training_helpers import run_without_tensorflow
from tests.training_helpers import small_config
from tests.training_helpers import weights_of

pytestmark = pytest.mark.backend_neutral


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(
        "digits-mosaic",
        num_train=256,
        num_validation=32,
        num_query=64,
        num_database=256,
    )


def make_config(**train):
    return small_config(bits=16, **{**dict(batch_size=32), **train})


def test_hasher_builds_and_reloads_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_hasher("small_cnn", 12)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3))
    codes = keras.ops.convert_to_numpy(model(images.astype("float32")))
    assert codes.shape == (3, 12)
    assert np.all(np.abs(codes) < 1.0)  # tanh
    path = str(tmp_path / "hasher.keras")
    model.save(path)
    again = keras.ops.convert_to_numpy(
        load_hasher(path).model(images.astype("float32"))
    )
    np.testing.assert_array_equal(codes, again)


def test_idhn_loss_matches_the_pairwise_oracle():
    # The float64 pair-by-pair oracle of tests/losses/test_losses.py; the same
    # value (to 1e-5) on every backend.
    from tests.losses.test_losses import oracle_idhn
    from tests.losses.test_losses import random_batch

    labels, codes = random_batch(np.random.default_rng(7), bits=24)
    value = float(keras.ops.convert_to_numpy(losses.IDHNLoss()(labels, codes)))
    assert value == pytest.approx(oracle_idhn(labels, codes), abs=1e-5)


def test_feed_batches_are_a_pure_function_of_seed_and_step(dataset):
    train = dataset.split("train")  # 256 images / 32 = 8 steps per epoch
    first = [
        feed.batch_indices(len(train), 32, seed=5, step=s) for s in range(16)
    ]
    # Each epoch is a permutation: 8 disjoint batches covering every image.
    for epoch in (first[:8], first[8:]):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(256))
    assert not np.array_equal(first[0], first[8])  # reshuffled per epoch
    stream = feed.training_batches(
        train, batch_size=32, image_size=(32, 32), seed=5, start=11
    )
    images, labels = next(stream)
    np.testing.assert_array_equal(images, train.images[first[11]])
    np.testing.assert_array_equal(labels, train.labels[first[11]])
    assert images.dtype == np.uint8  # cast on the device, in the model


def test_a_few_fit_steps_then_evaluate(dataset):
    # 2 epochs x 8 steps of batch 32: the loss falls (0.53 -> 0.45 under
    # both backends when measured); a retrieval score this early is chance
    # (see the slow test below for one that learns).
    config = make_config(epochs=2)
    result = fit(config, dataset=dataset, verbose=0, reader="numpy")
    assert len(result.history["loss"]) == 2
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert int(result.model.optimizer.iterations) == 16
    report = evaluate_retrieval(
        result.model, dataset, EvalConfig(), curves=False
    )
    assert report["counts"] == {"query": 64, "database": 256}
    assert 0.0 < report["metrics"]["map@all"] <= 1.0
    # The NumPy reader and the default one give the same codes.
    queries = dataset.split("query")
    np.testing.assert_array_equal(
        encode(result.model, queries, reader="numpy"),
        encode(result.model, queries),
    )


def test_resume_after_interruption_matches_uninterrupted(
    dataset, tmp_path, deterministic_ops
):
    # 8 steps per epoch, 2 epochs = 16 steps; checkpoint every 3 steps;
    # crash after step 11 -> resume from step 9 (epoch 1, batch 1). Random
    # 28x28 crops of the 32x32 images and flips run in the model, seeded:
    # the resumed run draws the windows of the uninterrupted one.
    config = dataclasses.replace(
        make_config(epochs=2, checkpoint_every=3),
        model=ModelConfig(bits=16, image_size=(28, 28)),
        input=InputConfig(
            resize="resize_crop",
            resize_to=(32, 32),
            random_crop=True,
            random_flip=True,
        ),
    )
    reference = fit(
        config,
        dataset=dataset,
        verbose=0,
        run_dir=str(tmp_path / "a"),
        reader="numpy",
    )
    run_dir = str(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        fit(
            config,
            dataset=dataset,
            verbose=0,
            run_dir=run_dir,
            callbacks=[InterruptAt(11)],
            reader="numpy",
        )
    resumed = fit(
        config, dataset=dataset, verbose=0, run_dir=run_dir, reader="numpy"
    )
    assert resumed.initial_step == 9
    for a, b in zip(
        weights_of(reference.model), weights_of(resumed.model), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.model.optimizer.iterations) == 16
    # Epoch 1 was interrupted at its 3rd step and resumed at its 2nd: its
    # loss is still the mean over its 8 steps, as in the reference.
    assert resumed.history == reference.history
    assert len(resumed.history["loss"]) == 2
    assert reference.model.get_layer("crop").random


def test_train_imports_and_runs_without_tensorflow(tmp_path):
    # A machine with JAX (or PyTorch) and no TensorFlow: import the
    # training path, fit
    # one epoch of 2 steps with a checkpoint, encode.
    script = (
        "import _block_tensorflow, sys\n"
        "import keras_dhsps.training.fit, keras_dhsps.training.callbacks\n"
        "import keras_dhsps.retrieval.evaluation, keras_dhsps.models.hasher\n"
        "from keras_dhsps.config import *\n"
        "from keras_dhsps.data import load_dataset\n"
        "from keras_dhsps.retrieval.evaluation import encode\n"
        "data = load_dataset('digits-mosaic', num_train=32, "
        "num_validation=8, num_query=8, num_database=16)\n"
        "config = ExperimentConfig(model=ModelConfig(bits=8), "
        "train=TrainConfig(epochs=1, batch_size=16, deterministic=True))\n"
        f"result = keras_dhsps.training.fit.fit(config, dataset=data, verbose=0, "
        f"run_dir={str(tmp_path)!r})\n"
        "codes = encode(result.model, data.split('query'))\n"
        "assert 'tensorflow' not in sys.modules\n"
        "from keras_dhsps.utils.errors import DHSPSError\n"
        "try:\n"
        "    import keras_dhsps.serving.export\n"
        "except DHSPSError as error:\n"
        "    assert 'need TensorFlow' in str(error), error\n"
        "else:\n"
        "    raise AssertionError('export imported without TensorFlow')\n"
        "import json\n"
        "print(json.dumps([keras_dhsps.training.fit.keras.backend.backend(), "
        "int(result.model.optimizer.iterations), list(codes.shape)]))\n"
    )
    done = run_without_tensorflow(script)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert json.loads(last) == [backend_without_tensorflow(), 2, [8, 8]]
    assert os.path.isfile(tmp_path / "checkpoints" / "checkpoint.json")


def test_the_numpy_reader_refuses_an_unknown_name(dataset):
    from keras_dhsps.utils.errors import DHSPSError

    with pytest.raises(DHSPSError, match="unknown reader 'arrow'"):
        fit(
            dataclasses.replace(make_config(epochs=1)),
            dataset=dataset,
            verbose=0,
            reader="arrow",
        )


def test_crop_and_flip_run_in_the_model_in_training_only(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_hasher(
        "small_cnn",
        8,
        image_size=(24, 24),
        input_size=(32, 32),
        random_crop=True,
        random_flip=True,
        seed=1,
    )
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3))
    images = images.astype("float32")
    crop, flip = model.get_layer("crop"), model.get_layer("random_flip")
    # Inference: the centre window ((32 - 24) // 2 = 4), no flip.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(crop(images)), images[:, 4:28, 4:28]
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(flip(images)), images
    )
    # Training: each output is a 24x24 window of its own image, and each
    # flipped image is its mirror.
    windows = keras.ops.convert_to_numpy(crop(images, training=True))
    for out, image in zip(windows, images, strict=True):
        assert any(
            np.array_equal(out, image[top : top + 24, left : left + 24])
            for top in range(9)
            for left in range(9)
        )
    flipped = keras.ops.convert_to_numpy(flip(images, training=True))
    for out, image in zip(flipped, images, strict=True):
        assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])
    # The hasher reloads in safe mode with the same inference codes.
    path = str(tmp_path / "augmented.keras")
    model.save(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(load_hasher(path).model(images)),
        keras.ops.convert_to_numpy(model(images)),
    )


def test_the_numpy_reader_reads_batches_from_the_image_store(
    dataset, monkeypatch
):
    # Training reads the image store (keras_dhsps.data.store), in the order
    # of the seeded index stream, and never the batches a resume skips.
    from keras_dhsps.data import store as store_module

    reads = []
    read = store_module.ImageStore.read

    def recorded(self, indices):
        reads.append(np.asarray(indices))
        return read(self, indices)

    monkeypatch.setattr(store_module.ImageStore, "read", recorded)
    train = dataset.split("train")
    store = feed.open_image_store(train, (32, 32), InputConfig())
    stream = feed.training_batches(
        train, batch_size=32, image_size=(32, 32), seed=5, start=9, store=store
    )
    assert store.images is train.images  # at the stored size: no copy
    images, labels = next(stream)
    index = feed.batch_indices(len(train), 32, seed=5, step=9)
    np.testing.assert_array_equal(images, train.images[index])
    np.testing.assert_array_equal(labels, train.labels[index])
    assert len(reads) == 1  # steps 0-8 were never read
    result = fit(
        make_config(epochs=1), dataset=dataset, verbose=0, reader="numpy"
    )
    # One read per training step, in stream order (Keras may read one or
    # two batches ahead of the last step).
    assert 8 <= len(reads) - 1 <= 10
    for step, indices in enumerate(reads[1:9]):
        np.testing.assert_array_equal(
            indices, feed.batch_indices(len(train), 32, seed=3, step=step)
        )
    assert int(result.model.optimizer.iterations) == 8


@pytest.mark.parametrize("resize", ["resize_crop", "shorter_side_crop"])
def test_the_numpy_reader_serves_the_cropping_modes(dataset, resize):
    # The store keeps the stored size (40×40 here), the model crops: the
    # NumPy reader serves every resize mode, as tf.data does.
    from keras_dhsps.data.store import open_store

    queries = dataset.split("query")
    config = InputConfig(resize=resize, resize_to=(40, 40))
    store = open_store(queries, image_size=(32, 32), input_config=config)
    assert store.image_shape == (40, 40, 3)
    (first,) = next(
        feed.ordered_batches(
            queries, batch_size=4, image_size=(32, 32), store=store
        )
    )
    # The centre 32×32 of the stored 40×40: rows and columns 4 .. 36.
    np.testing.assert_array_equal(
        first, store.read(np.arange(4))[:, 4:36, 4:36]
    )


def test_no_callback_of_a_run_makes_a_training_step_wait(dataset, tmp_path):
    # Keras reads every step's logs on the main thread, making every step
    # wait for the device, as soon as one callback has a per-batch end
    # hook that is not marked async_safe. The run's own callbacks (NaN
    # guard, validation, best model, history, mid-epoch checkpoints) must
    # not; TensorBoard and progress bars are Keras' and do (README).
    from keras_dhsps.data.stream import TrainingStream
    from keras_dhsps.training.callbacks import RunHistory
    from keras_dhsps.training.fit import _callbacks

    config = make_config(epochs=1, checkpoint_every=2, tensorboard=False)
    stream = TrainingStream(
        split=dataset.split("train"),
        reader="numpy",
        batch_size=32,
        image_size=(32, 32),
        seed=0,
    )
    validation = (dataset.split("validation"), 1)
    run = _callbacks(
        config, str(tmp_path), stream, RunHistory(), validation, ()
    )
    assert len(run) == 5  # guard, validation, best model, history, state
    base = keras.callbacks.Callback
    for callback in run:
        kind = type(callback)
        waits = (
            kind.on_train_batch_end is not base.on_train_batch_end
            or kind.on_batch_end is not base.on_batch_end
        )
        assert not waits or callback.async_safe, kind.__name__


def test_a_nan_loss_stops_at_its_step_and_no_state_keeps_it(
    dataset, tmp_path, monkeypatch
):
    # Under JAX and PyTorch the NaN guard checks on Keras' worker threads
    # and mid-epoch states are saved as the next batch begins: the error
    # still names the first bad step, and no checkpoint holds NaN weights.
    # 256 images / 32 = 8 steps per epoch; one clean epoch -> state 8.
    clean = make_config(epochs=1, checkpoint_every=1)
    fit(
        clean,
        dataset=dataset,
        verbose=0,
        run_dir=str(tmp_path / "a"),
        reader="numpy",
    )
    monkeypatch.setitem(losses.LOSSES, "nan_for_test", NaNLoss)
    run_dir = tmp_path / "b"
    run_dir.mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoints", run_dir / "checkpoints")
    config = dataclasses.replace(
        make_config(epochs=2, checkpoint_every=1),
        loss=LossConfig(name="nan_for_test"),
    )
    with pytest.raises(NonFiniteLossError, match=r"at training step 9 \("):
        fit(
            config,
            dataset=dataset,
            verbose=0,
            run_dir=str(run_dir),
            reader="numpy",
        )
    state = json.loads(
        (run_dir / "checkpoints" / "checkpoint.json").read_text()
    )
    assert state["step"] == 8  # the clean epoch's state, nothing after it
    assert sorted(os.listdir(run_dir / "checkpoints")) == [
        "checkpoint.json",
        "step-8.weights.h5",
    ]

"""The one switch between the tf.data and the NumPy reader."""

import numpy as np
import pytest

from keras_dhsps.config import InputConfig
from keras_dhsps.data import readers
from keras_dhsps.data.base import Split
from keras_dhsps.data.base import steps_per_epoch
from keras_dhsps.data.stream import TrainingStream
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import installed


def _split(count=10):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    labels = np.eye(count, 3, dtype=np.uint8)
    return Split(labels=labels, images=images)


@pytest.mark.backend_neutral
def test_the_default_reader_follows_tensorflow():
    expected = "tf.data" if installed("tensorflow") else "numpy"
    assert readers.default_reader() == expected
    assert readers.choose_reader(None) == expected
    assert readers.choose_reader("numpy") == "numpy"


@pytest.mark.backend_neutral
def test_an_unknown_reader_is_refused_by_name():
    with pytest.raises(DHSPSError, match="unknown reader 'tfdata'; known"):
        readers.open_reader("tfdata")
    with pytest.raises(DHSPSError, match="unknown reader"):
        TrainingStream(_split(), "cache", 4, (8, 8), 0)


@pytest.mark.backend_neutral
def test_steps_per_epoch_counts_full_batches_and_at_least_one():
    assert steps_per_epoch(10, 4) == 2
    assert steps_per_epoch(3, 4) == 1


@pytest.mark.parametrize("reader", ["numpy", "tf.data"])
def test_both_readers_give_the_same_batches(reader):
    if reader == "tf.data":
        pytest.importorskip("tensorflow")
    split = _split()
    options = dict(batch_size=4, image_size=(8, 8), input_config=InputConfig())
    batches, steps = readers.open_reader(reader).ordered_images(
        split, **options
    )
    # model.predict takes the NumPy reader's one-element tuples as images.
    images = np.concatenate(
        [np.asarray(b[0] if isinstance(b, tuple) else b) for b in batches]
    )
    np.testing.assert_array_equal(images, split.images)
    assert steps in (None, 3)
    stream = TrainingStream(split, reader, 4, (8, 8), seed=1)
    for step, (images, labels) in zip(range(3), stream.batches(), strict=False):
        assert np.shape(images) == (4, 8, 8, 3)
        np.testing.assert_array_equal(labels, stream.labels(step))

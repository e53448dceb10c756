"""SavedModel export: endpoints agree with the Keras model; reloads."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.serving.export import export_saved_model
from keras_dhsps.serving.export import pack_bits
from keras_dhsps.serving.hasher import METADATA_PATH
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError

BITS = 12  # not a multiple of 8: exercises the zero padding of packed codes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = build_hasher("small_cnn", BITS, activation="softsign")
    directory = str(tmp_path_factory.mktemp("export") / "hasher")
    config = {"model": {"backbone": "small_cnn", "bits": BITS}}
    metadata = export_saved_model(model, directory, config=config)
    return model, directory, metadata


def images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _stored(tmp_path, arrays, image_size=(32, 32), **input_options):
    """Oracle: the pixels training and evaluation feed a model taking
    ``image_size`` images, as float32: each array written as a PNG
    (lossless) and read by the tf.data reader from the image store."""
    from PIL import Image

    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.base import Split
    from keras_dhsps.data.tfdata_reader import reader_dataset

    paths = []
    for index, array in enumerate(arrays):
        paths.append(str(tmp_path / f"image{index}.png"))
        Image.fromarray(array).save(paths[-1])
    split = Split(labels=np.zeros((len(paths), 1), np.uint8), paths=paths)
    input_config = InputConfig(store_dir=str(tmp_path), **input_options)
    dataset = reader_dataset(
        split, batch_size=8, image_size=image_size, input_config=input_config
    )
    batches = [images.numpy() for images, _ in dataset]
    return np.concatenate(batches).astype(np.float32)


def test_serve_and_encode_match_keras_model(exported):
    model, directory, _ = exported
    served = tf.saved_model.load(directory)
    x = images((5, 32, 32, 3))
    expected = np.asarray(model(x.astype("float32")))
    relaxed = served.serve(tf.constant(x)).numpy()
    np.testing.assert_array_equal(relaxed, expected)  # bit for bit
    packed = served.encode(tf.constant(x)).numpy()
    assert packed.dtype == np.uint8 and packed.shape == (5, 2)
    np.testing.assert_array_equal(packed, pack_codes(relaxed))
    # Padding bits (4 of the second byte) are zero.
    assert (packed[:, 1] & 0x0F == 0).all()


def test_any_size_gives_the_codes_of_the_stored_pixels(exported, tmp_path):
    model, directory, _ = exported
    served = tf.saved_model.load(directory)
    x = images((2, 57, 41, 3), seed=3)
    other = images((1, 20, 90, 3), seed=4)
    stored = _stored(tmp_path, [*x, other[0]])
    assert stored.shape == (3, 32, 32, 3)
    expected = np.asarray(model(stored))
    # Bit for bit: the endpoint resizes as the store does.
    np.testing.assert_array_equal(served.serve(x).numpy(), expected[:2])
    # Encoded bytes of two different sizes in one batch.
    data = tf.constant(
        [tf.io.encode_png(x[0]).numpy(), tf.io.encode_png(other[0]).numpy()]
    )
    result = served.encode_bytes(data)
    np.testing.assert_array_equal(result["codes"].numpy(), expected[[0, 2]])
    np.testing.assert_array_equal(
        result["packed"].numpy(), pack_codes(result["codes"].numpy())
    )
    # The stored pixels are rounded: the unrounded resize gives other codes
    # (the test can fail).
    unrounded = tf.image.resize(tf.cast(x, tf.float32), (32, 32))
    assert not np.array_equal(np.asarray(model(unrounded)), expected[:2])


def test_tfsm_layer_reload(exported):
    model, directory, _ = exported
    layer = keras.layers.TFSMLayer(directory, call_endpoint="serve")
    x = images((3, 32, 32, 3), seed=5)
    np.testing.assert_allclose(
        np.asarray(layer(x)), np.asarray(model(x.astype("float32"))), atol=1e-5
    )


def test_metadata_endpoint_and_file(exported):
    _, directory, metadata = exported
    assert metadata["bits"] == BITS
    assert metadata["backbone"] == "small_cnn"
    assert metadata["activation"] == "softsign"
    assert metadata["image_size"] == [32, 32]
    served = tf.saved_model.load(directory)
    assert json.loads(served.metadata().numpy()) == metadata
    with open(os.path.join(directory, METADATA_PATH), encoding="utf-8") as f:
        assert json.load(f) == metadata


def test_one_loader_opens_saved_model_keras_file_and_run_dir(
    exported, tmp_path
):
    model, directory, _ = exported
    x = images((4, 40, 30, 3), seed=6)
    from_saved = load_hasher(directory)
    assert from_saved.kind == "saved_model" and from_saved.bits == BITS
    # A run directory: model.keras + config.json; reloads under safe mode.
    run = tmp_path / "run"
    run.mkdir()
    model.save(str(run / "model.keras"))
    (run / "config.json").write_text(
        json.dumps({"model": {"backbone": "small_cnn"}})
    )
    from_run = load_hasher(str(run))
    from_file = load_hasher(str(run / "model.keras"))
    assert (
        from_run.kind == "keras"
        and from_run.metadata["backbone"] == "small_cnn"
    )
    assert from_file.metadata["backbone"] is None
    codes = [h.codes(x) for h in (from_saved, from_run, from_file)]
    np.testing.assert_allclose(codes[0], codes[1], atol=1e-5)
    np.testing.assert_array_equal(codes[1], codes[2])


def test_export_refuses_existing_directory(exported):
    model, directory, _ = exported
    with pytest.raises(DHSPSError, match="already exists"):
        export_saved_model(model, directory)


def test_pack_bits_matches_numpy_packing():
    # 0 goes to bit 1 (u >= 0); K = 10 pads six zero bits.
    codes = np.array(
        [
            [0.0, -0.1, 0.2, -0.3, 0.4, 0.5, -0.6, -0.7, 0.8, -0.9],
            [-1.0] * 10,
        ],
        dtype=np.float32,
    )
    # Row 0 signs + - + - + + - - | + - -> bits 1010 1100 = 128 + 32 + 8 +
    # 4 = 172, then 10 + six zero pad bits = 0b10000000 = 128.
    assert pack_bits(tf.constant(codes)).numpy().tolist() == [
        [172, 128],
        [0, 0],
    ]
    np.testing.assert_array_equal(
        pack_bits(tf.constant(codes)).numpy(), pack_codes(codes)
    )


@pytest.mark.parametrize("resize", ["resize_crop", "shorter_side_crop"])
def test_cropping_resize_modes_match_the_input_pipeline(
    exported, tmp_path, resize
):
    model, _, _ = exported
    directory = str(tmp_path / resize)
    metadata = export_saved_model(
        model, directory, resize=resize, resize_to=(40, 40)
    )
    assert metadata["resize"] == resize and metadata["resize_to"] == [40, 40]
    x = images((1, 50, 70, 3), seed=8)
    # Oracle: the store's evaluation-time pixels (stored at 40, centre 32).
    stored = _stored(tmp_path, x, resize=resize, resize_to=(40, 40))
    expected = np.asarray(model(stored))
    served = tf.saved_model.load(directory)
    np.testing.assert_array_equal(served.serve(x).numpy(), expected)
    # The loader follows the SavedModel's mode; a .keras one takes it.
    np.testing.assert_allclose(
        load_hasher(directory).codes(x), expected, atol=1e-5
    )
    model.save(str(tmp_path / "m.keras"))
    keras_hasher = load_hasher(
        str(tmp_path / "m.keras"), resize=resize, resize_to=(40, 40)
    )
    np.testing.assert_allclose(keras_hasher.codes(x), expected, atol=1e-5)
    # A different mode gives different codes: the test can fail.
    assert not np.allclose(
        load_hasher(str(tmp_path / "m.keras")).codes(x),
        expected,
        atol=1e-5,
    )

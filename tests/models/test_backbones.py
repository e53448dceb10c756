"""Tests for AlexNet, its bvlc_alexnet.npy loader and the applications."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dhsps.models.alexnet import ALEXNET_LAYERS
from keras_dhsps.models.alexnet import build_alexnet
from keras_dhsps.models.alexnet import load_bvlc_alexnet_weights
from keras_dhsps.models.backbones import BACKBONES
from keras_dhsps.models.backbones import build_application
from keras_dhsps.models.backbones import get_backbone_spec
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError

# bvlc_alexnet.npy shapes (Kratzert / guerzhoy TensorFlow layout).
BVLC_SHAPES = {
    "conv1": ((11, 11, 3, 96), (96,)),
    "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)),
    "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)),
    "fc6": ((9216, 4096), (4096,)),
    "fc7": ((4096, 4096), (4096,)),
    "fc8": ((4096, 1000), (1000,)),
}


@pytest.fixture(scope="module")
def alexnet():
    return build_alexnet()


def write_bvlc_file(path, shapes=BVLC_SHAPES, byte_keys=False):
    rng = np.random.default_rng(0)
    data = {}
    for name, (w_shape, b_shape) in shapes.items():
        key = name.encode("ascii") if byte_keys else name
        data[key] = [
            rng.random(w_shape, dtype=np.float32) - 0.5,
            rng.random(b_shape, dtype=np.float32),
        ]
    np.save(path, data, allow_pickle=True)
    return data


def test_alexnet_architecture(alexnet):
    assert alexnet.output_shape == (None, 4096)
    # conv1–fc7 of AlexNet: 60,965,224 total minus fc8's 4,097,000.
    assert alexnet.count_params() == 56_868_224
    for name, (w_shape, b_shape) in BVLC_SHAPES.items():
        if name == "fc8":
            continue
        kernel, bias = alexnet.get_layer(name).get_weights()
        assert kernel.shape == w_shape and bias.shape == b_shape
    assert alexnet.get_layer("pool5").output.shape == (None, 6, 6, 256)
    assert alexnet.get_layer("norm1").input.shape == (None, 27, 27, 96)


def test_bvlc_npy_loader_round_trip(alexnet, tmp_path):
    path = str(tmp_path / "bvlc_alexnet.npy")
    data = write_bvlc_file(path, byte_keys=True)  # Python-2 pickles: bytes
    load_bvlc_alexnet_weights(alexnet, path)
    for name in ALEXNET_LAYERS:
        kernel, bias = alexnet.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, data[name.encode()][0])
        np.testing.assert_array_equal(bias, data[name.encode()][1])


def test_bvlc_npy_loader_failures(alexnet, tmp_path):
    with pytest.raises(DHSPSError, match="not found"):
        load_bvlc_alexnet_weights(alexnet, str(tmp_path / "missing.npy"))
    bad = dict(BVLC_SHAPES)
    bad["conv2"] = ((5, 5, 96, 256), (256,))  # ungrouped layout
    path = str(tmp_path / "bad.npy")
    write_bvlc_file(path, {k: bad[k] for k in ("conv1", "conv2")})
    with pytest.raises(DHSPSError, match="conv2"):
        load_bvlc_alexnet_weights(alexnet, path)
    path = str(tmp_path / "partial.npy")
    write_bvlc_file(path, {"conv1": BVLC_SHAPES["conv1"]})
    with pytest.raises(DHSPSError, match="no layer 'conv2'"):
        load_bvlc_alexnet_weights(alexnet, path)
    np.save(str(tmp_path / "array.npy"), np.zeros(3))
    with pytest.raises(DHSPSError, match="dict"):
        load_bvlc_alexnet_weights(alexnet, str(tmp_path / "array.npy"))


def test_grouped_conv_matches_kratzert_split_convolution():
    # Kratzert's AlexNet splits input and kernel in two along channels,
    # convolves each half and concatenates: Conv2D(groups=2) must equal it.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 7, 7, 8)).astype("float32")
    kernel = rng.normal(size=(3, 3, 4, 6)).astype("float32")
    bias = rng.normal(size=(6,)).astype("float32")
    layer = keras.layers.Conv2D(6, 3, padding="same", groups=2)
    layer.build((None, 7, 7, 8))
    layer.set_weights([kernel, bias])
    halves = [
        tf.nn.conv2d(xi, ki, 1, "SAME")
        for xi, ki in zip(
            tf.split(x, 2, axis=3), tf.split(kernel, 2, axis=3), strict=True
        )
    ]
    expected = tf.concat(halves, axis=3).numpy() + bias
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "order,expected",
    [
        # pixel (R, G, B) = (200, 100, 50)
        ("bgr", [50 - 104, 100 - 117, 200 - 123]),
        ("authors_rgb", [200 - 123, 100 - 117, 50 - 104]),
    ],
)
def test_alexnet_preprocessing_channel_order(order, expected):
    model = build_alexnet(channel_order=order)
    head = keras.Model(model.input, model.get_layer("subtract_mean").output)
    image = np.zeros((1, 227, 227, 3), "float32") + [200.0, 100.0, 50.0]
    got = keras.ops.convert_to_numpy(head(image))[0, 0, 0]
    np.testing.assert_allclose(got, expected)


def test_alexnet_rejects_unknown_order_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="channel_order"):
        build_alexnet(channel_order="rgb")
    with pytest.raises(DHSPSError, match="no download"):
        build_alexnet(weights="imagenet")


def test_hasher_on_alexnet_with_npy_weights(tmp_path):
    path = str(tmp_path / "bvlc_alexnet.npy")
    data = write_bvlc_file(path)
    hasher = build_hasher("alexnet", 16, weights=path)
    assert hasher.input_shape == (None, 227, 227, 3)
    assert hasher.output_shape == (None, 16)
    np.testing.assert_array_equal(
        hasher.get_layer("backbone").get_layer("fc7").get_weights()[0],
        data["fc7"][0],
    )
    codes = keras.ops.convert_to_numpy(
        hasher(np.full((1, 227, 227, 3), 128.0, "float32"))
    )
    # Random weights saturate tanh; the codes must still be finite in [-1, 1].
    assert codes.shape == (1, 16) and np.all(np.abs(codes) <= 1.0)


@pytest.mark.parametrize(
    "name,features,params",
    [
        ("resnet50", 2048, 23_587_712),
        ("efficientnet_b0", 1280, 4_049_571),
        ("vgg16", 512, 14_714_688),
    ],
)
def test_application_backbones(name, features, params):
    spec = get_backbone_spec(name)
    assert spec.preprocessing
    model = spec.build(input_shape=(32, 32, 3), weights=None)
    assert model.name == "backbone"
    assert model.output_shape == (None, features)
    assert model.count_params() == params


def test_registry_declares_sizes_and_preprocessing():
    assert get_backbone_spec("alexnet").image_size == (227, 227)
    assert get_backbone_spec("resnet50").image_size == (224, 224)
    assert get_backbone_spec("efficientnet_b3").image_size == (300, 300)
    assert all(spec.preprocessing for spec in BACKBONES.values())
    with pytest.raises(UnknownNameError, match="alexnet"):
        get_backbone_spec("alexnet2")


def test_caffe_preprocessing_matches_keras_applications():
    model = build_application((32, 32, 3), application="VGG16")
    head = keras.Model(model.input, model.get_layer("subtract_mean").output)
    image = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3))
    image = image.astype("float32")
    expected = keras.applications.vgg16.preprocess_input(image.copy())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(head(image)), expected, rtol=1e-5, atol=1e-4
    )


def test_application_weights_from_local_file(tmp_path):
    source = build_application((32, 32, 3), application="EfficientNetB0")
    network = source.layers[-1]
    path = str(tmp_path / "effnet_notop.weights.h5")
    network.save_weights(path)
    loaded = build_application(
        (32, 32, 3), weights=path, application="EfficientNetB0"
    )
    for a, b in zip(source.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    with pytest.raises(DHSPSError, match="existing file"):
        build_application(weights=str(tmp_path / "nope.h5"))

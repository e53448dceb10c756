"""``dhsps encode`` and ``dhsps search`` with a ``.keras`` hasher and no
TensorFlow (issue 12): decoding by Pillow, resizing by the image store's
NumPy twin, codes by the Keras model under any backend.

The images are written at the model's size, where both decoders give the
same pixels (PNG is lossless; TensorFlow decodes JPEGs with the accurate
integer IDCT, as Pillow does) and no resize happens, so the codes must
match those computed with TensorFlow exactly (up to float rounding of
another backend). The tests marked ``backend_neutral`` import nothing
from TensorFlow and force the Pillow path by making the store's
TensorFlow probe answer None.
"""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_dhsps.cli.main import main
from keras_dhsps.data import decoding
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.serving.encode import encode_images
from keras_dhsps.serving.hasher import LoadedHasher
from keras_dhsps.serving.hasher import hasher_metadata
from tests.training_helpers import backend_without_tensorflow
from tests.training_helpers import run_without_tensorflow
from tests.training_helpers import train_tiny_run


def write_images(directory, images):
    """Four images as PNG (lossless) and one as JPEG; returns the paths in
    ``dhsps encode``'s order (sorted names)."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for number, image in enumerate(images):
        suffix = ".jpg" if number == len(images) - 1 else ".png"
        path = os.path.join(directory, f"image_{number}{suffix}")
        Image.fromarray(image).save(path, quality=95)
        paths.append(path)
    return sorted(paths)


def decoded(paths):
    """What both decoders read from ``paths`` (Pillow, RGB uint8)."""
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB")))
    return np.stack(arrays)


def random_images(count, size, seed=0):
    generator = np.random.default_rng(seed)
    return generator.integers(0, 256, (count, *size, 3), dtype=np.uint8)


@pytest.fixture
def without_tensorflow(monkeypatch):
    """The store's TensorFlow probe answers None: every decode and resize
    takes the Pillow path, as on a machine without TensorFlow."""
    monkeypatch.setattr(decoding, "tensorflow_or_none", lambda: None)


@pytest.mark.backend_neutral
def test_the_pillow_encode_stream_gives_the_models_codes(
    tmp_path, without_tensorflow
):
    model = build_hasher("small_cnn", 8, image_size=(32, 32))
    hasher = LoadedHasher(
        source="memory", metadata=hasher_metadata(model), model=model
    )
    paths = write_images(str(tmp_path), random_images(5, (32, 32)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    skipped = []
    batches = list(
        encode_images(
            hasher,
            [*paths[:2], str(bad), *paths[2:]],
            batch_size=2,
            skip_bad_images=True,
            skipped=skipped,
        )
    )
    positions = np.concatenate([p for p, _ in batches])
    codes = np.concatenate([c for _, c in batches])
    assert skipped == [2]
    np.testing.assert_array_equal(positions, [0, 1, 3, 4, 5])
    # At the model's size nothing is resized: the model on the pixels.
    expected = keras.ops.convert_to_numpy(
        model(decoded(paths).astype("float32"))
    )
    np.testing.assert_allclose(codes, expected, atol=1e-6)


@pytest.mark.backend_neutral
def test_an_unreadable_image_is_named_without_tensorflow(
    tmp_path, without_tensorflow
):
    model = build_hasher("small_cnn", 8, image_size=(32, 32))
    hasher = LoadedHasher(
        source="memory", metadata=hasher_metadata(model), model=model
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(
        Exception, match="bad.png: cannot decode image"
    ) as error:
        list(encode_images(hasher, [str(bad)]))
    assert "--skip-bad-images" in str(error.value)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("resize", ["direct", "resize_crop"])
def test_preprocess_resizes_then_crops_by_the_stores_rule(
    resize, without_tensorflow
):
    model = build_hasher("small_cnn", 8, image_size=(32, 32))
    metadata = hasher_metadata(model, resize=resize, resize_to=(40, 48))
    hasher = LoadedHasher(source="memory", metadata=metadata, model=model)
    images = random_images(3, (50, 70), seed=1)
    size = (32, 32) if resize == "direct" else (40, 48)
    assert hasher.stored_size == size
    stored = decoding.resize_uint8_images(images, resize=resize, size=size)
    # Without TensorFlow: the store's NumPy twin, image by image.
    for image, row in zip(images, stored, strict=True):
        twin = decoding._numpy_resize(image, resize=resize, size=size)
        np.testing.assert_array_equal(row, twin)
    top, left = (size[0] - 32) // 2, (size[1] - 32) // 2  # 4, 8
    expected = stored[:, top : top + 32, left : left + 32].astype("float32")
    np.testing.assert_array_equal(hasher.preprocess(images), expected)
    assert decoding.resize_uint8_images(
        images[:0], resize=resize, size=size
    ).shape == (0, *size, 3)


def tiny_run(root):
    run = str(root / "run")
    _, dataset, _ = train_tiny_run(run)
    return run, dataset.split("query").images[:5]


@pytest.mark.backend_neutral
def test_encode_and_search_run_without_tensorflow(tmp_path):
    run, images = tiny_run(tmp_path)
    paths = write_images(str(tmp_path / "images"), images)
    reference = str(tmp_path / "reference.h5")
    # With TensorFlow, in this process.
    assert (
        main(
            ["--verbose", "0", "encode", run, str(tmp_path / "images")]
            + ["-o", reference, "--store-relaxed"]
        )
        == 0
    )
    script = (
        "import _block_tensorflow, sys\n"
        "from keras_dhsps.cli.main import main\n"
        f"codes = {str(tmp_path / 'codes.h5')!r}\n"
        f"status = main(['--verbose', '0', 'encode', {run!r}, "
        f"{str(tmp_path / 'images')!r}, '-o', codes, '--store-relaxed'])\n"
        "assert status == 0, status\n"
        f"status = main(['search', {run!r}, codes, {paths[0]!r}, "
        "'-k', '3'])\n"
        "assert status == 0, status\n"
        "import keras\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(keras.backend.backend())\n"
    )
    done = run_without_tensorflow(script)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == backend_without_tensorflow()
    expected = read_code_database(reference, relaxed=True)
    written = read_code_database(str(tmp_path / "codes.h5"), relaxed=True)
    assert list(written.paths) == list(expected.paths) == paths
    np.testing.assert_array_equal(written.packed, expected.packed)
    np.testing.assert_allclose(written.relaxed, expected.relaxed, atol=1e-5)
    # The query is the database's first image: distance 0 at rank 1, and
    # -k 3 of the 5 codes are listed.
    assert f"{1:>6d} {0:>8d}  {paths[0]}" in lines, lines
    ranks = [line.split()[0] for line in lines if line.startswith("     ")]
    assert ranks == ["1", "2", "3"], lines

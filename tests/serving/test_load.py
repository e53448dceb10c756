"""The one loader: run directories, .keras files (safe mode), SavedModels,
and the one-line errors of everything it refuses."""

import json

import keras
import numpy as np
import pytest

from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.serving import load
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.training.rundir import MODEL_FILE
from keras_dhsps.utils.errors import DHSPSError
from tests.training_helpers import run_without_tensorflow


def images(count, seed=0):
    generator = np.random.default_rng(seed)
    return generator.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def test_resolve_model_file_names_what_is_missing(tmp_path):
    with pytest.raises(DHSPSError, match="neither a run directory"):
        load.resolve_model_file(str(tmp_path))
    with pytest.raises(DHSPSError, match="model file not found"):
        load.resolve_model_file(str(tmp_path / "missing.keras"))
    (tmp_path / MODEL_FILE).write_bytes(b"")
    assert load.resolve_model_file(str(tmp_path)) == (
        str(tmp_path / MODEL_FILE),
        None,
    )


def test_a_keras_file_loads_without_its_training_configuration(tmp_path):
    from keras_dhsps import losses

    model = build_hasher("small_cnn", 24)
    model.compile(optimizer="adam", loss=losses.IDHNLoss(soft_weight=0.2))
    path = str(tmp_path / "hasher.keras")
    model.save(path)
    hasher = load_hasher(path)
    assert hasher.kind == "keras" and hasher.bits == 24
    assert not hasher.model.compiled  # compile=False: no loss, no optimizer
    x = images(4)
    np.testing.assert_allclose(
        np.asarray(hasher.model(x.astype("float32"))),
        np.asarray(model(x.astype("float32"))),
        atol=1e-6,
    )


def test_a_run_directory_gives_its_config_and_resize_mode(tmp_path):
    build_hasher("small_cnn", 8).save(str(tmp_path / MODEL_FILE))
    config = {
        "model": {"backbone": "small_cnn"},
        "input": {"resize": "resize_crop", "resize_to": [40, 40]},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    hasher = load_hasher(str(tmp_path))
    assert hasher.metadata["config"] == config
    assert hasher.metadata["backbone"] == "small_cnn"
    assert (hasher.resize, hasher.stored_size) == ("resize_crop", (40, 40))
    # Given options win over the run's.
    direct = load_hasher(str(tmp_path), resize="direct")
    assert (direct.resize, direct.stored_size) == ("direct", (32, 32))


def test_load_errors(tmp_path):
    with pytest.raises(DHSPSError, match="neither a run directory"):
        load_hasher(str(tmp_path))
    with pytest.raises(DHSPSError, match="model file not found"):
        load_hasher(str(tmp_path / "missing.keras"))
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a zip archive")
    with pytest.raises(DHSPSError, match="cannot load"):
        load_hasher(str(bogus))
    other = tmp_path / "weights.h5"
    other.write_bytes(b"")
    with pytest.raises(DHSPSError, match="expected a .keras file"):
        load_hasher(str(other))


def test_keras_file_with_lambda_is_refused_by_safe_mode(tmp_path):
    # A Lambda layer carries arbitrary Python: safe_mode=True must refuse it
    # (the hasher itself has none, so it reloads).
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x[:, 0, 0, :2])(inputs)
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(DHSPSError, match="cannot load") as raised:
        load_hasher(path)
    assert "\n" not in str(raised.value)


def test_a_saved_model_it_cannot_use_is_refused_in_one_line(tmp_path):
    tf = pytest.importorskip("tensorflow")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / load.SAVED_MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(DHSPSError, match="cannot load SavedModel"):
        load_hasher(str(corrupt))
    foreign = str(tmp_path / "foreign")
    tf.saved_model.save(tf.Module(), foreign)
    with pytest.raises(DHSPSError, match="without the 'hasher' endpoint"):
        load_hasher(foreign)


@pytest.mark.backend_neutral
def test_a_saved_model_without_tensorflow_says_so(tmp_path):
    (tmp_path / load.SAVED_MODEL_FILE).write_bytes(b"")
    script = (
        "import _block_tensorflow\n"
        "from keras_dhsps.serving.load import load_hasher\n"
        "from keras_dhsps.utils.errors import DHSPSError\n"
        "try:\n"
        f"    load_hasher({str(tmp_path)!r})\n"
        "except DHSPSError as error:\n"
        "    print(error)\n"
    )
    done = run_without_tensorflow(script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "need TensorFlow" in done.stdout.strip().splitlines()[-1]

"""A model file is checked for what it must hold before it is used: an
image hasher, a whole archive; one line naming the file."""

import os

import keras
import pytest
from PIL import Image

from keras_dhsps.cli.main import main
from tests.paths import FIXTURES


@pytest.fixture
def vector_model(tmp_path):
    """A valid .keras file that is not an image hasher."""
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    path = str(tmp_path / "dense.keras")
    model.save(path)
    return path


@pytest.fixture
def truncated(tmp_path):
    path = str(tmp_path / "cut.keras")
    with open(os.path.join(FIXTURES, "hasher_c7958a9.keras"), "rb") as file:
        data = file.read()
    with open(path, "wb") as file:
        file.write(data[: len(data) // 3])
    return path


def _argv(command, model, tmp_path):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8)).save(images / "a.png")
    return {
        "export": ["export", model, "-o", str(tmp_path / "out")],
        "encode": ["encode", model, str(images), "-o", str(tmp_path / "c.h5")],
        "evaluate": ["evaluate", model, "--dataset", "digits-mosaic"],
    }[command]


@pytest.mark.parametrize("command", ["export", "encode", "evaluate"])
def test_a_model_that_is_not_an_image_hasher_is_one_line(
    command, vector_model, tmp_path, capsys
):
    assert main(_argv(command, vector_model, tmp_path)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: {vector_model} is not an image hasher: it maps (None, 5) to "
        "(None, 3); expected images (batch, height, width, 3) to codes "
        "(batch, bits)"
    ]
    assert not os.path.exists(tmp_path / "out")


def test_a_truncated_archive_is_not_called_missing(truncated, tmp_path, capsys):
    assert main(_argv("export", truncated, tmp_path)) == 2
    line = capsys.readouterr().err.strip()
    assert "not found" not in line
    assert line == (
        f"error: cannot load {truncated}: not a .keras archive (truncated "
        "or damaged zip file)"
    )

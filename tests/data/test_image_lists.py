"""Listing an image collection: a directory or a list file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_dhsps.data.image_lists import list_image_files
from keras_dhsps.data.image_lists import read_collection
from keras_dhsps.utils.errors import DataError

pytestmark = pytest.mark.backend_neutral


def make_images(folder, count, *, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def test_a_directory_lists_its_images_sorted_and_skips_the_rest(tmp_path):
    paths = make_images(tmp_path / "images" / "sub", 3)
    paths += make_images(tmp_path / "images", 2, seed=1)
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "images" / ".hidden").mkdir()
    make_images(tmp_path / "images" / ".hidden", 1)
    listed = list_image_files(str(tmp_path / "images"))
    assert list(listed) == sorted(paths)


def test_read_collection_list_files(tmp_path):
    make_images(tmp_path / "data" / "imgs", 3)
    (tmp_path / "data" / "list.txt").write_text(
        "imgs/img_00.png 1 0\nimgs/img_01.png 0 1\n\nimgs/img_02.png 1 1\n"
    )
    paths, labels = read_collection(str(tmp_path / "data" / "list.txt"))
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "img_00.png",
        "img_01.png",
        "img_02.png",
    ]
    assert labels.tolist() == [[1, 0], [0, 1], [1, 1]]
    (tmp_path / "data" / "plain.txt").write_text(
        "imgs/img_02.png\nimgs/img_00.png\n"
    )
    paths, labels = read_collection(str(tmp_path / "data" / "plain.txt"))
    assert labels is None and paths[0].endswith("img_02.png")
    (tmp_path / "data" / "bad.txt").write_text("imgs/img_00.png\nimgs/x.png\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: image not found"):
        read_collection(str(tmp_path / "data" / "bad.txt"))
    with pytest.raises(DataError, match="no such image directory"):
        read_collection(str(tmp_path / "missing"))


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        read_collection(str(tmp_path / "empty"))

"""Hashers written by older code load and give the codes they gave then.

``tests/fixtures/hasher_c7958a9*`` were saved by the code at commit c7958a9
(a 16-bit small-CNN hasher on 32x32 images, seed 7), with the codes it gave
on the images below; see ``tests/fixtures/README.md``.
"""

import json
import os

import numpy as np
import pytest

import keras_dhsps
from tests.paths import FIXTURES

with open(os.path.join(FIXTURES, "hasher_c7958a9_codes.json")) as file:
    EXPECTED = json.load(file)["codes"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_older_hasher_gives_the_same_codes(name):
    images = np.random.default_rng(0).integers(
        0, 256, (6, 40, 48, 3), dtype=np.uint8
    )
    hasher = keras_dhsps.load_hasher(os.path.join(FIXTURES, name))
    codes = hasher.codes(images)
    expected = np.asarray(EXPECTED[name], np.float32)
    np.testing.assert_allclose(codes, expected, atol=2e-6)
    np.testing.assert_array_equal(codes >= 0, expected >= 0)


def test_new_metadata_carries_the_format_older_files_carry():
    from keras_dhsps.serving.hasher import METADATA_FORMAT

    path = os.path.join(FIXTURES, "hasher_c7958a9_savedmodel", "assets.extra")
    with open(os.path.join(path, "dhsps_metadata.json")) as file:
        assert json.load(file)["format"] == METADATA_FORMAT

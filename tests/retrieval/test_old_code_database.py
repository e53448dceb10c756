"""A code database written by older code reads back as it was written.

``tests/fixtures/codes_c7958a9.h5`` was written by the code at commit
c7958a9 from the values in ``codes_c7958a9.json`` (``tests/fixtures/
README.md``): its ``format`` attribute is the one users' files carry.
"""

import json
import os

import h5py
import numpy as np

from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.utils.codes import pack_codes
from tests.paths import FIXTURES

DATABASE = os.path.join(FIXTURES, "codes_c7958a9.h5")
with open(os.path.join(FIXTURES, "codes_c7958a9.json")) as file:
    WRITTEN = json.load(file)


def test_an_older_code_database_reads_as_written():
    database = read_code_database(DATABASE, relaxed=True)
    relaxed = np.asarray(WRITTEN["relaxed"], np.float32)
    assert database.bits == 12
    assert database.paths == tuple(WRITTEN["paths"])
    assert database.skipped_paths == tuple(WRITTEN["skipped_paths"])
    np.testing.assert_array_equal(database.relaxed, relaxed)
    np.testing.assert_array_equal(database.labels, WRITTEN["labels"])
    np.testing.assert_array_equal(database.packed, pack_codes(relaxed))


def test_the_format_attribute_is_the_one_older_files_carry():
    with h5py.File(DATABASE, "r") as file:
        assert file.attrs["format"] == "keras_dhsps.codedb"

"""A code database is checked for what it must hold before it is used:
one line naming the file and what is wrong, never a traceback."""

import h5py
import numpy as np
import pytest

from keras_dhsps.retrieval.codedb import FORMAT
from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.utils.errors import DHSPSError


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "codes.h5")
    codes = np.random.default_rng(0).uniform(-1, 1, (4, 12))
    batch = CodeBatch(codes=codes, paths=list("abcd"), labels=np.eye(4)[:, :3])
    write_code_database(path, [batch], bits=12, num_classes=3)
    return path


def _damage(path, change):
    with h5py.File(path, "r+") as handle:
        change(handle)


DAMAGES = {
    "no 'paths' dataset": lambda h: h.__delitem__("paths"),
    "no 'codes' dataset": lambda h: h.__delitem__("codes"),
    "'codes' holds int32, not uint8": lambda h: (
        h.__delitem__("codes"),
        h.create_dataset("codes", data=np.zeros((4, 2), np.int32)),
    ),
    "'codes' is not a 2-D dataset": lambda h: (
        h.__delitem__("codes"),
        h.create_group("codes"),
    ),
    "datasets disagree on the number of rows": lambda h: (
        h.__delitem__("labels"),
        h.create_dataset("labels", data=np.zeros((3, 3), np.uint8)),
    ),
    "'codes' has 2 columns, not 8 for 64 bits": lambda h: h.attrs.__setitem__(
        "bits", 64
    ),
    "attribute 'bits' is": lambda h: h.attrs.__setitem__("bits", "twelve"),
    "attribute 'metadata' is not a JSON object": lambda h: h.attrs.__setitem__(
        "metadata", "[1, 2]"
    ),
}


@pytest.mark.parametrize("what", sorted(DAMAGES))
def test_a_damaged_database_is_one_line_naming_the_file(database, what):
    _damage(database, DAMAGES[what])
    with pytest.raises(DHSPSError) as raised:
        read_code_database(database)
    message = str(raised.value)
    assert message.startswith(f"{database}: not a valid code database: ")
    assert what in message and "\n" not in message


def test_a_file_without_skipped_paths_still_reads(database):
    _damage(database, lambda h: h.__delitem__("skipped_paths"))
    assert read_code_database(database).skipped_paths == ()


@pytest.mark.parametrize(
    "value",
    [[FORMAT, FORMAT], np.array([1, 2]), np.bytes_(FORMAT.encode())],
    ids=["strings", "numbers", "bytes"],
)
def test_a_format_attribute_that_is_not_one_string_is_not_ours(database, value):
    # One changed byte in its datatype made it read as an array, which
    # ``== FORMAT`` compared element by element (a ValueError escaped).
    _damage(database, lambda h: h.attrs.__setitem__("format", value))
    with pytest.raises(DHSPSError) as raised:
        read_code_database(database)
    assert str(raised.value) == f"{database}: not a keras_dhsps code database"

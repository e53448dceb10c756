"""Image sources named on the command line: a manifest's split, a list
file that must be UTF-8 text."""

import os

import numpy as np
import pytest

from keras_dhsps.data.native import prepare
from keras_dhsps.data.sources import is_manifest_directory
from keras_dhsps.data.sources import manifest_split
from keras_dhsps.data.sources import require_utf8
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from tests import dataset_trees as fixtures


def test_a_manifest_split_with_its_source_metadata(tmp_path):
    root = str(tmp_path / "voc")
    fixtures.make_voc2012(root, count=12)
    directory, record = prepare(
        "voc2012", root, seed=0, num_query=2, num_train=6
    )
    assert is_manifest_directory(directory)
    assert not is_manifest_directory(root)
    paths, labels, metadata = manifest_split(
        directory, root=root, split="query"
    )
    assert len(paths) == 2 and all(os.path.isfile(path) for path in paths)
    assert labels.shape == (2, len(record["class_names"]))
    assert labels.dtype == np.uint8
    assert metadata == {
        "source": os.path.abspath(directory),
        "split": "query",
        "class_names": record["class_names"],
    }
    with pytest.raises(DHSPSError, match="is a manifest: pass --data-root"):
        manifest_split(directory, root=None, split="query")


def test_an_empty_split_is_refused(tmp_path):
    root = str(tmp_path / "voc")
    fixtures.make_voc2012(root, count=12)
    directory, _ = prepare(
        "voc2012", root, num_query=2, num_train=6, validation_fraction=0.0
    )
    with pytest.raises(DHSPSError, match="split 'validation' is empty"):
        manifest_split(directory, root=root, split="validation")


def test_a_list_file_must_be_utf8(tmp_path):
    marked = tmp_path / "marked.txt"
    marked.write_bytes(b"\xef\xbb\xbfimages/a.jpg 1 0\n")
    require_utf8(str(marked))  # a byte-order mark is fine
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"images/a.jpg 1 0\n\xff\xfe\x00 0 1\n")
    with pytest.raises(DataError, match=r"binary.txt:2: not UTF-8 text"):
        require_utf8(str(binary))

"""The peers' files shipped in the package: content and readers."""

import numpy as np
import pytest

from keras_dhsps.data import peers
from keras_dhsps.utils.errors import UnknownNameError

# (dataset, split) -> (rows, labels), from the peers' README tables.
SHAPES = {
    ("voc2012", "train"): (4000, 20),
    ("voc2012", "test"): (1000, 20),
    ("voc2012", "database"): (6540, 20),
    ("mirflickr25k", "train"): (4000, 38),
    ("mirflickr25k", "test"): (1000, 38),
    ("mirflickr25k", "database"): (20000, 38),
    ("nuswide21", "train"): (10500, 21),
    ("nuswide21", "test"): (2100, 21),
    ("coco", "train"): (10000, 80),
    ("coco", "test"): (5000, 80),
}


@pytest.mark.parametrize("dataset,split", sorted(SHAPES))
def test_label_matrix_shape_and_values(dataset, split):
    labels = peers.peer_labels(dataset, split)
    assert labels.shape == SHAPES[dataset, split]
    assert set(np.unique(labels)) <= {0, 1}


def test_nuswide_mean_cardinality_matches_published_table():
    # peer_labels/README: 2.86 labels per training image.
    labels = peers.peer_labels("nuswide21", "train")
    assert labels.sum(axis=1).mean() == pytest.approx(2.86, abs=0.005)


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    import gzip
    import shutil

    shutil.copytree(peers.PEER_FILES_DIR, tmp_path / "p")
    target = tmp_path / "p" / "voc2012" / "test.txt.gz"
    text = gzip.decompress(target.read_bytes()).replace(b" 1", b" 0", 1)
    target.write_bytes(gzip.compress(text))
    monkeypatch.setattr(peers, "PEER_FILES_DIR", tmp_path / "p")
    with pytest.raises(ValueError, match="checksum"):
        peers.peer_labels("voc2012", "test")


def test_write_peer_lists_loads_with_the_lists_reader_paths(tmp_path):
    peers.write_peer_lists("voc2012", str(tmp_path))
    lines = (tmp_path / "test.txt").read_text().splitlines()
    assert len(lines) == 1000
    assert lines[0].startswith("VOCdevkit/VOC2012/JPEGImages/")


def test_unknown_names_are_refused():
    with pytest.raises(UnknownNameError, match="known"):
        peers.peer_labels("cifar10", "train")
    with pytest.raises(UnknownNameError, match="database"):
        peers.peer_labels("coco", "database")
    with pytest.raises(UnknownNameError):
        peers.write_peer_lists("coco", "/tmp/x")

"""Download helper against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import tarfile
import threading
import zipfile

import pytest

from keras_dhsps.data.native import mirflickr
from keras_dhsps.data.native import voc2012
from keras_dhsps.data.native.download import ARCHIVES
from keras_dhsps.data.native.download import download
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from tests import dataset_trees as fixtures


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves ``tmp_path/www`` on 127.0.0.1; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _voc_tar(tmp_path, www):
    source = tmp_path / "voc-source"
    fixtures.make_voc2012(str(source), count=4)
    archive = www / "VOCtrainval_11-May-2012.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(source / "VOCdevkit", arcname="VOCdevkit")
    return str(archive)


def test_official_addresses_and_published_checksum():
    (voc,) = ARCHIVES["voc2012"]
    assert voc.url == (
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
        "VOCtrainval_11-May-2012.tar"
    )
    assert voc.file_hash == "6cd6e144f989b92b3379bac3b3de84fd"  # MD5
    assert all(
        a.url.startswith("http://press.liacs.nl/mirflickr/mirflickr25k.v3b/")
        for a in ARCHIVES["mirflickr25k"]
    )


def test_voc_download_extracts_a_readable_dataset(tmp_path, server):
    www, url = server
    archive = _voc_tar(tmp_path, www)
    root = tmp_path / "voc"
    extracted = download(
        "voc2012",
        str(root),
        base_url=url,
        file_hashes={"VOCtrainval_11-May-2012.tar": _sha256(archive)},
    )
    assert extracted == [str(root / "VOCdevkit")]
    assert len(voc2012.scan(str(root))) == 4
    assert not [n for n in os.listdir(root) if n.startswith(".tmp")]


def test_published_checksum_rejects_another_file(tmp_path, server):
    www, url = server
    _voc_tar(tmp_path, www)  # not the official archive: its MD5 differs
    root = tmp_path / "voc"
    with pytest.raises(DataError, match="hash does not match"):
        download("voc2012", str(root), base_url=url)
    # Nothing half-written: no archive kept, nothing extracted.
    assert os.listdir(root / "archives") == []
    assert sorted(os.listdir(root)) == ["archives"]


def test_mirflickr_needs_hashes_then_extracts_side_by_side(tmp_path, server):
    www, url = server
    with pytest.raises(DHSPSError, match="no published checksum"):
        download("mirflickr25k", str(tmp_path / "m"), base_url=url)
    assert not (tmp_path / "m").exists()
    source = tmp_path / "mir-source"
    fixtures.make_mirflickr(str(source), count=6, unlabelled=0)
    hashes = {}
    for name, folder in (
        ("mirflickr25k.zip", "mirflickr"),
        ("mirflickr25k_annotations_v080.zip", "mirflickr25k_annotations_v080"),
    ):
        path = www / name
        with zipfile.ZipFile(path, "w") as archive:
            for entry in sorted(os.listdir(source / folder)):
                archive.write(source / folder / entry, f"{folder}/{entry}")
        hashes[name] = _sha256(path)
    root = tmp_path / "m"
    download("mirflickr25k", str(root), base_url=url, file_hashes=hashes)
    collection = mirflickr.scan(str(root), num_images=6)
    assert collection.paths[0] == "mirflickr/im1.jpg"
    assert os.path.isfile(root / collection.paths[0])


def test_unreachable_server_is_a_one_line_error(tmp_path):
    with pytest.raises(DHSPSError, match="download failed"):
        download(
            "voc2012",
            str(tmp_path / "v"),
            base_url="http://127.0.0.1:9",  # discard port: refused
        )

"""Sealed records: read back only as written, or one line naming the file."""

import hashlib
import json

import pytest

from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.records import read_sealed_record
from keras_dhsps.utils.records import record_checksum
from keras_dhsps.utils.records import write_sealed_record


@pytest.fixture
def sealed(tmp_path):
    (tmp_path / "table.bin").write_bytes(b"\x00\x01\x02")
    path = tmp_path / "record.json"
    written = write_sealed_record(
        str(path), {"bits": 48, "b": [1]}, ["table.bin"]
    )
    return path, written


def test_a_sealed_record_reads_back_as_written(sealed):
    path, written = sealed
    assert read_sealed_record(str(path), "index") == written
    digest = hashlib.sha256(b"\x00\x01\x02").hexdigest()
    assert written["files"] == {"table.bin": digest}
    # The seal by hand: canonical JSON of everything but the checksum.
    body = {"b": [1], "bits": 48, "files": {"table.bin": digest}}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert written["checksum"] == hashlib.sha256(text.encode()).hexdigest()
    assert record_checksum(written) == written["checksum"]


def test_an_edited_record_is_one_line(sealed):
    path, written = sealed
    path.write_text(json.dumps({**written, "bits": 64}))
    with pytest.raises(DHSPSError, match=r"checksum mismatch \(the index was"):
        read_sealed_record(str(path), "index")


def test_a_changed_or_missing_listed_file_is_one_line(sealed):
    path, _ = sealed
    table = path.parent / "table.bin"
    table.write_bytes(b"\x00\x01\x03")
    with pytest.raises(DataError, match=r"table\.bin: checksum mismatch"):
        read_sealed_record(str(path), "manifest", error=DataError)
    table.unlink()
    with pytest.raises(DHSPSError, match=r"table\.bin: missing \(listed in"):
        read_sealed_record(str(path), "index")

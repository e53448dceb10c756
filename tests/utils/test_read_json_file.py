"""read_json_file: every JSON file a user hands over fails in one line."""

import pytest

from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file

CASES = [
    # (bytes, what the one line says after "PATH: ")
    (b'{"a": ', "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),  # not UTF-8
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # nesting too deep
    (b"[1, 2]", "not a run config (expected a JSON object)"),
]


@pytest.mark.parametrize(("content", "reason"), CASES)
def test_a_bad_file_is_one_line_naming_it(tmp_path, content, reason):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(DHSPSError) as raised:
        read_json_file(str(path), "run config", kind=dict)
    message = str(raised.value)
    assert message.startswith(f"{path}: {reason}") and "\n" not in message


def test_missing_files_and_directories_are_refused(tmp_path):
    with pytest.raises(
        DataError, match=r"^manifest not found: .*x\.json \(hint\)$"
    ):
        read_json_file(
            str(tmp_path / "x.json"),
            "manifest",
            error=DataError,
            hint=" (hint)",
        )
    with pytest.raises(DHSPSError, match="report is a directory, not a file"):
        read_json_file(str(tmp_path), "report")


def test_a_good_file_is_returned_whole(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('{"bits": 48, "shards": [1, 2]}', encoding="utf-8")
    assert read_json_file(str(path), "index", kind=dict) == {
        "bits": 48,
        "shards": [1, 2],
    }
    assert read_json_file(str(path), "anything") == {
        "bits": 48,
        "shards": [1, 2],
    }

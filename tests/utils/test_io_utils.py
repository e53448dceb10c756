"""Outputs: the umask's modes, flushed before the rename, writability
checked up front, errors naming the final path."""

import os
import stat

import pytest

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.files import current_umask
from keras_dhsps.utils.files import finish_directory
from keras_dhsps.utils.files import make_temporary_directory
from keras_dhsps.utils.files import write_json


@pytest.fixture
def umask():
    def set_mask(mask):
        os.umask(mask)
        return mask

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_files_get_the_mode_open_would_give(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    written = str(tmp_path / "report.json")
    write_json(written, {"a": 1})
    plain = str(tmp_path / "plain.txt")
    with open(plain, "w") as handle:  # the oracle: what open() gives
        handle.write("x")
    # 0o666 & ~0o022 = 0o644; & ~0o027 = 0o640; & ~0o077 = 0o600; ~0o002: 664
    assert mode(written) == mode(plain) == 0o666 & ~mask


def test_keras_style_writers_that_make_their_own_file_get_the_mode(
    tmp_path, umask
):
    umask(0o022)
    path = str(tmp_path / "model.keras")

    def write(temporary):  # like model.save: replaces the temporary file
        os.remove(temporary)
        with open(temporary, "wb") as handle:
            handle.write(b"zip")

    atomic_write(path, write)
    assert mode(path) == 0o644


def test_staged_directories_get_the_mode_mkdir_would_give(tmp_path, umask):
    umask(0o027)
    staged = make_temporary_directory(str(tmp_path), ".tmp-export-")
    assert mode(staged) == 0o750  # mkdtemp alone makes 0o700
    with open(os.path.join(staged, "saved_model.pb"), "wb") as handle:
        handle.write(b"pb")
    finish_directory(staged)
    assert mode(staged) == 0o750
    assert mode(os.path.join(staged, "saved_model.pb")) == 0o640


def test_the_file_is_flushed_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1]
    )
    monkeypatch.setattr(
        os,
        "replace",
        lambda a, b: (events.append("replace"), real_replace(a, b))[1],
    )
    write_json(str(tmp_path / "a.json"), [1])
    # The file is synced before the rename, the directory after it.
    assert events == ["fsync", "replace", "fsync"]


def test_parent_that_is_a_file_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = str(blocker / "run" / "model.keras")
    with pytest.raises(DHSPSError) as caught:
        check_writable_output(target)
    message = str(caught.value)
    assert target in message and "not a directory" in message
    with pytest.raises(DHSPSError, match="not a directory"):
        check_writable_output(str(blocker / "run"), directory=True)


def test_kind_mismatch_is_refused(tmp_path):
    with pytest.raises(DHSPSError, match="is a directory"):
        check_writable_output(str(tmp_path))
    (tmp_path / "f").write_text("x")
    with pytest.raises(DHSPSError, match="is a file"):
        check_writable_output(str(tmp_path / "f"), directory=True)
    check_writable_output(str(tmp_path / "new" / "deeper"), directory=True)
    check_writable_output(str(tmp_path / "f"))  # replacing a file is fine
    assert sorted(os.listdir(tmp_path)) == ["f"]  # the probe is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only dirs")
def test_read_only_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(DHSPSError, match="not writable"):
            check_writable_output(str(locked / "out.json"))
    finally:
        locked.chmod(0o755)


def test_write_errors_name_the_final_path_not_the_temporary(tmp_path):
    path = str(tmp_path / "codes.h5")

    def fail(temporary):
        raise PermissionError(13, "Permission denied", temporary)

    with pytest.raises(DHSPSError) as caught:
        atomic_write(path, fail)
    assert str(caught.value) == f"cannot write {path}: Permission denied"
    assert os.listdir(tmp_path) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DHSPSError) as caught:
        write_json(str(blocker / "report.json"), {})
    assert ".tmp-" not in str(caught.value)
    assert str(blocker / "report.json") in str(caught.value)


def test_an_input_error_inside_the_writer_is_not_called_a_write_error(
    tmp_path,
):
    # E.g. an unreadable image met while encoding: its own error, unchanged.
    path = str(tmp_path / "codes.h5")

    def fail(temporary):
        raise OSError(f"cannot identify image file {tmp_path / 'in.jpg'}")

    with pytest.raises(OSError, match="cannot identify image") as caught:
        atomic_write(path, fail)
    assert not isinstance(caught.value, DHSPSError)
    assert os.listdir(tmp_path) == []  # no temporary left behind

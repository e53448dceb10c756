"""An input file is a regular file, checked before anything opens it."""

import os

import pytest

from keras_dhsps.cli.main import main
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import require_file


@pytest.fixture
def fifo(tmp_path):
    path = str(tmp_path / "pipe")
    os.mkfifo(path)
    return path


def test_a_regular_file_or_a_link_to_one_passes(tmp_path):
    path = tmp_path / "codes.h5"
    path.write_bytes(b"x")
    os.symlink(path, tmp_path / "link.h5")
    require_file(str(path), "code database")
    require_file(str(tmp_path / "link.h5"), "code database")


def test_each_other_kind_of_path_is_named(tmp_path, fifo):
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    cases = {
        str(tmp_path / "absent"): "code database not found: ",
        str(tmp_path / "dangling"): "code database not found: ",
        str(tmp_path): "code database is a directory, not a file: ",
        fifo: "code database is not a regular file: ",
    }
    for path, message in cases.items():
        with pytest.raises(DHSPSError) as caught:
            require_file(path, "code database")
        assert str(caught.value) == message + path


def test_the_error_class_and_hint_are_the_callers():
    with pytest.raises(
        DataError, match=r"^list file not found: /no/x \(try\)$"
    ):
        require_file("/no/x", "list file", error=DataError, hint=" (try)")


@pytest.mark.parametrize(
    "argv, what",
    [
        (["evaluate", "{fifo}"], "model file"),
        (["index", "build", "{fifo}", "-o", "{out}"], "code database"),
        (["train", "--config", "{fifo}", "--output", "{out}"], "config file"),
    ],
)
def test_a_fifo_named_as_an_input_is_refused_not_read(
    capsys, tmp_path, fifo, argv, what
):
    # Reading a FIFO nobody writes would block the command forever.
    argv = [a.format(fifo=fifo, out=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    assert (
        capsys.readouterr().err
        == f"error: {what} is not a regular file: {fifo}\n"
    )

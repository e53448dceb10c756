"""An output never replaces an input, and --overwrite replaces only what
the product wrote (issue: nothing lost, round two)."""

import os
import shutil

import pytest

from keras_dhsps.cli.main import main
from tests.paths import FIXTURES


@pytest.fixture
def run_dir(tmp_path):
    """A run directory holding a hasher and the files of a run."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(
        os.path.join(FIXTURES, "hasher_c7958a9.keras"), run / "model.keras"
    )
    for name in ("best.keras", "history.json", "report.json"):
        (run / name).write_text("{}")
    return run


def _one_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_exporting_a_run_onto_itself_deletes_nothing(run_dir, capsys):
    before = sorted(os.listdir(run_dir))
    status = main(["export", str(run_dir), "-o", str(run_dir), "--overwrite"])
    assert status == 2
    assert "is the input" in _one_error(capsys)
    assert sorted(os.listdir(run_dir)) == before


def test_exporting_inside_the_run_is_refused(run_dir, capsys):
    output = str(run_dir / "export")
    assert main(["export", str(run_dir), "-o", output]) == 2
    assert "sits inside the input" in _one_error(capsys)


def test_overwrite_refuses_a_directory_the_product_did_not_write(
    run_dir, tmp_path, capsys
):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not ours")
    argv = ["export", str(run_dir), "-o", str(other), "--overwrite"]
    assert main(argv) == 2
    assert "is not a SavedModel written by keras_dhsps" in _one_error(capsys)
    assert (other / "holiday.jpg").read_bytes() == b"not ours"


def test_encoding_onto_the_image_list_is_refused(run_dir, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 1 0\n")
    before = listing.read_text()
    argv = ["encode", str(run_dir), str(listing), "-o", str(listing)]
    assert main(argv) == 2
    assert "is the input" in _one_error(capsys)
    assert listing.read_text() == before


def test_encoding_where_every_image_is_bad_is_an_error(
    run_dir, tmp_path, capsys
):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.jpg"):
        (images / name).write_bytes(b"not an image")
    output = tmp_path / "codes.h5"
    argv = ["encode", str(run_dir), str(images), "-o", str(output)]
    assert main([*argv, "--skip-bad-images"]) == 2
    assert "none of the 2 images could be read" in _one_error(capsys)
    assert not output.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []

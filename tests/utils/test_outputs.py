"""An output never replaces an input (keras_dhsps.utils.outputs)."""

import json
import os

import h5py
import pytest

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.outputs import check_output
from keras_dhsps.utils.outputs import refuse_overlap


@pytest.mark.parametrize(
    "output, how",
    [("run", "is"), (".", "contains"), ("run/export", "sits inside")],
)
def test_an_output_overlapping_an_input_is_refused(tmp_path, output, how):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(DHSPSError, match=f"{how} the input"):
        refuse_overlap(str(tmp_path / output), [str(run)])


def test_a_symlink_to_an_input_is_the_input(tmp_path):
    (tmp_path / "codes.h5").write_bytes(b"x")
    os.symlink(tmp_path / "codes.h5", tmp_path / "alias.h5")
    with pytest.raises(DHSPSError, match="is the input"):
        refuse_overlap(str(tmp_path / "alias.h5"), [str(tmp_path / "codes.h5")])


def test_a_sibling_sharing_a_name_prefix_is_no_overlap(tmp_path):
    (tmp_path / "run").mkdir()
    refuse_overlap(str(tmp_path / "run2"), [str(tmp_path / "run"), None])


def test_overwrite_replaces_only_what_the_product_wrote(tmp_path):
    foreign = tmp_path / "model"
    foreign.mkdir()
    (foreign / "saved_model.pb").write_bytes(b"")
    with pytest.raises(DHSPSError, match="already exists"):
        check_output(str(foreign), kind="SavedModel")
    with pytest.raises(DHSPSError, match="not a SavedModel written by"):
        check_output(str(foreign), kind="SavedModel", overwrite=True)
    extra = foreign / "assets.extra"
    extra.mkdir()
    (extra / "dhsps_metadata.json").write_text(
        json.dumps({"format": "keras_dhsps.hasher"})
    )
    check_output(str(foreign), kind="SavedModel", overwrite=True)


def test_overwrite_recognizes_its_code_databases(tmp_path):
    ours, theirs = tmp_path / "ours.h5", tmp_path / "theirs.h5"
    with h5py.File(ours, "w") as file:
        file.attrs["format"] = "keras_dhsps.codedb"
    with h5py.File(theirs, "w") as file:
        file.attrs["format"] = "something else"
    check_output(str(ours), kind="code database", overwrite=True)
    with pytest.raises(DHSPSError, match="not a code database"):
        check_output(str(theirs), kind="code database", overwrite=True)

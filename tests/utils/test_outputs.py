"""An output never replaces an input (keras_dhsps.utils.outputs)."""

import json
import os

import h5py
import pytest

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.outputs import check_output
from keras_dhsps.utils.outputs import refuse_overlap
from tests.child import run_python


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


@pytest.mark.parametrize("damage", ["heap_loop", "crashing_datatype"])
def test_overwrite_refuses_a_damaged_database_without_hanging(tmp_path, damage):
    # HDF5 loops forever or dies of SIGSEGV on these files; asking whether
    # an existing output is ours must end in the one refusal line. Run in a
    # separate interpreter so that the old code fails instead of taking
    # pytest down.
    from tests.retrieval import damaged_codedb

    path = tmp_path / "codes.h5"
    getattr(damaged_codedb, f"write_{damage}")(path)
    script = (
        "import sys\n"
        "from keras_dhsps.utils import outputs\n"
        "outputs.PROBE_LIMIT_S = 2.0\n"
        "from keras_dhsps.utils.errors import DHSPSError\n"
        "try:\n"
        "    outputs.check_output(sys.argv[1], kind='code database', "
        "overwrite=True)\n"
        "except DHSPSError as error:\n"
        "    print(error)\n"
    )
    done = run_python(script, path, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "not a code database" in lines[0]

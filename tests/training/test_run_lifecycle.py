"""A run directory has one trainer, says where it resumes, and grows by
raising train.epochs (issue: nothing lost, round two)."""

import json
import os

import pytest

from keras_dhsps.cli.main import main
from keras_dhsps.utils.locks import RunLock

TINY = [
    "--set",
    'data.options={"num_train": 64, "num_validation": 16, '
    '"num_query": 16, "num_database": 48}',
    "--set",
    "train.backbone_lr_multiplier=1.0",
    "--batch-size",
    "32",
    "--bits",
    "12",
]


def _train(run_dir, epochs, verbose="2"):
    argv = ["--verbose", verbose, "train", "--epochs", str(epochs)]
    return main([*argv, *TINY, "--output", run_dir])


def test_a_second_trainer_gets_one_line_naming_the_first(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    with RunLock(run_dir):  # another trainer, as far as this one can tell
        assert _train(run_dir, 1, verbose="0") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: {run_dir} is being trained by process {os.getpid()} on "
        f"{os.uname().nodename}; wait for it to finish or stop it first"
    ]
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))


def test_raising_epochs_extends_a_finished_run_and_keeps_its_report(
    tmp_path, caplog
):
    run_dir = str(tmp_path / "run")
    assert _train(run_dir, 1) == 0
    assert "resuming" not in caplog.text
    assert _train(run_dir, 2) == 0
    assert f"resuming {run_dir} at step 2 of 4" in caplog.text
    with open(os.path.join(run_dir, "config.json")) as handle:
        assert json.load(handle)["train"]["epochs"] == 2
    with open(os.path.join(run_dir, "history.json")) as handle:
        assert len(json.load(handle)["loss"]) == 2
    assert os.path.isfile(os.path.join(run_dir, "report.epochs-1.json"))
    assert os.path.isfile(os.path.join(run_dir, "report.json"))


@pytest.mark.parametrize("flag, value", [("--epochs", "1"), ("--bits", "16")])
def test_every_other_change_to_a_run_is_still_refused(
    tmp_path, capsys, flag, value
):
    run_dir = str(tmp_path / "run")
    assert _train(run_dir, 2, verbose="0") == 0
    with open(os.path.join(run_dir, "config.json")) as handle:
        before = handle.read()
    argv = ["--verbose", "0", "train", "--epochs", "2", *TINY, flag, value]
    assert main([*argv, "--output", run_dir]) == 2
    assert "holds a run with another config" in capsys.readouterr().err
    with open(os.path.join(run_dir, "config.json")) as handle:
        assert handle.read() == before
    assert not os.path.exists(os.path.join(run_dir, "report.epochs-2.json"))

"""The CLI end to end on a tiny digits-mosaic run, and its error lines."""

import json
import os
import subprocess
import sys

import pytest

from keras_dhsps.cli.main import main
from tests.paths import REPO

TINY = [
    "--set",
    'data.options={"num_train": 64, "num_validation": 16, '
    '"num_query": 16, "num_database": 48}',
    "--set",
    "train.backbone_lr_multiplier=1.0",
]


def run_cli(*args):
    """Runs ``python -m keras_dhsps`` in a subprocess (as a user would)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_dhsps", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_train_then_evaluate(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    status = main(
        [
            "--verbose",
            "0",
            "train",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--bits",
            "12",
            *TINY,
            "--output",
            run_dir,
        ]
    )
    assert status == 0
    for name in ("model.keras", "config.json", "history.json", "report.json"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "report.json")) as handle:
        report = json.load(handle)
    assert 0.0 <= report["metrics"]["map@all"] <= 1.0
    assert report["counts"] == {"query": 16, "database": 48}
    with open(os.path.join(run_dir, "config.json")) as handle:
        assert json.load(handle)["model"]["bits"] == 12
    capsys.readouterr()

    # evaluate reads the run's config.json: same data, same model, same value.
    out = str(tmp_path / "eval.json")
    assert main(["--verbose", "0", "evaluate", run_dir, "--output", out]) == 0
    with open(out) as handle:
        again = json.load(handle)
    assert again["metrics"]["map@all"] == pytest.approx(
        report["metrics"]["map@all"], abs=1e-9
    )
    assert "map@all" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--dataset", "mnist", "--output", "x"],
            'error: data.name="mnist" is not a known dataset; known:',
        ),
        (
            ["train", "--dataset", "lists", "--output", "x"],
            "error: dataset 'lists' needs --data-root",
        ),
        (
            [
                "train",
                "--dataset",
                "lists",
                "--data-root",
                "/no/such/dir",
                "--output",
                "x",
            ],
            "error: data root not found: /no/such/dir",
        ),
        (
            ["train", "--set", "train.epochz=1", "--output", "x"],
            "error: unknown config key 'train.epochz'",
        ),
        (
            ["evaluate", "/no/such/run"],
            "error: model file not found: /no/such/run",
        ),
        (
            ["reproduce", "/no/such/config.py", "--output", "x"],
            "error: config file not found: /no/such/config.py",
        ),
    ],
)
def test_user_errors_are_one_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert "Traceback" not in result.stderr


def test_corrupted_list_file_names_file_and_line(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "train.txt").write_text("a.png 0 1\na.png 1\n")
    result = run_cli(
        "train",
        "--dataset",
        "lists",
        "--data-root",
        str(root),
        "--output",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {root / 'train.txt'}:2: expected 3 fields (path + 2 labels), found 2"
    )


def test_train_refuses_a_table_config_in_one_line(tmp_path):
    config = os.path.join(
        REPO,
        "reproduce",
        "configs",
        "digits_mosaic.py",
    )
    result = run_cli(
        "train", "--config", config, "--output", str(tmp_path / "r")
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "get_config returned a TableConfig, expected ExperimentConfig"
    )

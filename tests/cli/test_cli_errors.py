"""Every user error is one ``error: ...`` line with exit status 2; reruns,
output checks and option spellings behave as the README says."""

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from keras_dhsps.cli.main import build_parser
from keras_dhsps.cli.main import main
from tests import dataset_trees as fixtures
from tests.paths import REPO

CONFIGS = os.path.join(
    REPO,
    "reproduce",
    "configs",
)
TINY = [
    "--set",
    'data.options={"num_train": 48, "num_validation": 8, '
    '"num_query": 8, "num_database": 24}',
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--verbose",
    "0",
]


def error_line(capsys, argv):
    """Runs the CLI; asserts status 2 and one error line; returns it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--set", "train.epochs=abc"],
            'error: train.epochs="abc" is not allowed; expected an integer',
        ),
        (
            ["--set", 'loss.params={"sof_weight": 0.2}'],
            "error: loss.params: idhn takes no parameter 'sof_weight'; "
            "allowed: beta, hard_high, hard_low, include_diagonal,",
        ),
        (
            ["--set", 'loss.params={"soft_weight": "high"}'],
            'error: loss.params.soft_weight="high" is not allowed',
        ),
        (["--bits", "0"], "error: argument --bits: expected an integer >= 1"),
        (["--bits", "-4"], "error: argument --bits: expected an integer >= 1"),
        (["--bits", "x"], "error: argument --bits: expected an integer >= 1"),
        (["--epochs", "-1"], "error: argument --epochs: expected an integer"),
        (
            ["--set", "train.epochs=0"],
            "error: train.epochs=0 is not allowed here; expected an "
            "integer >= 1",
        ),
        (
            ["--set", "train.batch_size=0"],
            "error: train.batch_size=0 is not allowed; expected an integer",
        ),
        (
            ["--set", "model.activation=relu"],
            'error: model.activation="relu" is not allowed; expected one of',
        ),
        (["--verbose", "7"], "error: argument --verbose: invalid choice: 7"),
        (["--strategy", "tpu"], "error: argument --strategy: invalid choice"),
    ],
)
def test_train_option_errors(capsys, tmp_path, argv, message):
    output = str(tmp_path / "run")
    line = error_line(capsys, ["train", "--output", output, *argv])
    assert line.startswith(message), line
    assert not os.path.exists(output)  # refused before any work


def test_reproduce_refuses_an_arg_the_table_does_not_take(capsys, tmp_path):
    line = error_line(
        capsys,
        [
            "reproduce",
            "--table",
            "paper_voc2012",
            "--full",
            "--configs-dir",
            CONFIGS,
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert line == (
        "error: unknown arg 'full'; this table takes none (the paper's "
        "table) or smoke"
    )


@pytest.fixture
def blocker(tmp_path):
    """A file where a directory is expected."""
    path = tmp_path / "file"
    path.write_text("x")
    return path


def test_unwritable_outputs_are_refused_up_front(capsys, tmp_path, blocker):
    run = str(blocker / "run")
    line = error_line(capsys, ["train", "--output", run, *TINY])
    assert line == f"error: cannot write {run}: {blocker} is not a directory"
    report = str(blocker / "report.json")
    # evaluate checks its --output before loading data or the model
    model = tmp_path / "model.keras"
    model.write_bytes(b"not a model")
    images = tmp_path / "images"  # beside the outputs, not around them
    images.mkdir()
    line = error_line(capsys, ["evaluate", str(model), "--output", report])
    assert line.startswith(f"error: cannot write {report}")
    for argv, final in [
        (["export", str(model), "-o", str(blocker / "sm")], "sm"),
        (
            ["encode", str(model), str(images), "-o", str(blocker / "c.h5")],
            "c.h5",
        ),  # fmt: skip
        (["plot", "curves", str(model), "-o", str(blocker / "p")], "p_pr.png"),
    ]:
        line = error_line(capsys, argv)
        assert line.startswith(f"error: cannot write {blocker / final}"), line
        assert ".tmp-" not in line


def test_data_prepare_output_checked_and_root_aliases(
    capsys, tmp_path, blocker
):
    fixtures.make_voc2012(str(tmp_path / "voc"), count=12)
    root = str(tmp_path / "voc")
    target = str(blocker / "manifest")
    line = error_line(
        capsys,
        [
            "data",
            "prepare",
            "--dataset",
            "voc2012",
            "--data-root",
            root,
            "--output",
            target,
        ],  # fmt: skip
    )
    assert line == f"error: cannot write {target}: {blocker} is not a directory"
    # --data-root and --root are the same option; --verbose after the verb.
    options = ["--option", "num_query=2", "--option", "num_train=6"]
    argv = ["data", "prepare", "--dataset", "voc2012", "--data-root", root]
    os.umask(old := os.umask(0o022))
    try:
        assert main([*argv, *options, "--verbose", "0"]) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    manifest = out.strip().splitlines()[-1].split()[-1]
    assert stat.S_IMODE(os.stat(manifest).st_mode) == 0o755  # not 0700
    # verify finds the manifest prepared with non-default options.
    assert main(["data", "verify", "--dataset", "voc2012", "--root", root]) == 0
    assert "verified" in capsys.readouterr().out
    # Two of them: it asks which.
    assert (
        main([*argv, "--option", "num_query=3", "--option", "num_train=6"]) == 0
    )
    capsys.readouterr()
    line = error_line(
        capsys, ["data", "verify", "--dataset", "voc2012", "--data-root", root]
    )
    assert "2 manifests of voc2012 (seed 0)" in line and "--manifest" in line


def write_lists(root):
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in (("train", 12), ("test", 4), ("database", 10)):
        lines = []
        for index in range(count):
            path = images / f"{name}_{index:03d}.png"
            pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
            lines.append(f"images/{path.name} {index % 2} {1 - index % 2}")
        (root / f"{name}.txt").write_text("\n".join(lines) + "\n")


def test_data_prepare_lists_checks_the_lists(capsys, tmp_path):
    write_lists(tmp_path)
    argv = ["data", "prepare", "--dataset", "lists", "--data-root"]
    assert main([*argv, str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # 12 training rows, 10 % carved out for validation (1), 4 queries, 10 db.
    assert "  train           11 images" in out
    assert "  query            4 images" in out
    assert "no manifest" in out
    os.remove(tmp_path / "images" / "test_002.png")
    line = error_line(capsys, [*argv, str(tmp_path)])
    assert "test_002.png" in line


def test_verbose_before_or_after_and_default_by_terminal(monkeypatch):
    parser = build_parser()
    before = parser.parse_args(["--verbose", "0", "train", "--output", "r"])
    after = parser.parse_args(["train", "--output", "r", "--verbose", "0"])
    assert before.verbose == after.verbose == 0
    nested = parser.parse_args(
        ["plot", "curves", "a", "-o", "p", "--verbose", "2"]
    )
    assert nested.verbose == 2
    seen = []
    # The train module gives each new parser its handler when it is named.
    monkeypatch.setattr(
        "keras_dhsps.cli.train.run", lambda args: seen.append(args.verbose)
    )
    assert main(["train", "--output", "r"]) == 0
    # pytest's captured stdout is not a terminal: one line per epoch, no \r.
    assert seen == [2]


def test_rerun_with_another_config_or_after_completion(capsys, tmp_path):
    run = str(tmp_path / "run")
    os.umask(old := os.umask(0o022))
    try:
        assert main(["train", "--output", run, "--bits", "8", *TINY]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    names = sorted(os.listdir(run))
    assert {"config.json", "history.json", "model.keras", "report.json"} <= set(
        names
    )
    for name in ("config.json", "model.keras", "report.json"):
        # Readable by other users, as open() would create them (umask 022).
        assert stat.S_IMODE(os.stat(os.path.join(run, name)).st_mode) == 0o644
    snapshot = {
        name: open(os.path.join(run, name), "rb").read()
        for name in names
        if os.path.isfile(os.path.join(run, name))
    }
    # The same command again: nothing to do, nothing changed.
    assert main(["train", "--output", run, "--bits", "8", *TINY]) == 0
    assert capsys.readouterr().out == (
        f"{run} is complete (config unchanged); nothing to do\n"
    )
    for name, content in snapshot.items():
        assert open(os.path.join(run, name), "rb").read() == content, name
    # Another config: refused in one line naming the differing keys.
    line = error_line(capsys, ["train", "--output", run, "--bits", "12", *TINY])
    assert line == (
        f"error: {run} holds a run with another config (model.bits: 8 -> 12); "
        "give another --output, or the same options to resume it"
    )
    assert (
        json.load(open(os.path.join(run, "config.json")))["model"]["bits"] == 8
    )


def test_progress_written_to_a_file_is_one_line_per_epoch(tmp_path):
    # Even with --verbose 1: Keras would redraw its bar with \r and colours.
    import subprocess
    import sys

    root = REPO
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:  # a file, not a terminal
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "keras_dhsps",
                "train",
                "--output",
                str(tmp_path / "run"),
                *TINY[:-2],
                "--epochs",
                "2",
                "--verbose",
                "1",
            ],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=root),
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text  # no redraws, no colour
    assert "evaluating: encoding the query and database splits" in text
    assert text.splitlines()[-1] == f"wrote {tmp_path / 'run'}"
    # TensorFlow's C++ start-up notices do not reach the terminal.
    assert "I0000" not in result.stderr and "oneDNN" not in result.stderr


def test_strategy_needing_tensorflow_is_refused_before_any_data(tmp_path):
    # Under JAX a tf.distribute strategy cannot run: one line at the start,
    # and the run directory is not claimed (no config.json written).
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND="jax")
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "keras_dhsps", "train", "--output", str(run)]
        + ["--strategy", "mirrored", "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: strategy")
    assert "KERAS_BACKEND=jax" in lines[0]
    assert not (run / "config.json").exists()

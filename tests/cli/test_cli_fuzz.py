"""Property: whatever a user types, every subcommand ends with status 0,
or with status 2 and exactly one ``error: ...`` line on stderr; never a
traceback. Hypothesis generates ``--set KEY=VALUE`` pairs over every config
field (good and bad values), bad paths and bad files.

Runs that would train are stopped before any work: their ``--output`` lies
under a file (refused up front, after the config is validated), and
downloads get an unwritable directory, so nothing reaches the network.
"""

import json
import os

import h5py
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.cli.main import main
from keras_dhsps.config import RULES
from tests.paths import REPO

CONFIGS = os.path.join(
    REPO,
    "reproduce",
    "configs",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad inputs of every kind, and a file that blocks output paths."""
    root = tmp_path_factory.mktemp("fuzz")
    blocker = root / "blocker"
    blocker.write_text("a file where a directory is expected")
    (root / "empty_dir").mkdir()
    (root / "garbage.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "empty.keras").write_bytes(b"")
    (root / "bad.json").write_text('{"metrics": ')
    (root / "list.json").write_text("[1, 2, 3]")
    (root / "config.json").write_text('{"train": {"epochs": "many"}}')
    (root / "no_curves.json").write_text('{"metrics": {"map@all": 0.5}}')
    (root / "garbage.h5").write_bytes(b"\x89HDF not hdf5")
    with h5py.File(root / "not_codes.h5", "w") as handle:
        handle["x"] = [1, 2, 3]
    (root / "syntax.py").write_text("def get_config(:\n")
    (root / "imports.py").write_text("import no_such_module_xyz\n")
    (root / "no_get_config.py").write_text("X = 1\n")
    (root / "image.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "bom.txt").write_bytes(b"\xef\xbb\xbfimages/a.jpg 1 0\n")
    (root / "run").mkdir()
    (root / "run" / "config.json").write_text("{}")
    return root


def paths(files):
    """Inputs a user could name: missing, wrong kind, garbage."""
    names = [
        "missing/nothing",
        "blocker",
        "empty_dir",
        "garbage.keras",
        "empty.keras",
        "bad.json",
        "list.json",
        "config.json",
        "no_curves.json",
        "garbage.h5",
        "not_codes.h5",
        "image.jpg",
        "bom.txt",
        "run",
        "syntax.py",
    ]
    return st.sampled_from([str(files / name) for name in names])


def outputs(files):
    return st.sampled_from(
        [str(files / "blocker" / "out"), str(files / "blocker" / "x.json")]
    )


KEYS = sorted(RULES) + [
    "loss.params.beta",
    "loss.params.sof_weight",
    "loss.params.quantization_weight",
    "data.options.num_train",
    "data.options.colour",
    "train.epochz",
    "model.bits.deep",
    "nope",
    "",
]
NAMES = [
    "idhn",
    "dpsh",
    "csq",
    "tanh",
    "relu",
    "small_cnn",
    "vgg16",
    "digits-mosaic",
    "voc2012",
    "lists",
    "step",
    "cosine",
    "float32",
    "auto",
    "memory",
    "direct",
    "all",
]
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(NAMES)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["beta", "sof_weight", "num_train", "x"]),
            inner,
            max_size=2,
        )
    ),
    max_leaves=4,
)
raw_values = (
    json_values.map(json.dumps)
    | st.text(max_size=8)
    | st.sampled_from(NAMES + ["[1,", "{", "1e999", "0x10"])
)
assignments = st.lists(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), raw_values),
    max_size=3,
)


def with_sets(sets):
    return [token for value in sets for token in ("--set", value)]


small_ints = st.sampled_from(["-3", "0", "1", "5", "x", "2.5"])


@st.composite
def command_lines(draw, files):
    """One generated command line for one of the subcommands."""
    path = paths(files)
    sets = with_sets(draw(assignments))
    kind = draw(
        st.sampled_from(
            [
                "train",
                "evaluate",
                "reproduce",
                "export",
                "encode",
                "search",
                "plot curves",
                "plot examples",
                "index build",
                "index shards",
                "data prepare",
                "data verify",
                "data download",
            ]
        )
    )
    if kind == "train":
        argv = ["train", "--output", draw(outputs(files)), *sets]
        if draw(st.booleans()):
            argv += ["--config", draw(path)]
        if draw(st.booleans()):
            argv += ["--bits", draw(small_ints)]
        if draw(st.booleans()):
            argv += ["--dataset", draw(st.sampled_from(NAMES))]
    elif kind == "evaluate":
        argv = ["evaluate", draw(path), "--output", draw(outputs(files))]
        argv += sets
    elif kind == "reproduce":
        table = draw(st.sampled_from(["digits_mosaic", "paper_voc2012", "x"]))
        argv = ["reproduce", "--table", table, "--configs-dir", CONFIGS]
        argv += draw(st.sampled_from([[], ["--smoke"], ["--full"]]))
        argv += ["--output", str(files / "blocker" / "results"), *sets]
    elif kind == "export":
        output = draw(st.sampled_from([str(files / "sm"), str(files / "run")]))
        argv = ["export", draw(path), "-o", output]
        argv += draw(st.sampled_from([[], ["--resize-to", "0", "4"]]))
    elif kind == "encode":
        argv = ["encode", draw(path), draw(path), "-o", str(files / "c.h5")]
        argv += ["--batch-size", draw(small_ints)]
    elif kind == "search":
        argv = ["search", draw(path), draw(path), draw(path)]
        argv += ["-k", draw(small_ints)]
        if draw(st.booleans()):
            argv += ["--radius", draw(small_ints)]
    elif kind == "plot curves":
        argv = ["plot", "curves", draw(path), draw(path)]
        argv += [
            "-o",
            draw(
                st.sampled_from(
                    [str(files / "p"), *draw(outputs(files)).split()]
                )
            ),
        ]  # noqa: E501
        argv += ["--format", draw(st.sampled_from(["png", "gif", ",", "pdf"]))]
    elif kind == "plot examples":
        argv = ["plot", "examples", draw(path), draw(path)]
        argv += ["-o", str(files / "e"), "-n", draw(small_ints)]
    elif kind == "index build":
        output = draw(st.sampled_from(["idx", "blocker/idx", "run"]))
        argv = ["index", "build", draw(path), "-o", str(files / output)]
        argv += ["--method", draw(st.sampled_from(["mih", "flat", "lsh"]))]
        if draw(st.booleans()):
            argv += ["--num-substrings", draw(small_ints)]
    elif kind == "index shards":
        output = draw(st.sampled_from(["m.json", "bad.json", "m.txt", "run"]))
        argv = ["index", "shards", draw(path), draw(path)]
        argv += ["-o", str(files / output)]
        argv += draw(st.sampled_from([[], ["--overwrite"]]))
    else:
        verb = kind.split()[1]
        root = draw(
            st.sampled_from([*draw(outputs(files)).split(), draw(path)])
        )
        if verb == "download":
            root = str(files / "blocker" / "downloads")
        dataset = draw(st.sampled_from(["voc2012", "mirflickr25k", "lists"]))
        argv = ["data", verb, "--dataset", dataset, "--data-root", root]
        options = (
            [] if verb == "download" else draw(st.lists(raw_values, max_size=2))
        )
        for value in options:
            key = draw(st.sampled_from(["num_query", "num_labels", "x", ""]))
            argv += ["--option", f"{key}={value}"]
    if draw(st.booleans()):
        argv += ["--verbose", draw(st.sampled_from(["0", "2", "9"]))]
    return argv


def check(argv, capsys):
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, argv
    assert status in (0, 2), (argv, status)
    if status == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, (argv, captured.err)
        assert lines[0].startswith("error: "), (argv, captured.err)


SETTINGS = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)


@pytest.fixture(scope="module")
def tensorflow_loaded():
    # The TensorFlow import (seconds) is paid once, not by one example.
    import tensorflow  # noqa: F401


@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_every_subcommand_ends_in_a_result_or_one_error_line(
    files, capsys, tensorflow_loaded, data
):
    check(data.draw(command_lines(files)), capsys)


@pytest.mark.slow
@settings(max_examples=1500, **SETTINGS)
@given(data=st.data())
def test_every_subcommand_fuzzed_longer(files, capsys, tensorflow_loaded, data):
    check(data.draw(command_lines(files)), capsys)

"""A fuzz of file contents: every kind of file the product reads, mutated,
ends in success or in one DHSPSError line, never another exception.

A few hundred examples run in ``make test``; ``-m slow`` runs many more.
"""

import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import from_dict
from keras_dhsps.config import to_dict
from keras_dhsps.data.listfile import read_list_file
from keras_dhsps.data.manifest import read_record
from keras_dhsps.experiments.table_config import load_table_config
from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.collection import open_collection
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.index_directory import build_index
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.training.callbacks import read_history
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file
from tests.paths import CONFIGS
from tests.paths import FIXTURES

EXAMPLES = int(os.environ.get("DHSPS_FUZZ_EXAMPLES", "40"))
#: make test runs the same examples every time (CI must not flake); the
#: slow run explores new ones.
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize="DHSPS_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: JSON values a mutation may put anywhere.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _outcome(call):
    """Runs ``call``: success, or one DHSPSError line (anything else fails
    the test with its traceback)."""
    try:
        call()
    except DHSPSError as error:
        assert "\n" not in str(error).strip(), str(error)


def _mutate_bytes(data: bytes, draw) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "insert"]))
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if how == "truncate":
        return data[:at]
    junk = draw(st.binary(min_size=1, max_size=16))
    if how == "flip":
        return data[:at] + junk + data[at + len(junk) :]
    return data[:at] + junk + data[at:]


def _mutate_json(value, draw):
    """Replaces, deletes or adds one entry somewhere in a JSON value."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        choice = draw(st.sampled_from(["recurse", "replace", "delete"]))
        if choice == "delete":
            del copy[key]
        elif choice == "replace":
            copy[key] = draw(JSON_VALUES)
        else:
            copy[key] = _mutate_json(value[key], draw)
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        copy = list(value)
        at = draw(st.integers(0, len(copy) - 1))
        copy[at] = _mutate_json(copy[at], draw)
        return copy
    return draw(JSON_VALUES)


@FUZZ
@given(data=st.data())
def test_fuzzed_run_config(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("run") / "config.json"
    value = _mutate_json(to_dict(ExperimentConfig()), data.draw)
    path.write_text(json.dumps(value))
    _outcome(lambda: from_dict(read_json_file(str(path), "run config")))


@FUZZ
@given(data=st.data())
def test_fuzzed_history(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("run") / "history.json"
    history = {"loss": [0.5, 0.4], "val_map": [0.1, 0.2]}
    text = json.dumps(_mutate_json(history, data.draw))
    if data.draw(st.booleans()):
        text = _mutate_bytes(text.encode(), data.draw).decode("latin-1")
    path.write_text(text, encoding="latin-1")
    _outcome(lambda: read_history(str(path), data.draw(st.integers(0, 3))))


def _database(path):
    codes = np.random.default_rng(0).uniform(-1, 1, (5, 12))
    batch = CodeBatch(codes=codes, paths=list("abcde"), labels=np.eye(5)[:, :3])
    write_code_database(
        str(path), [batch], bits=12, num_classes=3, chunk_rows=8
    )


H5_CHANGES = {
    "delete": lambda h, name, value: h.__delitem__(name),
    "retype": lambda h, name, value: (
        h.__delitem__(name),
        h.create_dataset(name, data=np.asarray(value)),
    ),
    "attr": lambda h, name, value: h.attrs.__setitem__(name, json.dumps(value)),
}


@FUZZ
@given(data=st.data())
def test_fuzzed_code_database(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("db") / "codes.h5"
    _database(path)
    if data.draw(st.booleans()):
        path.write_bytes(_mutate_bytes(path.read_bytes(), data.draw))
    else:
        with h5py.File(path, "r+") as handle:
            names = ["codes", "paths", "labels", "skipped_paths"]
            name = data.draw(st.sampled_from(names + ["bits", "metadata"]))
            how = data.draw(st.sampled_from(sorted(H5_CHANGES)))
            if name in ("bits", "metadata"):
                how = "attr"
            value = data.draw(
                st.lists(st.integers(-3, 300), min_size=0, max_size=6)
            )
            if how != "attr" or name in ("bits", "metadata"):
                H5_CHANGES[how](handle, name, value)
    _outcome(lambda: read_code_database(str(path), relaxed=True))


@FUZZ
@given(data=st.data())
def test_fuzzed_keras_archive(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    source = os.path.join(FIXTURES, "hasher_c7958a9.keras")
    if data.draw(st.booleans()):
        with open(source, "rb") as file:
            path.write_bytes(_mutate_bytes(file.read(), data.draw))
    else:
        with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
            for item in old.infolist():
                content = old.read(item.filename)
                if item.filename == "config.json":
                    value = _mutate_json(json.loads(content), data.draw)
                    content = json.dumps(value).encode()
                new.writestr(item, content)
    _outcome(
        lambda: load_hasher(str(path)).codes(np.zeros((1, 8, 8, 3), np.uint8))
    )


@FUZZ
@given(data=st.data())
def test_fuzzed_list_file(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("lists")
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(b"")
    text = b"a.png 1 0 1\nb.png 0 1 0\n"
    path = root / "list.txt"
    path.write_bytes(_mutate_bytes(text, data.draw))
    _outcome(lambda: read_list_file(str(path), root=str(root)))


@FUZZ
@given(data=st.data())
def test_fuzzed_manifest_record(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("manifest")
    record = {"format_version": 1, "splits": {"train": {"images": 2}}}
    text = json.dumps(_mutate_json(record, data.draw))
    (directory / "manifest.json").write_text(text)
    _outcome(lambda: read_record(str(directory)))


@FUZZ
@given(data=st.data())
def test_fuzzed_table_config(tmp_path_factory, data):
    with open(os.path.join(CONFIGS, "digits_mosaic.py"), "rb") as file:
        source = file.read()
    path = tmp_path_factory.mktemp("tables") / "table.py"
    path.write_bytes(_mutate_bytes(source, data.draw))
    _outcome(lambda: load_table_config(f"{path}:smoke"))


def _search(path):
    """Opens ``path`` as ``dhsps search`` does and asks every kind of query."""
    collection = open_collection(str(path), backend="numpy")
    queries = np.zeros((2, 2), np.uint8)
    collection.index.search(queries, 3)
    collection.index.range_search(queries, 2)


@pytest.fixture(scope="module")
def collections(tmp_path_factory):
    """Two code databases, their shard manifest and index directories."""
    root = tmp_path_factory.mktemp("collections")
    parts = [str(root / f"part{i}.h5") for i in range(2)]
    for path in parts:
        _database(path)
    write_shard_manifest(str(root / "shards.json"), parts)
    build_index(parts[0], str(root / "one.index"), method="mih")
    build_index(str(root / "shards.json"), str(root / "shards.index"))
    return root


def _mutated_copy(source, target, data):
    """``source``'s bytes into ``target``: JSON mutated as a value, anything
    else as bytes."""
    content = source.read_bytes()
    if source.suffix == ".json" and data.draw(st.booleans()):
        mutated = _mutate_json(json.loads(content), data.draw)
        target.write_text(json.dumps(mutated))
    else:
        target.write_bytes(_mutate_bytes(content, data.draw))


@FUZZ
@given(data=st.data())
def test_fuzzed_shard_manifest(collections, tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("manifest")
    for name in ("part0.h5", "part1.h5"):
        os.symlink(collections / name, directory / name)
    _mutated_copy(collections / "shards.json", directory / "s.json", data)
    _outcome(lambda: _search(directory / "s.json"))


@FUZZ
@given(data=st.data())
def test_fuzzed_index_directory(collections, tmp_path_factory, data):
    source = collections / data.draw(st.sampled_from(["one", "shards"]))
    source = source.with_suffix(".index")
    target = tmp_path_factory.mktemp("index") / "copy.index"
    shutil.copytree(source, target)
    files = sorted(p.relative_to(target) for p in target.rglob("*.*"))
    chosen = data.draw(st.sampled_from(files))
    _mutated_copy(source / chosen, target / chosen, data)
    _outcome(lambda: _search(target))


@FUZZ
@given(data=st.data())
def test_fuzzed_saved_hamming_index(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("npz") / "index.npz"
    index = HammingIndex(12, backend="numpy")
    index.add(np.arange(40, dtype=np.uint8).reshape(20, 2))
    index.save(str(path))
    path.write_bytes(_mutate_bytes(path.read_bytes(), data.draw))
    _outcome(
        lambda: HammingIndex.load(str(path)).search(
            np.zeros((1, 2), np.uint8), 3
        )
    )


@pytest.mark.slow
def test_many_more_examples():
    """``-m slow``: the same fuzz with 20x the examples."""
    import subprocess
    import sys

    env = dict(os.environ, DHSPS_FUZZ_EXAMPLES=str(EXAMPLES * 20))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
        ],
        env=env,
        timeout=3600,
    )
    assert done.returncode == 0

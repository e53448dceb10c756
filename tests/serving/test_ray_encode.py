"""dhsps encode --engine ray: local Ray with 1 and 2 workers gives the
one-process encode's codes row for row, as shards read back as one;
--shard I/N pieces listed by ``dhsps index shards`` join into the whole;
bad input is one error line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_dhsps.cli.main import main
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.shards import read_sharded_database
from keras_dhsps.serving import ray_encode
from keras_dhsps.serving.ray_encode import RayOptions
from keras_dhsps.serving.ray_encode import encode_on_ray
from keras_dhsps.serving.ray_encode import shard_rows
from keras_dhsps.training import multihost
from keras_dhsps.utils.errors import DataError
from tests.paths import FIXTURES

KERAS_FILE = os.path.join(FIXTURES, "hasher_c7958a9.keras")  # 16 bits, 32x32
COUNT = 30


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """30 images of several sizes in a labelled list file, and the
    one-process encode of it (with relaxed codes)."""
    root = tmp_path_factory.mktemp("ray")
    generator = np.random.default_rng(0)
    lines = []
    for number in range(COUNT):
        shape = (28 + number % 7, 36, 3)
        pixels = generator.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"im{number:02d}.png")
        lines.append(f"im{number:02d}.png {number % 2} {int(number % 3 == 0)}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    reference = str(root / "local.h5")
    args = ["--verbose", "0", "encode", KERAS_FILE, str(root / "list.txt")]
    assert main([*args, "-o", reference, "--store-relaxed"]) == 0
    return root, read_code_database(reference, relaxed=True)


def assert_same_database(got, expected):
    assert list(got.paths) == list(expected.paths)
    np.testing.assert_array_equal(got.packed, expected.packed)
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_allclose(got.relaxed, expected.relaxed, atol=1e-6)


def test_one_ray_worker_from_the_command_line(collection, tmp_path, capsys):
    root, expected = collection
    manifest = str(tmp_path / "codes.json")
    args = ["--verbose", "0", "encode", KERAS_FILE, str(root / "list.txt")]
    args += ["-o", manifest, "--store-relaxed", "--engine", "ray"]
    assert main([*args, "--num-workers", "1", "--batch-size", "8"]) == 0
    assert "30 codes of 16 bits in 1 shard(s) with labels" in (
        capsys.readouterr().out
    )
    assert sorted(os.listdir(tmp_path)) == ["codes-00000.h5", "codes.json"]
    with open(manifest) as handle:
        listed = json.load(handle)
    assert listed["format"] == "keras_dhsps.retrieval.shards"  # the one
    assert listed["bits"] == 16 and listed["shards"][0]["rows"] == COUNT
    assert listed["shards"][0]["path"] == "codes-00000.h5"
    assert_same_database(
        read_sharded_database(manifest, relaxed=True), expected
    )


def test_two_ray_workers_write_several_shards(collection, tmp_path):
    root, expected = collection
    paths, labels = list(expected.paths), expected.labels
    manifest = str(tmp_path / "codes.json")
    options = RayOptions(num_workers=2, batch_size=4, rows_per_shard=10)
    summary = encode_on_ray(
        KERAS_FILE,
        paths,
        manifest,
        labels=labels,
        options=options,
        store_relaxed=True,
    )
    assert summary["encoded"] == COUNT and summary["shards"] >= 2
    assert_same_database(
        read_sharded_database(manifest, relaxed=True), expected
    )


def test_shards_of_the_command_line_join_into_the_whole(collection, tmp_path):
    root, expected = collection
    pieces = []
    for index in range(3):
        pieces.append(str(tmp_path / f"piece{index}.h5"))
        args = ["--verbose", "0", "encode", KERAS_FILE, str(root / "list.txt")]
        args += ["-o", pieces[-1], "--store-relaxed", "--shard", f"{index}/3"]
        assert main(args) == 0
    rows = [len(read_code_database(piece)) for piece in pieces]
    assert rows == [10, 10, 10]
    assert read_code_database(pieces[1]).metadata["first_row"] == 10
    manifest = str(tmp_path / "all.json")
    assert main(["index", "shards", *pieces, "-o", manifest]) == 0
    assert_same_database(
        read_sharded_database(manifest, relaxed=True), expected
    )


def test_shard_rows_are_contiguous_and_cover_everything():
    for count in (0, 1, 7, 30):
        for total in (1, 2, 3, 8):
            pieces = [shard_rows(count, (i, total)) for i in range(total)]
            assert [r for p in pieces for r in p] == list(range(count))


def error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize("shard", ["3/3", "1", "0/0", "a/b"])
def test_a_bad_shard_is_one_line(collection, tmp_path, capsys, shard):
    root, _ = collection
    args = ["encode", KERAS_FILE, str(root), "-o", str(tmp_path / "x.h5")]
    assert main([*args, "--shard", shard]) == 2
    assert "--shard expects I/N" in error_line(capsys)


def test_an_unreachable_ray_address_times_out_in_one_line(
    collection, tmp_path, capsys, monkeypatch
):
    root, _ = collection
    wait = multihost.wait_for_address
    monkeypatch.setattr(
        multihost,
        "wait_for_address",
        lambda address, timeout_s, **kw: wait(address, 1, **kw),
    )
    args = ["encode", KERAS_FILE, str(root), "-o", str(tmp_path / "c.json")]
    args += ["--engine", "ray", "--address", "127.0.0.1:9"]
    assert main(args) == 2
    line = error_line(capsys)
    assert "Ray cluster 127.0.0.1:9 did not answer within 1 s" in line
    assert not os.listdir(tmp_path)


def test_ray_output_must_be_a_manifest(collection, tmp_path, capsys):
    root, _ = collection
    args = ["encode", KERAS_FILE, str(root), "-o", str(tmp_path / "c.h5")]
    assert main([*args, "--engine", "ray"]) == 2
    assert "name it *.json" in error_line(capsys)


def test_unreadable_rows_fail_or_are_skipped():
    paths = ["a.png", "b.png", "c.png"]
    batch = (
        np.array([0, 1, 2]),
        np.ones((3, 4), np.float32),
        np.array(["", "broken file", ""], dtype=object),
    )
    with pytest.raises(DataError, match="b.png: cannot read image"):
        list(ray_encode._checked([batch], paths, False, []))
    skipped = []
    kept = list(ray_encode._checked([batch], paths, True, skipped))
    assert skipped == [1]
    assert [list(p) for p, _ in kept] == [[0, 2]]


def test_a_ray_output_replaces_only_what_encode_wrote(tmp_path):
    # The manifest and the shards beside it are checked before any work:
    # a user's file named like a shard is never replaced.
    manifest = tmp_path / "codes.json"
    assert ray_encode.outputs_of_encode(str(tmp_path / "c.h5")) == [
        (str(tmp_path / "c.h5"), "code database")
    ]
    (tmp_path / "codes-00000.h5").write_text("a user's file")
    (tmp_path / "codes-x.h5").write_text("not a shard name")
    assert ray_encode.outputs_of_encode(str(manifest)) == [
        (str(manifest), "shard manifest"),
        (str(tmp_path / "codes-00000.h5"), "code database"),
    ]
    args = ["--verbose", "0", "encode", KERAS_FILE, str(tmp_path)]
    assert main([*args, "-o", str(manifest), "--engine", "ray"]) == 2
    assert (tmp_path / "codes-00000.h5").read_text() == "a user's file"

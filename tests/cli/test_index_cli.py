"""``dhsps index build`` and ``dhsps index shards`` through their parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_dhsps.cli.main import build_parser
from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.index_directory import open_index
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.utils.codes import unpack_codes
from keras_dhsps.utils.errors import DHSPSError

BITS = 32


def run(argv):
    """``dhsps ARGV`` through the real command line; user errors raise."""
    assert argv[0] == "index"
    args = build_parser().parse_args(argv)
    args.handler(args)


def write_database(path, packed):
    write_code_database(
        str(path),
        [
            CodeBatch(
                codes=unpack_codes(packed, BITS),
                paths=[f"im{i}.png" for i in range(len(packed))],
            )
        ],
        bits=BITS,
    )
    return str(path)


@pytest.fixture
def databases(tmp_path):
    rng = np.random.default_rng(0)
    parts = [
        np.packbits(rng.integers(0, 2, (n, BITS), dtype=np.uint8), axis=1)
        for n in (90, 40)
    ]
    files = [
        write_database(tmp_path / f"c{i}.h5", p) for i, p in enumerate(parts)
    ]
    return tmp_path, parts, files


def test_build_and_open(databases, capsys):
    tmp_path, parts, files = databases
    output = str(tmp_path / "index")
    run(["index", "build", files[0], "-o", output, "--num-substrings", "2"])
    assert capsys.readouterr().out.strip() == (
        f"wrote {output}: 90 32-bit codes, method mih"
    )
    index = open_index(output)
    assert index.method == "mih" and index.num_substrings == 2
    flat = HammingIndex(BITS)
    flat.add(parts[0])
    for a, b in zip(
        flat.search(parts[1], 7), index.search(parts[1], 7), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    run(
        [
            "index",
            "build",
            files[0],
            "-o",
            str(tmp_path / "f"),
            "--method",
            "flat",
        ]
    )
    assert open_index(str(tmp_path / "f")).method == "flat"


def test_shards_then_build(databases, capsys):
    tmp_path, parts, files = databases
    manifest = str(tmp_path / "shards.json")
    run(["index", "shards", *files, "-o", manifest])
    assert capsys.readouterr().out.strip() == (
        f"wrote {manifest}: 2 shards, 130 codes"
    )
    assert (
        len(json.loads((tmp_path / "shards.json").read_text())["shards"]) == 2
    )
    output = str(tmp_path / "index")
    run(["index", "build", manifest, "-o", output])
    assert "130 32-bit codes in 2 shards" in capsys.readouterr().out
    index = open_index(output)
    assert isinstance(index, ShardedIndex) and index.ntotal == 130


def test_errors(databases):
    tmp_path, _, files = databases
    with pytest.raises(DHSPSError, match="ends in .json"):
        run(["index", "shards", files[0], "-o", str(tmp_path / "m.txt")])
    with pytest.raises(DHSPSError, match="code database not found"):
        run(
            [
                "index",
                "build",
                str(tmp_path / "no.h5"),
                "-o",
                str(tmp_path / "i"),
            ]
        )
    with pytest.raises(DHSPSError, match="num_substrings"):
        run(
            [
                "index",
                "build",
                files[0],
                "-o",
                str(tmp_path / "i"),
                "--num-substrings",
                "33",
            ]
        )
    (tmp_path / "file").write_text("")
    with pytest.raises(DHSPSError, match="it is a file"):
        run(["index", "build", files[0], "-o", str(tmp_path / "file")])
    with pytest.raises(SystemExit):
        run(["index", "build", files[0], "-o", "x", "--num-substrings", "0"])
    with pytest.raises(SystemExit):
        run(["index", "build", files[0], "-o", "x", "--method", "lsh"])
    assert not (tmp_path / "i").exists()


def test_a_manifest_replaces_only_a_manifest(databases):
    # A user's JSON file is never replaced by a manifest; an earlier
    # manifest is, with --overwrite.
    tmp_path, _, files = databases
    theirs = tmp_path / "notes.json"
    theirs.write_text('{"mine": true}')
    for extra in ([], ["--overwrite"]):
        with pytest.raises(DHSPSError, match="notes.json"):
            run(["index", "shards", *files, "-o", str(theirs), *extra])
    assert json.loads(theirs.read_text()) == {"mine": True}
    ours = str(tmp_path / "codes.json")
    run(["index", "shards", *files, "-o", ours])
    with pytest.raises(DHSPSError, match="already exists"):
        run(["index", "shards", files[0], "-o", ours])
    run(["index", "shards", files[0], "-o", ours, "--overwrite"])
    assert len(json.loads(open(ours).read())["shards"]) == 1
    with pytest.raises(DHSPSError, match="may not replace an input"):
        run(["index", "build", files[0], "-o", files[0]])

"""End to end: dhsps export / encode / search / plot on a tiny hasher."""

from __future__ import annotations

import json
import os
import stat

import keras
import numpy as np
import pytest
from PIL import Image

from keras_dhsps.cli.main import main
from keras_dhsps.metrics import retrieval_report
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.utils.codes import hamming_distances
from keras_dhsps.utils.files import write_json

BITS = 16


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    keras.utils.set_random_seed(3)
    model = build_hasher("small_cnn", BITS)
    run = root / "run"
    run.mkdir()
    model.save(str(run / "model.keras"))
    write_json(str(run / "config.json"), {"model": {"backbone": "small_cnn"}})
    images = root / "images"
    images.mkdir()
    lines = []
    for i in range(10):
        # Colour ramps and stripes of several sizes: the untrained codes
        # differ (distances 0..5) yet keep a few exact ties.
        height = 30 + i
        yy, xx = np.mgrid[0:height, 0:34]
        pixels = np.zeros((height, 34, 3))
        pixels[..., i % 3] = 255 * i / 9
        pixels[..., (i + 1) % 3] = (
            255 * ((xx * (i + 1) + yy * (9 - i)) % 32) / 31
        )
        Image.fromarray(pixels.astype(np.uint8)).save(images / f"im{i}.png")
        lines.append(f"images/im{i}.png {i % 2} {int(i % 3 == 0)}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root, model


def test_export_encode_search(workspace, capsys):
    root, model = workspace
    saved = root / "saved"
    assert (
        main(["--verbose", "0", "export", str(root / "run"), "-o", str(saved)])
        == 0
    )
    assert "endpoints serve, encode" in capsys.readouterr().out
    # Shareable: the folder gets mkdir's mode under the umask (not 0700).
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o777 & ~umask
    codes = root / "codes.h5"
    assert (
        main(
            [
                "--verbose",
                "0",
                "encode",
                str(saved),
                str(root / "images"),
                "-o",
                str(codes),
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    assert "10 codes of 16 bits" in capsys.readouterr().out
    db = read_code_database(str(codes))
    assert db.labels is None and db.metadata["backbone"] == "small_cnn"
    query = root / "images" / "im4.png"
    assert (
        main(
            [
                "search",
                str(root / "run" / "model.keras"),
                str(codes),
                str(query),
                "-k",
                "4",
                "--backend",
                "numpy",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"query {query}"
    ranked = [line.split() for line in out[2:]]
    assert [int(r[0]) for r in ranked] == [1, 2, 3, 4]
    # Oracle: distances of the query's own code to every database code,
    # sorted stably (ties by database index).
    own = db.paths.index(str(query))
    dist = hamming_distances(db.packed[own : own + 1], db.packed)[0]
    order = np.argsort(dist, kind="stable")[:4]
    assert [r[2] for r in ranked] == [db.paths[i] for i in order]
    assert [int(r[1]) for r in ranked] == dist[order].tolist()
    assert dist[order][0] == 0  # the query itself is in the database
    assert len(set(dist.tolist())) >= 3  # codes differ: the order is tested
    # Radius mode prints only items with d <= radius.
    assert (
        main(
            [
                "search",
                str(root / "run"),
                str(codes),
                str(query),
                "--radius",
                "0",
                "-k",
                "50",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    within = int(np.count_nonzero(dist == 0))
    # Says how many codes were within the radius (all shown: k=50).
    assert lines[1] == f"{within} codes within radius 0"
    ranked = [line.split() for line in lines[3:]]
    assert {r[2] for r in ranked} == {
        db.paths[i] for i in np.flatnonzero(dist == 0)
    }
    # With k below that count it says how many it shows.
    radius = int(dist.max())
    args = ["search", str(root / "run"), str(codes), str(query)]
    assert main([*args, "--radius", str(radius), "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"{len(dist)} codes within radius {radius}; showing the first 2 (-k)"
    )
    assert len(lines) == 3 + 2


def test_encode_list_file_with_broken_image(workspace, capsys):
    root, _ = workspace
    broken = root / "images" / "im7.png"
    original = broken.read_bytes()
    broken.write_bytes(b"not an image at all")
    try:
        codes = root / "listed.h5"
        status = main(
            [
                "--verbose",
                "0",
                "encode",
                str(root / "run"),
                str(root / "list.txt"),
                "-o",
                str(codes),
            ]
        )
        assert status == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert "im7.png: cannot decode image" in err[0]
        assert not codes.exists()
        assert (
            main(
                [
                    "--verbose",
                    "0",
                    "encode",
                    str(root / "run"),
                    str(root / "list.txt"),
                    "-o",
                    str(codes),
                    "--skip-bad-images",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "skipped 1 unreadable image(s)" in out and "im7.png" in out
        db = read_code_database(str(codes))
        assert len(db) == 9 and db.labels.shape == (9, 2)
        # Row i of the labels is still image i's labels ("i % 2", "i % 3 == 0").
        for path, row in zip(db.paths, db.labels, strict=True):
            i = int(path.rsplit("im", 1)[1].split(".")[0])
            assert row.tolist() == [i % 2, int(i % 3 == 0)]
    finally:
        broken.write_bytes(original)


def test_cli_user_errors(workspace, capsys):
    root, _ = workspace
    assert (
        main(["search", str(root / "run"), str(root / "nope.h5"), "q.png"]) == 2
    )
    assert "code database not found" in capsys.readouterr().err
    assert (
        main(
            [
                "encode",
                str(root / "run"),
                str(root / "missing"),
                "-o",
                str(root / "x.h5"),
            ]
        )
        == 2
    )
    assert "no such image directory or list file" in capsys.readouterr().err
    assert (
        main(
            [
                "plot",
                "curves",
                str(root / "none.json"),
                "-o",
                str(root / "p"),
                "--format",
                "gif",
            ]
        )
        == 2
    )
    assert "--format" in capsys.readouterr().err
    # A 12-bit database cannot be searched with the 16-bit model.
    from keras_dhsps.retrieval.codedb import CodeBatch
    from keras_dhsps.retrieval.codedb import write_code_database

    other = root / "bits12.h5"
    write_code_database(
        str(other), [CodeBatch(np.ones((1, 12)), ["a.png"])], bits=12
    )
    assert (
        main(
            [
                "search",
                str(root / "run"),
                str(other),
                str(root / "images" / "im0.png"),
            ]
        )
        == 2
    )
    assert "makes 16-bit codes but" in capsys.readouterr().err


def test_plot_curves_and_examples(workspace, capsys, tmp_path):
    root, _ = workspace
    rng = np.random.default_rng(1)
    labels_q = rng.integers(0, 2, (10, 3)).astype(np.uint8)
    labels_d = rng.integers(0, 2, (40, 3)).astype(np.uint8)
    paths = []
    for seed in (1, 2):
        report = retrieval_report(
            rng.normal(size=(10, 8)),
            labels_q,
            rng.normal(size=(40, 8)),
            labels_d,
        )
        (tmp_path / f"m{seed}").mkdir()
        path = tmp_path / f"m{seed}" / "report.json"
        path.write_text(json.dumps(report))
        paths.append(str(path))
    assert main(["plot", "curves", *paths, "-o", str(tmp_path / "cmp")]) == 0
    for name in (
        "cmp_pr.png",
        "cmp_pr.pdf",
        "cmp_precision_at_n.png",
        "cmp_precision_at_n.pdf",
    ):
        assert (tmp_path / name).stat().st_size > 1000
    # Examples from two code databases encoded with labels.
    codes = root / "examples_db.h5"
    assert (
        main(
            [
                "--verbose",
                "0",
                "encode",
                str(root / "run"),
                str(root / "list.txt"),
                "-o",
                str(codes),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "plot",
                "examples",
                str(codes),
                str(codes),
                "-n",
                "2",
                "-k",
                "3",
                "-o",
                str(tmp_path),
                "--format",
                "png",
            ]
        )
        == 0
    )
    assert (
        capsys.readouterr().out.strip() == f"wrote {tmp_path / 'examples.png'}"
    )
    image = Image.open(tmp_path / "examples.png")
    # 4 columns of 1.6 in, 2 rows of 2.0 in (room for the names), 120 dpi.
    assert image.size == (int(4 * 1.6 * 120), int(2 * 2.0 * 120))


def encode_images(root):
    """``dhsps encode`` of the workspace's images, without ``-o``."""
    return ["--verbose", "0", "encode", str(root / "run"), str(root / "images")]


def test_search_reads_manifests_and_index_directories_alike(
    workspace, tmp_path, capsys
):
    # One collection as a code database, as two --shard pieces listed by a
    # manifest, and as index directories (mih) of both: dhsps search prints
    # the same ranked paths and distances for each.
    root, _ = workspace
    encode = encode_images(root)
    whole = str(tmp_path / "codes.h5")
    assert main([*encode, "-o", whole]) == 0
    pieces = [str(tmp_path / f"piece{i}.h5") for i in range(2)]
    for number, piece in enumerate(pieces):
        assert main([*encode, "-o", piece, "--shard", f"{number}/2"]) == 0
    manifest = str(tmp_path / "codes.json")
    assert main(["index", "shards", *pieces, "-o", manifest]) == 0
    for source, name in ((whole, "one"), (manifest, "sharded")):
        output = str(tmp_path / f"index-{name}")
        assert main(["index", "build", source, "-o", output]) == 0
    capsys.readouterr()
    query = str(root / "images" / "im4.png")
    for options in (["-k", "6"], ["--radius", "2", "-k", "50"]):
        printed = []
        for codes in ("codes.h5", "codes.json", "index-one", "index-sharded"):
            args = ["search", str(root / "run"), str(tmp_path / codes), query]
            assert main([*args, *options, "--backend", "numpy"]) == 0
            printed.append(capsys.readouterr().out)
        assert len(printed[0].splitlines()) > 3  # something was ranked
        assert printed == [printed[0]] * 4


def test_search_refuses_a_changed_shard_in_one_line(
    workspace, tmp_path, capsys
):
    root, _ = workspace
    encode = encode_images(root)
    piece = str(tmp_path / "piece.h5")
    assert main([*encode, "-o", piece, "--shard", "0/2"]) == 0
    manifest = str(tmp_path / "codes.json")
    assert main(["index", "shards", piece, "-o", manifest]) == 0
    assert (
        main([*encode, "-o", str(tmp_path / "other.h5"), "--shard", "1/2"]) == 0
    )
    os.replace(tmp_path / "other.h5", piece)  # other codes, same name
    capsys.readouterr()
    query = str(root / "images" / "im4.png")
    assert main(["search", str(root / "run"), manifest, query]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not the shard listed in" in err[0]

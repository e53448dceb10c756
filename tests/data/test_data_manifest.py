"""Manifests, `dhsps data prepare/verify`, and the peers' published lists."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from keras_dhsps.cli.main import main
from keras_dhsps.data import load_dataset
from keras_dhsps.data.manifest import read_record
from keras_dhsps.data.native import prepare
from keras_dhsps.data.native import verify
from keras_dhsps.data.peers import write_peer_lists
from keras_dhsps.utils.errors import DataError
from tests import dataset_trees as fixtures

SMALL = dict(num_query=4, num_train=10, num_images=30)


def _mirflickr(tmp_path, **kwargs):
    fixtures.make_mirflickr(str(tmp_path), count=30, unlabelled=3, **kwargs)
    return str(tmp_path)


def test_prepare_writes_lists_classes_and_checksummed_record(tmp_path):
    root = _mirflickr(tmp_path)
    directory, record = prepare("mirflickr25k", root, seed=3, **SMALL)
    assert sorted(os.listdir(directory)) == [
        "classes.txt",
        "database.txt",
        "manifest.json",
        "query.txt",
        "train.txt",
        "validation.txt",
    ]
    # 27 labelled: query 4, train 10 - round(0.1 * 10) = 9, validation 1,
    # database 27 - 4 - 10 = 13.
    assert record["labelled_images"] == 27
    assert {k: v["images"] for k, v in record["splits"].items()} == {
        "train": 9,
        "validation": 1,
        "query": 4,
        "database": 13,
    }
    assert record["dropped"] == {"unlabelled": 3}
    assert set(record["overlaps"].values()) == {0}
    with open(os.path.join(directory, "classes.txt")) as handle:
        names = handle.read().split()
    assert names == sorted(names) and len(names) == 38
    # The manifest loads back to the same split as the on-the-fly build.
    from_manifest = load_dataset("mirflickr25k", root=root, seed=3, **SMALL)
    assert from_manifest.info["manifest"] == os.path.abspath(directory)
    os.rename(directory, directory + "-moved")
    on_the_fly = load_dataset("mirflickr25k", root=root, seed=3, **SMALL)
    assert on_the_fly.info["manifest"] is None
    for name in from_manifest.splits:
        assert from_manifest.split(name).paths == on_the_fly.split(name).paths
        np.testing.assert_array_equal(
            from_manifest.split(name).labels, on_the_fly.split(name).labels
        )


def test_manifest_edits_are_detected(tmp_path):
    root = _mirflickr(tmp_path)
    directory, _ = prepare("mirflickr25k", root, seed=0, **SMALL)
    query = os.path.join(directory, "query.txt")
    with open(query) as handle:
        original = handle.read()
    with open(query, "w") as handle:
        handle.write(original.replace(" 1", " 0", 1))
    with pytest.raises(DataError, match=r"query\.txt: checksum mismatch"):
        load_dataset("mirflickr25k", root=root, seed=0, **SMALL)
    with open(query, "w") as handle:
        handle.write(original)
    record_path = os.path.join(directory, "manifest.json")
    with open(record_path) as handle:
        record = json.load(handle)
    record["seed"] = 1  # an edit that leaves the list files alone
    with open(record_path, "w") as handle:
        json.dump(record, handle)
    with pytest.raises(DataError, match=r"manifest\.json: checksum mismatch"):
        read_record(directory)


def test_verify_finds_an_image_broken_after_prepare(tmp_path):
    root = _mirflickr(tmp_path)
    directory, _ = prepare("mirflickr25k", root, seed=0, **SMALL)
    assert verify(directory, root=root)["dataset"] == "mirflickr25k"
    with open(os.path.join(directory, "database.txt")) as handle:
        second = handle.read().splitlines()[1].split()[0]
    with open(os.path.join(root, second), "wb") as handle:
        handle.write(b"\x00" * 100)
    with pytest.raises(DataError, match=r"database\.txt:2: image cannot be"):
        verify(directory, root=root)


def test_failed_prepare_leaves_nothing_and_keeps_old_manifest(tmp_path):
    root = _mirflickr(tmp_path)
    directory, first = prepare("mirflickr25k", root, seed=0, **SMALL)
    os.remove(os.path.join(root, "mirflickr", "im20.jpg"))
    with pytest.raises(DataError, match="image not found"):
        prepare("mirflickr25k", root, seed=0, **SMALL)
    # The previous manifest is intact and no staging folder is left.
    assert read_record(directory)["checksum"] == first["checksum"]
    assert os.listdir(os.path.dirname(directory)) == [
        os.path.basename(directory)
    ]
    # --skip-bad-images: skipped and counted; the manifest is replaced.
    _, second = prepare(
        "mirflickr25k", root, seed=0, skip_bad_images=True, **SMALL
    )
    assert second["dropped"] == {"missing_image": 1, "unlabelled": 3}
    assert second["labelled_images"] == 26
    assert os.listdir(os.path.dirname(directory)) == [
        os.path.basename(directory)
    ]


def test_manifest_with_other_options_is_not_reused(tmp_path):
    root = _mirflickr(tmp_path)
    directory, _ = prepare("mirflickr25k", root, seed=0, **SMALL)
    other = dict(SMALL, num_query=5)
    dataset = load_dataset("mirflickr25k", root=root, seed=0, **other)
    assert dataset.info["manifest"] is None and len(dataset.split("query")) == 5
    with pytest.raises(DataError, match="written with options"):
        load_dataset(
            "mirflickr25k", root=root, seed=0, manifest_dir=directory, **other
        )


def test_empty_split_is_an_error(tmp_path):
    root = _mirflickr(tmp_path)
    with pytest.raises(DataError, match="'database' split is empty"):
        prepare("mirflickr25k", root, num_images=30, num_query=7, num_train=20)
    with pytest.raises(DataError, match="needs 31 images"):
        prepare("mirflickr25k", root, num_images=30, num_query=11, num_train=20)
    assert not os.path.exists(os.path.join(root, "dhsps_manifests"))


def test_cli_prepare_verify_and_errors(tmp_path, capsys):
    fixtures.make_voc2012(str(tmp_path), count=20)
    root = str(tmp_path)
    options = ["--option", "num_query=4", "--option", "num_train=8"]
    assert main(["data", "prepare", "--dataset", "voc2012", "--root", root,
                 *options]) == 0  # fmt: skip
    out = capsys.readouterr().out
    # 20 images: 4 queries, 8 training (1 to validation), 8 database.
    assert "20 labelled" in out and "  query            4 images" in out
    assert "  train            7 images" in out
    assert "  database         8 images" in out
    assert main(["data", "verify", "--dataset", "voc2012", "--root", root,
                 *options]) == 0  # fmt: skip
    assert "verified" in capsys.readouterr().out
    # A corrupt JPEG: one error line naming the list file line and image.
    image = os.path.join(
        root, "VOCdevkit", "VOC2012", "JPEGImages", "2008_000007.jpg"
    )
    with open(image, "wb") as handle:
        handle.write(b"garbage")
    assert main(["data", "prepare", "--dataset", "voc2012", "--root", root,
                 *options]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "trainval.txt:8: image cannot be decoded" in err[0]
    assert main(["data", "prepare", "--dataset", "voc2012", "--root", root,
                 "--skip-bad-images", *options]) == 0  # fmt: skip
    assert "undecodable_image 1" in capsys.readouterr().out
    assert main(["data", "prepare", "--dataset", "voc2012", "--root", root,
                 "--option", "colour"]) == 2  # fmt: skip
    assert "KEY=VALUE" in capsys.readouterr().err


# ------------------------------------------------ the peers' published lists


def _touch_tree(root, list_dir):
    """Creates an empty file for every path named in the list files."""
    for name in ("train.txt", "test.txt", "database.txt"):
        with open(os.path.join(list_dir, name)) as handle:
            for line in handle:
                path = os.path.join(root, line.split(maxsplit=1)[0])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "wb").close()


def test_peer_voc2012_lists_load_unchanged(tmp_path):
    lists = write_peer_lists("voc2012", str(tmp_path / "lists"))
    _touch_tree(str(tmp_path), lists)
    dataset = load_dataset(
        "lists",
        root=str(tmp_path),
        lists_dir=lists,
        validation_fraction=0.0,
    )
    assert {k: len(v) for k, v in dataset.splits.items()} == {
        "train": 4000,
        "validation": 0,
        "query": 1000,
        "database": 6540,
    }
    labels = np.concatenate(
        [dataset.split(n).labels for n in ("train", "query", "database")]
    )
    # docs/peers.md §2: per-column totals = the official per-class trainval
    # image counts; labels per image 1 -> 7,567 ... 5 -> 29.
    assert labels.sum(axis=0).tolist() == [
        670, 552, 765, 508, 706, 421, 1161, 1080, 1119, 303, 538, 1286,
        482, 526, 4087, 527, 325, 507, 544, 575,
    ]  # fmt: skip
    counts = np.bincount(labels.sum(axis=1))
    assert counts.tolist() == [0, 7567, 3007, 792, 145, 29]
    assert set(dataset.info["overlaps"].values()) == {0}
    assert (
        dataset.split("query")
        .paths[0]
        .endswith("VOCdevkit/VOC2012/JPEGImages/2010_002193.jpg")
    )


def test_peer_mirflickr_lists_report_and_drop_unlabelled(tmp_path):
    lists = write_peer_lists("mirflickr25k", str(tmp_path / "lists"))
    _touch_tree(str(tmp_path), lists)
    kept = load_dataset(
        "lists", root=str(tmp_path), lists_dir=lists, drop_unlabelled=False
    )
    # docs/peers.md §2: zero-label rows 72 / 19 / 328 in train / test /
    # database.
    assert kept.info["unlabelled"] == {
        "train": 72,
        "query": 19,
        "database": 328,
    }
    assert kept.split("query").labels.shape == (1000, 38)
    dropped = load_dataset("lists", root=str(tmp_path), lists_dir=lists)
    assert len(dropped.split("query")) == 981
    assert len(dropped.split("database")) == 20000 - 328
    assert len(dropped.split("train")) + len(dropped.split("validation")) == (
        4000 - 72
    )
    assert dropped.info["dropped"] == {"unlabelled": 72 + 19 + 328}


def test_lists_read_class_names_from_a_prepared_manifest(tmp_path):
    root = _mirflickr(tmp_path)
    directory, _ = prepare("mirflickr25k", root, seed=0, **SMALL)
    # A prepared manifest is itself a peers'-format list directory.
    for peer_name, ours in (("test.txt", "query.txt"),):
        os.link(
            os.path.join(directory, ours), os.path.join(directory, peer_name)
        )
    dataset = load_dataset("lists", root=root, lists_dir=directory)
    assert dataset.class_names[:2] == ("animals", "baby")
    assert len(dataset.split("query")) == 4


def _write_lists(directory, rows_by_file):
    for name, rows in rows_by_file.items():
        with open(os.path.join(directory, name), "w") as handle:
            handle.write("".join(row + "\n" for row in rows))


def test_list_format_errors_name_file_and_line(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        open(tmp_path / name, "wb").close()
    good = {
        "train.txt": ["a.jpg 1 0 1", "b.jpg 0 1 0"],
        "test.txt": ["c.jpg 1 1 0"],
        "database.txt": ["a.jpg 1 0 1"],
    }
    _write_lists(tmp_path, good)
    dataset = load_dataset("lists", root=str(tmp_path), validation_fraction=0)
    assert dataset.class_names == ("class_0", "class_1", "class_2")
    # train.txt's a.jpg is also in the database: reported, not hidden.
    assert dataset.info["overlaps"]["train&database"] == 1
    _write_lists(tmp_path, {"test.txt": ["c.jpg 1 1 0", "", "b.jpg 1 0"]})
    with pytest.raises(DataError, match=r"test\.txt:3: expected 4 fields"):
        load_dataset("lists", root=str(tmp_path))
    _write_lists(tmp_path, {"test.txt": ["d.jpg 1 1 0"]})
    with pytest.raises(DataError, match=r"test\.txt:1: image not found"):
        load_dataset("lists", root=str(tmp_path))
    _write_lists(tmp_path, {"test.txt": []})
    with pytest.raises(DataError, match=r"test\.txt: list file has no entries"):
        load_dataset("lists", root=str(tmp_path))
    _write_lists(
        tmp_path, {"test.txt": ["c.jpg 1 1 0"], "classes.txt": ["cat", "dog"]}
    )
    with pytest.raises(DataError, match="2 class names but the list files"):
        load_dataset("lists", root=str(tmp_path))
    _write_lists(tmp_path, {"classes.txt": ["cat", "dog", "emu"]})
    named = load_dataset("lists", root=str(tmp_path))
    assert named.class_names == ("cat", "dog", "emu")

"""Native-layout readers against generated fixtures with known labels."""

from __future__ import annotations

import os

import numpy as np
import pytest

from keras_dhsps.data import load_dataset
from keras_dhsps.data.collection import check_images
from keras_dhsps.data.native import coco
from keras_dhsps.data.native import iapr
from keras_dhsps.data.native import mirflickr
from keras_dhsps.data.native import nuswide
from keras_dhsps.data.native import voc2012
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import UnknownNameError
from tests import dataset_trees as fixtures
from tests.child import run_python


def _rows(collection):
    """path -> sorted class names, from a Collection."""
    names = collection.class_names
    return {
        path: sorted(names[c] for c in np.flatnonzero(row))
        for path, row in zip(collection.paths, collection.labels, strict=True)
    }


# ----------------------------------------------------------------- VOC2012


def test_voc_labels_equal_fixture_truth(tmp_path):
    truth = fixtures.make_voc2012(str(tmp_path), count=12)
    collection = voc2012.scan(str(tmp_path))
    assert collection.class_names == tuple(sorted(voc2012.CLASS_NAMES))
    assert len(collection.class_names) == 20
    expected = {
        f"VOCdevkit/VOC2012/JPEGImages/{image_id}.jpg": names
        for image_id, names in truth.items()
    }
    # Difficult-only "person" objects are negatives; <part><name>head is
    # not a class; duplicated objects give one label.
    assert _rows(collection) == expected
    # The first source of each image is trainval.txt, line = its position.
    assert collection.sources[3].endswith("trainval.txt:4")


def test_voc_include_difficult_makes_person_positive(tmp_path):
    truth = fixtures.make_voc2012(str(tmp_path), count=6)
    collection = voc2012.scan(str(tmp_path), include_difficult=True)
    person = collection.class_names.index("person")
    # Every fixture image shows a person, difficult or not.
    assert collection.labels[:, person].tolist() == [1] * len(truth)


def test_voc_unknown_class_names_file_and_line(tmp_path):
    fixtures.make_voc2012(str(tmp_path), count=3)
    bad = os.path.join(
        tmp_path, "VOCdevkit", "VOC2012", "Annotations", "2008_000001.xml"
    )
    fixtures.write_voc_annotation(
        bad, "2008_000001", [("unicorn", 0), ("cat", 0)]
    )
    # The header takes lines 1-12, <object> is line 13, its <name> line 14.
    with pytest.raises(DataError, match=r"2008_000001\.xml:14: unknown class"):
        voc2012.scan(str(tmp_path))


def test_voc_split_sizes_disjoint_and_seeded(tmp_path):
    fixtures.make_voc2012(str(tmp_path), count=12)
    options = dict(num_query=3, num_train=5, validation_fraction=0.2)
    first = load_dataset("voc2012", root=str(tmp_path), seed=1, **options)
    # query 3; train 5 minus round(0.2 * 5) = 1 validation; database the
    # rest: 12 - 3 - 5 = 4.
    sizes = {name: len(split) for name, split in first.splits.items()}
    assert sizes == {"train": 4, "validation": 1, "query": 3, "database": 4}
    all_paths = [p for s in first.splits.values() for p in s.paths]
    assert len(set(all_paths)) == 12  # disjoint, covers every image
    again = load_dataset("voc2012", root=str(tmp_path), seed=1, **options)
    other = load_dataset("voc2012", root=str(tmp_path), seed=2, **options)
    assert again.split("query").paths == first.split("query").paths
    assert [other.split(n).paths for n in first.splits] != [
        first.split(n).paths for n in first.splits
    ]
    assert first.info["overlaps"]["train&query"] == 0
    assert os.path.isabs(first.split("train").paths[0])


def test_voc_missing_and_undecodable_images(tmp_path):
    fixtures.make_voc2012(str(tmp_path), count=8)
    images = os.path.join(tmp_path, "VOCdevkit", "VOC2012", "JPEGImages")
    os.remove(os.path.join(images, "2008_000002.jpg"))
    collection = voc2012.scan(str(tmp_path))
    with pytest.raises(DataError, match=r"trainval\.txt:3: image not found"):
        check_images(collection, mode="exists")
    with open(os.path.join(images, "2008_000005.jpg"), "wb") as handle:
        handle.write(b"this is not a JPEG file at all")
    skipped = check_images(collection, mode="header", skip_bad_images=True)
    assert len(skipped) == 6
    assert skipped.dropped == {"missing_image": 1, "undecodable_image": 1}
    # Now image 3 (trainval.txt line 4) is the missing one.
    os.rename(
        os.path.join(images, "2008_000003.jpg"),
        os.path.join(images, "2008_000002.jpg"),
    )
    with pytest.raises(DataError, match="trainval.txt:4: image not found"):
        check_images(collection, mode="exists")


def test_voc_truncated_jpeg_found_only_by_decode(tmp_path):
    fixtures.make_voc2012(str(tmp_path), count=2, size=(200, 150))
    path = os.path.join(
        tmp_path, "VOCdevkit", "VOC2012", "JPEGImages", "2008_000001.jpg"
    )
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])  # header intact, scans cut
    collection = voc2012.scan(str(tmp_path))
    with pytest.raises(DataError, match="image cannot be decoded"):
        check_images(collection, mode="decode")


# ------------------------------------------------------------ MIRFlickr-25K


def test_mirflickr_38_and_24_label_encodings(tmp_path):
    sets = fixtures.make_mirflickr(str(tmp_path), count=30, unlabelled=2)
    full = mirflickr.scan(str(tmp_path), num_images=30)
    assert len(full.class_names) == 38
    assert full.class_names[:3] == ("animals", "baby", "baby_r1")
    assert _rows(full) == {
        f"mirflickr/im{n}.jpg": sets[n - 1] for n in range(1, 31)
    }
    labelled = full.drop_unlabelled()
    assert len(labelled) == 28 and labelled.dropped == {"unlabelled": 2}
    base = mirflickr.scan(str(tmp_path), num_labels=24, num_images=30)
    assert len(base.class_names) == 24
    assert not any(name.endswith("_r1") for name in base.class_names)
    # Images whose only labels are *_r1 become unlabelled in the 24 encoding.
    only_r1 = sum(
        1 for s in sets if s and all(name.endswith("_r1") for name in s)
    )
    assert base.drop_unlabelled().dropped["unlabelled"] == 2 + only_r1


def test_mirflickr_bad_annotation_files(tmp_path):
    fixtures.make_mirflickr(str(tmp_path), count=10)
    annotations = os.path.join(tmp_path, "mirflickr25k_annotations_v080")
    with open(os.path.join(annotations, "animals.txt"), "w") as handle:
        handle.write("3\n4 5\n")
    with pytest.raises(DataError, match=r"animals\.txt:2: expected one image"):
        mirflickr.scan(str(tmp_path), num_images=10)
    with open(os.path.join(annotations, "animals.txt"), "w") as handle:
        handle.write("3\n11\n")
    with pytest.raises(DataError, match=r"animals\.txt:2: image number 11"):
        mirflickr.scan(str(tmp_path), num_images=10)
    with open(os.path.join(annotations, "animals.txt"), "w") as handle:
        handle.write("3\n")
    with open(os.path.join(annotations, "unicorn.txt"), "w") as handle:
        handle.write("3\n")
    with pytest.raises(DataError, match="unknown class name 'unicorn'"):
        mirflickr.scan(str(tmp_path), num_images=10)
    with pytest.raises(DataError, match="24-label and a 38-label"):
        mirflickr.class_names(30)


def test_mirflickr_load_dataset_drops_and_counts_unlabelled(tmp_path):
    fixtures.make_mirflickr(str(tmp_path), count=30, unlabelled=4)
    dataset = load_dataset(
        "mirflickr25k",
        root=str(tmp_path),
        seed=0,
        num_images=30,
        num_query=5,
        num_train=10,
    )
    # 26 labelled: 5 queries, 10 training (1 to validation), 11 database.
    assert {n: len(s) for n, s in dataset.splits.items()} == {
        "train": 9,
        "validation": 1,
        "query": 5,
        "database": 11,
    }
    assert dataset.info["dropped"] == {"unlabelled": 4}
    assert all(
        split.labels.sum(axis=1).min() > 0 for split in dataset.splits.values()
    )


# ----------------------------------------------------------------- NUS-WIDE


def test_nuswide_keeps_the_21_most_frequent_concepts(tmp_path):
    names, labels = fixtures.make_nuswide(str(tmp_path), count=40)
    collection = nuswide.scan(str(tmp_path))
    # Oracle: rank by (-count, name) and keep 21, then sort by name.
    counts = labels.sum(axis=0).astype(int)  # uint8 would wrap on negation
    ranked = sorted(range(len(names)), key=lambda k: (-counts[k], names[k]))
    top = sorted(names[k] for k in ranked[:21])
    assert collection.class_names == tuple(top)
    columns = [names.index(name) for name in top]
    np.testing.assert_array_equal(collection.labels, labels[:, columns])
    assert collection.paths[1] == "Flickr/c01/0001_1001.jpg"
    assert os.path.isfile(os.path.join(tmp_path, collection.paths[1]))


def test_nuswide_bad_label_files(tmp_path):
    fixtures.make_nuswide(str(tmp_path), count=10)
    label_file = os.path.join(
        tmp_path, "Groundtruth", "AllLabels", "Labels_c03.txt"
    )
    rows = ["0"] * 10
    rows[6] = "0 1"
    with open(label_file, "w") as handle:
        handle.write("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"Labels_c03\.txt:7: expected 1 col"):
        nuswide.scan(str(tmp_path))
    with open(label_file, "w") as handle:
        handle.write("0\n" * 9)
    with pytest.raises(DataError, match="9 lines but the image list has 10"):
        nuswide.scan(str(tmp_path))
    with open(label_file, "w") as handle:
        handle.write("0\n" * 9 + "2\n")
    with pytest.raises(DataError, match=r"Labels_c03\.txt:10: expected 0 or 1"):
        nuswide.scan(str(tmp_path))


def test_nuswide_explicit_concepts_and_unknown_name(tmp_path):
    _, labels = fixtures.make_nuswide(str(tmp_path), count=10)
    collection = nuswide.scan(str(tmp_path), concepts=["c05", "c01"])
    assert collection.class_names == ("c01", "c05")
    np.testing.assert_array_equal(collection.labels, labels[:, [1, 5]])
    with pytest.raises(UnknownNameError, match="'sky'"):
        nuswide.scan(str(tmp_path), concepts=["c01", "sky"])


def test_nuswide_per_class_protocol(tmp_path):
    fixtures.make_nuswide(str(tmp_path), count=120, concepts=21, seed=3)
    dataset = load_dataset(
        "nuswide21",
        root=str(tmp_path),
        seed=0,
        num_query=21,
        num_train=42,
        validation_fraction=0.0,
    )
    query = dataset.split("query").labels
    # One query per concept (21 // 21): every concept is shown by a query.
    assert len(query) == 21 and query.sum(axis=0).min() >= 1
    # Training images come from the database (DPSH convention).
    train = set(dataset.split("train").paths)
    database = set(dataset.split("database").paths)
    assert train <= database
    assert not set(dataset.split("query").paths) & database
    assert dataset.info["overlaps"]["train&database"] == len(train) == 42


# -------------------------------------------------------------- IAPR TC-12


DESCRIPTIONS = [
    "a man and a dog on the beach;",
    "a dog in the snow;",
    "the beach at sunset with a dog",
    "a woman on a Beach",
    "snow on the mountain",
    "a man in a red jacket",
]


def test_iapr_vocabulary_of_most_frequent_description_words(tmp_path):
    paths = fixtures.make_iapr(str(tmp_path), DESCRIPTIONS)
    collection = iapr.scan(str(tmp_path), num_classes=3)
    # Document frequencies: beach 3, dog 3, man 2, snow 2, others 1 (stop
    # words "a", "and", "on", "the", "in", "at", "with" removed). The 2-2 tie
    # is broken alphabetically: man before snow.
    assert collection.class_names == ("beach", "dog", "man")
    expected = [
        ["beach", "dog", "man"],
        ["dog"],
        ["beach", "dog"],
        ["beach"],
        [],
        ["man"],
    ]
    assert _rows(collection) == dict(zip(paths, expected, strict=True))
    assert collection.drop_unlabelled().dropped == {"unlabelled": 1}


def test_iapr_explicit_vocabulary_and_errors(tmp_path):
    fixtures.make_iapr(str(tmp_path), DESCRIPTIONS)
    collection = iapr.scan(str(tmp_path), vocabulary=["snow", "sunset"])
    assert collection.labels.sum(axis=0).tolist() == [2, 1]
    with pytest.raises(UnknownNameError, match="'zebra'"):
        iapr.scan(str(tmp_path), vocabulary=["snow", "zebra"])
    eng = os.path.join(
        tmp_path, "iaprtc12", "annotations_complete_eng", "00", "1002.eng"
    )
    with open(eng, "w") as handle:
        handle.write("<DOC><DESCRIPTION>a dog</DESCRIPTION></DOC>")
    with pytest.raises(DataError, match=r"1002\.eng:1: no <IMAGE>"):
        iapr.scan(str(tmp_path))


# ----------------------------------------------------------------- MS-COCO


def test_coco_labels_sorted_names_and_dropped(tmp_path):
    truth = fixtures.make_coco(str(tmp_path), count=20, unannotated=2)
    collection = coco.scan(str(tmp_path))
    assert collection.class_names == ("apple", "bicycle", "person", "zebra")
    assert _rows(collection) == truth
    assert len(collection.drop_unlabelled()) == 18


def test_coco_unknown_category(tmp_path):
    import json

    fixtures.make_coco(str(tmp_path), count=6)
    path = os.path.join(tmp_path, "annotations", "instances_val2014.json")
    with open(path) as handle:
        data = json.load(handle)
    data["annotations"][1]["category_id"] = 999
    with open(path, "w") as handle:
        json.dump(data, handle)
    with pytest.raises(DataError, match=r"annotations\[1\]: unknown category"):
        coco.scan(str(tmp_path))


def test_unknown_option_and_missing_root(tmp_path):
    with pytest.raises(DataError, match="unknown option 'colour'"):
        load_dataset("coco", root=str(tmp_path), colour=1)
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset("voc2012")
    with pytest.raises(DataError, match="not a VOC2012 directory"):
        load_dataset("voc2012", root=str(tmp_path))


def test_data_package_imports_no_tensorflow():

    code = (
        "import sys, keras_dhsps.data, keras_dhsps.cli.data, "
        "keras_dhsps.data.native.download; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = run_python(code, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_every_native_dataset_is_registered():
    from keras_dhsps.data import DATASETS

    assert {"voc2012", "mirflickr25k", "nuswide21", "iapr-tc12", "coco"} <= set(
        DATASETS
    )
    with pytest.raises(UnknownNameError, match="unknown dataset 'voc'"):
        load_dataset("voc")

"""Reliability of the native readers: fuzzed annotation files (issue 8).

Every malformed annotation input of a native-layout dataset (VOC2012 XML
and ImageSets, MIRFlickr-25K annotation files, NUS-WIDE image list and
label files, IAPR TC-12 ``.eng`` records, COCO instances JSON) must fail
through ``prepare`` / ``load_native`` with one ``DataError`` whose message
starts with ``FILE:LINE:`` (or ``FILE:`` where the format has no lines),
is one line long, and leaves no manifest (nor a staging directory) behind.

Each test builds one small fixture per module (tests/dataset_trees.py),
copies it per hypothesis example and corrupts one file in one way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.data.native import load_native
from keras_dhsps.data.native import mirflickr
from keras_dhsps.data.native import prepare
from keras_dhsps.data.native import voc2012
from keras_dhsps.utils.errors import DataError
from tests import dataset_trees as fixtures

FUZZ = settings(max_examples=30, deadline=None)

#: Tokens a fuzzer writes into an annotation: printable, no whitespace.
TOKENS = st.text(
    st.characters(codec="utf-8", exclude_categories=["Z", "C"]),
    min_size=1,
    max_size=6,
)

ENTRY_POINTS = st.sampled_from(["prepare", "load_native"])


def _fails(entry, name, root, prefix, **options):
    """Runs ``entry`` on ``root``; checks the error and that nothing is left.

    Returns the message, which starts with ``prefix`` (a string, or a
    compiled regular expression that must match at the start).
    """
    with pytest.raises(DataError) as raised:
        if entry == "prepare":
            prepare(name, root, seed=0, check="exists", **options)
        else:
            load_native(name, root, seed=0, **options)
    message = str(raised.value)
    if isinstance(prefix, str):
        assert message.startswith(prefix), (prefix, message)
    else:
        assert prefix.match(message), (prefix.pattern, message)
    assert "\n" not in message, message
    # No manifest, no half-written staging directory.
    assert not os.path.exists(os.path.join(root, "dhsps_manifests")), message
    return message


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """One small fixture of each dataset, never modified."""
    base = tmp_path_factory.mktemp("native")
    roots = {}
    for name, make in (
        ("voc2012", lambda r: fixtures.make_voc2012(r, count=5)),
        ("mirflickr25k", lambda r: fixtures.make_mirflickr(r, count=10)),
        ("nuswide21", lambda r: fixtures.make_nuswide(r, count=10)),
        ("iapr-tc12", lambda r: fixtures.make_iapr(r, DESCRIPTIONS)),
        ("coco", lambda r: fixtures.make_coco(r, count=6)),
    ):
        roots[name] = str(base / name)
        roots[name + ":truth"] = make(roots[name])
    return roots


def _copy(templates, name, scratch):
    root = os.path.join(scratch, name)
    shutil.copytree(templates[name], root)
    return root


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())


# ----------------------------------------------------------------- VOC2012

VOC_XML_KINDS = ("truncated", "garbage", "missing_name", "unknown_class",
                 "empty")  # fmt: skip


@FUZZ
@given(kind=st.sampled_from(VOC_XML_KINDS), entry=ENTRY_POINTS,
       token=TOKENS, data=st.data())  # fmt: skip
def test_voc_fuzzed_annotation_xml(templates, kind, entry, token, data):
    image_ids = sorted(templates["voc2012:truth"])
    image_id = data.draw(st.sampled_from(image_ids), label="image")
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "voc2012", scratch)
        path = os.path.join(
            root, "VOCdevkit", "VOC2012", "Annotations", image_id + ".xml"
        )
        text = open(path, encoding="utf-8").read()
        lines = text.split("\n")
        objects = [n for n, line in enumerate(lines) if "<object>" in line]
        which = data.draw(st.integers(0, len(objects) - 1), label="object")
        line = None  # expected line number, when it is known exactly
        if kind == "truncated":
            cut = data.draw(st.integers(0, text.rindex(">") - 1), label="cut")
            text = text[:cut]
        elif kind == "garbage":
            at = data.draw(st.integers(1, len(lines) - 2), label="line")
            lines[at] = "<<" + escape(token) + lines[at]
            text, line = "\n".join(lines), at + 1
        elif kind == "missing_name":
            del lines[objects[which] + 1]  # the object's own <name>
            text, line = "\n".join(lines), objects[which] + 1
        elif kind == "unknown_class":
            name = token.strip()
            if name in voc2012.CLASS_NAMES:
                name += "_x"
            lines[objects[which] + 1] = f"\t\t<name>{escape(name)}</name>"
            text, line = "\n".join(lines), objects[which] + 2
        else:  # empty
            text = data.draw(st.sampled_from(["", "\n", "  \n\t"]))
            line = None
        _write(path, text)
        prefix = (
            f"{path}:{line}: "
            if line is not None
            else re.compile(re.escape(path) + r":\d+: malformed XML")
        )
        _fails(entry, "voc2012", root, prefix)


VOC_ID_KINDS = ("duplicate", "escape", "two_fields", "not_utf8")


@FUZZ
@given(kind=st.sampled_from(VOC_ID_KINDS), entry=ENTRY_POINTS, data=st.data())
def test_voc_fuzzed_trainval_ids(templates, kind, entry, data):
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "voc2012", scratch)
        path = os.path.join(
            root, "VOCdevkit", "VOC2012", "ImageSets", "Main", "trainval.txt"
        )
        ids = open(path, encoding="utf-8").read().split()
        at = data.draw(st.integers(1, len(ids) - 1), label="line (0-based)")
        lines = [image_id.encode() for image_id in ids]
        if kind == "duplicate":
            lines[at] = ids[data.draw(st.integers(0, at - 1))].encode()
        elif kind == "escape":
            # Some of these name real annotation files through "..": a
            # reader that joined them would silently read outside the set.
            lines[at] = data.draw(
                st.sampled_from(
                    [
                        f"../Annotations/{ids[at]}",
                        f"../../VOC2012/Annotations/{ids[at]}",
                        f"../../../../{ids[at]}",
                        f"/etc/{ids[at]}",
                        f"..\\{ids[at]}",
                        "..",
                    ]
                )
            ).encode()
        elif kind == "two_fields":
            lines[at] += b" 1"
        else:
            lines[at] += b"\xff\xfe"
        _write(path, b"\n".join(lines) + b"\n")
        _fails(entry, "voc2012", root, f"{path}:{at + 1}: ")


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n\t\n"])
def test_voc_empty_trainval_names_the_file(templates, tmp_path, text):
    root = _copy(templates, "voc2012", str(tmp_path))
    path = os.path.join(
        root, "VOCdevkit", "VOC2012", "ImageSets", "Main", "trainval.txt"
    )
    _write(path, text)
    _fails("prepare", "voc2012", root, f"{path}: no image ids")


# ----------------------------------------------------------- MIRFlickr-25K

MIR_KINDS = ("non_numeric", "out_of_range", "duplicate", "two_fields",
             "not_utf8")  # fmt: skip
MIR_OPTIONS = {"num_images": 10}


@FUZZ
@given(kind=st.sampled_from(MIR_KINDS), entry=ENTRY_POINTS, token=TOKENS,
       data=st.data())  # fmt: skip
def test_mirflickr_fuzzed_annotation_files(templates, kind, entry, token, data):
    sets = templates["mirflickr25k:truth"]
    shown = sorted({name for names in sets for name in names})
    concept = data.draw(st.sampled_from(shown), label="concept")
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "mirflickr25k", scratch)
        path = os.path.join(
            root, "mirflickr25k_annotations_v080", concept + ".txt"
        )
        lines = open(path, "rb").read().splitlines()  # >= 1 line
        at = data.draw(st.integers(0, len(lines)), label="insert at")
        if kind == "non_numeric":
            if token.isascii() and token.isdigit():
                token += "x"
            bad = token.encode()
        elif kind == "out_of_range":
            bad = str(data.draw(st.sampled_from([0, 11, 25001, -3]))).encode()
        elif kind == "duplicate":
            at = max(at, 1)
            bad = lines[data.draw(st.integers(0, at - 1))]
        elif kind == "two_fields":
            bad = b"3 4"
        else:
            bad = b"1\xff"
        lines.insert(at, bad)
        _write(path, b"\r\n".join(lines) + b"\r\n")
        _fails(entry, "mirflickr25k", root, f"{path}:{at + 1}: ",
               **MIR_OPTIONS)  # fmt: skip


def test_mirflickr_empty_file_is_a_concept_without_images(templates, tmp_path):
    """An empty annotation file is valid (a concept no image shows: the
    fixtures write such files); a directory where every file is empty has
    no labelled image and fails naming the dataset, writing nothing."""
    root = _copy(templates, "mirflickr25k", str(tmp_path))
    annotations = os.path.join(root, "mirflickr25k_annotations_v080")
    _write(os.path.join(annotations, "animals.txt"), "")
    collection = mirflickr.scan(root, num_images=10)
    column = collection.class_names.index("animals")
    assert collection.labels[:, column].sum() == 0
    for name in mirflickr.class_names(38):
        _write(os.path.join(annotations, name + ".txt"), "\n")
    with pytest.raises(DataError) as raised:
        prepare("mirflickr25k", root, num_query=1, num_train=1, **MIR_OPTIONS)
    assert "\n" not in str(raised.value)
    assert not os.path.exists(os.path.join(root, "dhsps_manifests"))


# ----------------------------------------------------------------- NUS-WIDE

NUS_LABEL_KINDS = ("too_few_lines", "too_many_lines", "not_binary",
                   "two_fields", "blank_line", "not_utf8")  # fmt: skip


@FUZZ
@given(kind=st.sampled_from(NUS_LABEL_KINDS), entry=ENTRY_POINTS,
       token=TOKENS, data=st.data())  # fmt: skip
def test_nuswide_fuzzed_label_files(templates, kind, entry, token, data):
    concepts = templates["nuswide21:truth"][0]
    concept = data.draw(st.sampled_from(concepts), label="concept")
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "nuswide21", scratch)
        path = os.path.join(
            root, "Groundtruth", "AllLabels", f"Labels_{concept}.txt"
        )
        lines = open(path, "rb").read().splitlines()
        at = data.draw(st.integers(0, len(lines) - 1), label="line (0-based)")
        prefix = f"{path}:{at + 1}: "
        if kind == "too_few_lines":
            del lines[at:]
            prefix = f"{path}: {at} lines but the image list has 10"
        elif kind == "too_many_lines":
            lines += [b"0"] * (at + 1)
            prefix = f"{path}: {len(lines)} lines but the image list has 10"
        elif kind == "not_binary":
            lines[at] = (token if token not in ("0", "1") else "2").encode()
        elif kind == "two_fields":
            lines[at] = b"0 1"
            # With one line fewer the value count still matches the list.
            if data.draw(st.booleans(), label="drop the last line"):
                if at == len(lines) - 1:
                    at -= 1
                    lines[at] = b"0 1"
                    prefix = f"{path}:{at + 1}: "
                del lines[-1]
        elif kind == "blank_line":
            lines[at] = b" "
        else:
            lines[at] = b"\xff"
        _write(path, b"".join(line + b"\n" for line in lines))
        _fails(entry, "nuswide21", root, prefix)


NUS_LIST_KINDS = ("escape", "duplicate", "empty_line", "no_folder")


@FUZZ
@given(kind=st.sampled_from(NUS_LIST_KINDS), entry=ENTRY_POINTS, data=st.data())
def test_nuswide_fuzzed_image_list(templates, kind, entry, data):
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "nuswide21", scratch)
        path = os.path.join(root, "ImageList", "Imagelist.txt")
        lines = open(path, encoding="utf-8").read().splitlines()
        at = data.draw(st.integers(1, len(lines) - 1), label="line (0-based)")
        folder, file_name = lines[at].split("\\")[-2:]
        if kind == "escape":
            lines[at] = data.draw(
                st.sampled_from(
                    [
                        f"C:\\ImageData\\Flickr\\..\\{file_name}",
                        "C:\\ImageData\\..\\..",
                        f"../{folder}/..",
                        f"Flickr/{folder}/.",
                    ]
                )
            )
        elif kind == "duplicate":
            lines[at] = lines[data.draw(st.integers(0, at - 1))]
        elif kind == "empty_line":
            lines[at] = ""
        else:
            lines[at] = file_name
        _write(path, "\n".join(lines) + "\n")
        _fails(entry, "nuswide21", root, f"{path}:{at + 1}: ")


@pytest.mark.parametrize("text", ["", "\n", "\r\n"])
def test_nuswide_empty_image_list_names_the_file(templates, tmp_path, text):
    root = _copy(templates, "nuswide21", str(tmp_path))
    path = os.path.join(root, "ImageList", "Imagelist.txt")
    _write(path, text)
    prefix = f"{path}: image list has no entries" if not text else f"{path}:1: "
    _fails("prepare", "nuswide21", root, prefix)


# -------------------------------------------------------------- IAPR TC-12

DESCRIPTIONS = [
    "a man and a dog on the beach;",
    "a dog in the snow;",
    "the beach at sunset with a dog",
    "a woman on a Beach",
]

IAPR_KINDS = ("unclosed", "empty", "escape", "duplicate")


@FUZZ
@given(kind=st.sampled_from(IAPR_KINDS), entry=ENTRY_POINTS, data=st.data())
def test_iapr_fuzzed_eng_records(templates, kind, entry, data):
    count = len(DESCRIPTIONS)
    index = data.draw(st.integers(0, count - 1), label="record")
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "iapr-tc12", scratch)
        folder = os.path.join(root, "iaprtc12", "annotations_complete_eng")
        path = os.path.join(folder, "00", f"{1000 + index}.eng")
        text = open(path, encoding="latin-1").read()
        image_line = text[: text.index("<IMAGE>")].count("\n") + 1
        prefix = f"{path}:1: "
        if kind == "unclosed":
            tag = data.draw(st.sampled_from(["</IMAGE>", "</DESCRIPTION>"]))
            cut = data.draw(st.sampled_from(["drop", "truncate"]))
            text = (
                text.replace(tag, "")
                if cut == "drop"
                else text[: text.index(tag) + len(tag) - 1]
            )
        elif kind == "empty":
            text = data.draw(st.sampled_from(["", "\n", "<DOC></DOC>\n"]))
        elif kind == "escape":
            bad = data.draw(
                st.sampled_from(
                    ["../../../etc/passwd", "/etc/passwd", "images/../../x.jpg",
                     "", "C:\\images\\00\\1000.jpg", "..\\..\\x.jpg"]
                )
            )  # fmt: skip
            text = re.sub(
                r"<IMAGE>.*?</IMAGE>", lambda _: f"<IMAGE>{bad}</IMAGE>", text
            )
            prefix = f"{path}:{image_line}: "
        else:  # duplicate: the later file in reading order is named
            other = data.draw(
                st.integers(0, count - 1).filter(lambda k: k != index)
            )
            text = re.sub(
                r"<IMAGE>.*?</IMAGE>",
                f"<IMAGE>images/00/{1000 + other}.jpg</IMAGE>",
                text,
            )
            later = max(index, other)
            prefix = os.path.join(folder, "00", f"{1000 + later}.eng") + ":1: "
        _write(path, text.encode("latin-1"))
        _fails(entry, "iapr-tc12", root, prefix)


# ----------------------------------------------------------------- MS-COCO

COCO_KINDS = ("invalid_json", "missing_key", "unknown_category", "escape",
              "duplicate_file", "wrong_type")  # fmt: skip


def _delete(data, draw):
    """Deletes one required key somewhere in a COCO record."""
    where = draw(
        st.sampled_from(["top", "images", "annotations", "categories"])
    )
    if where == "top":
        del data[draw(st.sampled_from(["images", "annotations",
                                       "categories"]))]  # fmt: skip
        return
    keys = {
        "images": ["id", "file_name"],
        "annotations": ["image_id", "category_id"],
        "categories": ["id", "name"],
    }[where]
    item = data[where][draw(st.integers(0, len(data[where]) - 1))]
    del item[draw(st.sampled_from(keys))]


@FUZZ
@given(kind=st.sampled_from(COCO_KINDS), entry=ENTRY_POINTS, data=st.data())
def test_coco_fuzzed_instances_json(templates, kind, entry, data):
    subset = data.draw(st.sampled_from(["train2014", "val2014"]))
    with tempfile.TemporaryDirectory() as scratch:
        root = _copy(templates, "coco", scratch)
        path = os.path.join(root, "annotations", f"instances_{subset}.json")
        text = open(path, encoding="utf-8").read()
        record = json.loads(text)
        prefix = f"{path}: "
        if kind == "invalid_json":
            text = text[: data.draw(st.integers(0, len(text) - 1))]
            prefix = f"{path}: not valid JSON"
        elif kind == "missing_key":
            _delete(record, data.draw)
        elif kind == "unknown_category":
            row = data.draw(st.integers(0, len(record["annotations"]) - 1))
            record["annotations"][row]["category_id"] = data.draw(
                st.sampled_from([999, 0, "10", None])
            )
            prefix = f"{path}: annotations[{row}]: unknown category"
        elif kind == "escape":
            row = data.draw(st.integers(0, len(record["images"]) - 1))
            record["images"][row]["file_name"] = data.draw(
                st.sampled_from(
                    ["../x.jpg", "../../../etc/passwd", "/etc/passwd",
                     "a/../../b.jpg", "", "..\\x.jpg", 7]
                )
            )  # fmt: skip
            prefix = f"{path}: images[{row}]: "
        elif kind == "duplicate_file":
            row = data.draw(st.integers(1, len(record["images"]) - 1))
            first = record["images"][data.draw(st.integers(0, row - 1))]
            record["images"][row]["file_name"] = first["file_name"]
            prefix = f"{path}: images[{row}]: "
        else:  # wrong_type
            change = data.draw(st.sampled_from(["list", "images", "null"]))
            if change == "list":
                record = [record]
            elif change == "images":
                record["images"] = "images"
            else:
                record["categories"][0] = None
        if kind != "invalid_json":
            text = json.dumps(record)
        _write(path, text)
        _fails(entry, "coco", root, prefix)


# ----------------------------------------------------- valid inputs still work


def test_fuzzing_baseline_fixtures_prepare_cleanly(templates, tmp_path):
    """The uncorrupted copies pass, so every failure above is the fuzz's."""
    sizes = {"num_query": 1, "num_train": 2, "validation_fraction": 0.5}
    for name, options in (
        ("voc2012", {}),
        ("mirflickr25k", MIR_OPTIONS),
        ("nuswide21", {"top_k": 2, "num_query": 2}),
        ("iapr-tc12", {"num_classes": 3}),
        ("coco", {}),
    ):
        root = _copy(templates, name, str(tmp_path))
        directory, record = prepare(
            name, root, seed=0, check="exists", **{**sizes, **options}
        )
        assert os.path.isfile(os.path.join(directory, "manifest.json"))

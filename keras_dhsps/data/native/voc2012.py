"""PASCAL VOC2012 in its native layout (JPEGImages + Annotations XML).

Layout (as ``VOCtrainval_11-May-2012.tar`` extracts), under ``root``::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/Annotations/<id>.xml
    VOCdevkit/VOC2012/ImageSets/Main/trainval.txt   (optional)

``root`` may also be the ``VOC2012`` folder itself. The image ids are those
of ``ImageSets/Main/trainval.txt`` when present (11,540 images), else every
annotation file. An image's labels are the classes of its ``<object>``
elements; objects marked ``<difficult>1</difficult>`` count as negative by
default, as in DeepHash-pytorch's list (whose per-class totals equal the
official per-class trainval image counts, docs/peers.md §2). Image paths are
written relative to ``root`` as ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``,
the peers' form.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

from keras_dhsps.data.collection import Collection
from keras_dhsps.data.collection import labels_from_sets
from keras_dhsps.data.splits import Protocol
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import require_file

#: The 20 VOC classes, sorted (the peers' column order).
CLASS_NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

#: DeepHash-pytorch's sizes: 1,000 / 4,000 / 6,540 of the 11,540 trainval
#: images, disjoint, random (docs/peers.md §2).
PROTOCOL = Protocol(
    num_query=1000,
    num_train=4000,
    num_database=None,
    train_from_database=False,
    source="DeepHash-pytorch data/voc2012 (docs/peers.md §2)",
)


def _base(root: str) -> tuple[str, str]:
    """``(VOC2012 folder, its path relative to root)``."""
    for relative in (os.path.join("VOCdevkit", "VOC2012"), ""):
        candidate = os.path.join(root, relative)
        if os.path.isdir(os.path.join(candidate, "Annotations")):
            return candidate, relative
    raise DataError(
        f"{root}: not a VOC2012 directory (no VOCdevkit/VOC2012/Annotations "
        "or Annotations folder)"
    )


def _line_of(text: str, needle: str, start: int = 0) -> int:
    position = text.find(needle, start)
    return text.count("\n", 0, position) + 1 if position >= 0 else 1


def _nth(text: str, needle: str, index: int) -> int:
    """Offset of the ``index``-th (0-based) ``needle`` in ``text``, or 0."""
    position = -1
    for _ in range(index + 1):
        position = text.find(needle, position + 1)
        if position < 0:
            return 0
    return position


def read_annotation(path: str, *, include_difficult: bool = False) -> set[str]:
    """The class names of one annotation XML file.

    Raises:
        DataError: unparsable XML, an empty file, an ``<object>`` without
            ``<name>`` or an unknown class name (file and line).
    """
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        tree = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        line = error.position[0]
        raise DataError(f"{path}:{line}: malformed XML: {error}") from None
    text = data.decode("utf-8", errors="replace")
    names = set()
    for index, element in enumerate(tree.findall("object")):
        start = _nth(text, "<object", index)
        name = (element.findtext("name") or "").strip()
        if not name:
            raise DataError(
                f"{path}:{_line_of(text, '<object', start)}: <object> "
                "without a <name>"
            )
        if name not in CLASS_NAMES:
            raise DataError(
                f"{path}:{_line_of(text, '<name>', start)}: unknown class "
                f"name {name!r} (VOC2012 has {', '.join(CLASS_NAMES)})"
            )
        difficult = (element.findtext("difficult") or "0").strip() == "1"
        if include_difficult or not difficult:
            names.add(name)
    return names


def _read_ids(id_file: str) -> list[tuple[str, str]]:
    """``(image id, "file:line")`` of ``ImageSets/Main/trainval.txt``.

    Raises:
        DataError: a line that is not one plain image id (a path such as
            ``../x``, or several fields), an id listed twice, text that is
            not UTF-8, or no ids at all (file and line).
    """
    with open(id_file, "rb") as handle:
        raw = handle.read().splitlines()
    entries, seen = [], {}
    for number, line in enumerate(raw, start=1):
        try:
            fields = line.decode("utf-8").split()
        except UnicodeDecodeError:
            raise DataError(f"{id_file}:{number}: not UTF-8 text") from None
        if not fields:
            continue
        image_id = fields[0]
        if (
            len(fields) != 1
            or "/" in image_id
            or "\\" in image_id
            or image_id in (".", "..")
        ):
            raise DataError(
                f"{id_file}:{number}: expected one image id (a file name "
                f"without folder), found {line.decode().strip()!r}"
            )
        if image_id in seen:
            raise DataError(
                f"{id_file}:{number}: image id {image_id!r} listed twice "
                f"(first on line {seen[image_id]})"
            )
        seen[image_id] = number
        entries.append((image_id, f"{id_file}:{number}"))
    if not entries:
        raise DataError(f"{id_file}: no image ids")
    return entries


def scan(root: str, *, include_difficult: bool = False) -> Collection:
    """Reads every annotated image of a VOC2012 directory.

    Args:
        root: the directory holding ``VOCdevkit`` (or ``VOC2012`` itself).
        include_difficult: count objects marked difficult as positives.
    """
    base, relative = _base(root)
    id_file = os.path.join(base, "ImageSets", "Main", "trainval.txt")
    annotations = os.path.join(base, "Annotations")
    if os.path.isfile(id_file):
        entries = _read_ids(id_file)
    else:
        entries = [
            (name[: -len(".xml")], os.path.join(annotations, name))
            for name in sorted(os.listdir(annotations))
            if name.endswith(".xml")
        ]
    paths, label_sets, sources = [], [], []
    image_dir = "/".join(part for part in (relative, "JPEGImages") if part)
    image_dir = image_dir.replace(os.sep, "/")
    for image_id, source in entries:
        xml_path = os.path.join(annotations, image_id + ".xml")
        require_file(xml_path, f"{source}: annotation", error=DataError)
        label_sets.append(
            read_annotation(xml_path, include_difficult=include_difficult)
        )
        paths.append(f"{image_dir}/{image_id}.jpg")
        sources.append(source)
    if not paths:
        raise DataError(f"{annotations}: no annotations found")
    return Collection(
        name="voc2012",
        root=root,
        class_names=CLASS_NAMES,
        paths=paths,
        labels=labels_from_sets(label_sets, CLASS_NAMES),
        sources=sources,
    )

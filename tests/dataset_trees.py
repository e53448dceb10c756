"""Tiny dataset directories in each native layout, for the tests.

Every function writes a small but real-looking copy of a dataset's layout
(JPEG images made with PIL, annotation files in the official formats) under
a directory and returns the labels it wrote, so tests can compare a reader
against the ground truth. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os

import numpy as np


def write_jpeg(
    path: str,
    *,
    size: tuple[int, int] = (40, 30),
    seed: int = 0,
    quality: int = 90,
) -> None:
    """A smooth random colour image ``size=(width, height)`` as a JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    # A few random low-frequency gradients: compresses like a photo.
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        image[..., channel] = 127 + 120 * np.sin(
            a * x / 17 + b * y / 23 + c * 6
        )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(
        path, quality=quality
    )


def _label_sets(
    rng: np.random.Generator, count: int, classes: list[str], empty: int
) -> list[list[str]]:
    sets = []
    for index in range(count):
        if index < empty:
            sets.append([])
            continue
        size = int(rng.integers(1, min(3, len(classes)) + 1))
        sets.append(sorted(rng.choice(classes, size, replace=False).tolist()))
    return sets


def make_voc2012(
    root: str, *, count: int = 12, seed: int = 0, size=(40, 30)
) -> dict[str, list[str]]:
    """``root/VOCdevkit/VOC2012``: JPEGImages, Annotations, trainval.txt.

    Returns ``image id -> sorted class names`` (non-difficult objects). Each
    image also gets one ``difficult`` object of class ``person`` unless it
    already shows a person, which a reader must count as negative.
    """
    from keras_dhsps.data.native.voc2012 import CLASS_NAMES

    rng = np.random.default_rng(seed)
    base = os.path.join(root, "VOCdevkit", "VOC2012")
    ids = [f"2008_{index:06d}" for index in range(count)]
    truth = {}
    for image_id, names in zip(
        ids, _label_sets(rng, count, list(CLASS_NAMES), 0), strict=True
    ):
        write_jpeg(
            os.path.join(base, "JPEGImages", image_id + ".jpg"),
            size=size,
            seed=int(rng.integers(1 << 30)),
        )
        objects = [(name, 0) for name in names + names[:1]]  # duplicates
        if "person" not in names:
            objects.append(("person", 1))
        write_voc_annotation(
            os.path.join(base, "Annotations", image_id + ".xml"),
            image_id,
            objects,
        )
        truth[image_id] = names
    main = os.path.join(base, "ImageSets", "Main")
    os.makedirs(main, exist_ok=True)
    with open(os.path.join(main, "trainval.txt"), "w") as handle:
        handle.write("".join(image_id + "\n" for image_id in ids))
    return truth


def write_voc_annotation(
    path: str, image_id: str, objects: list[tuple[str, int]]
) -> None:
    """One VOC annotation XML: ``objects`` = ``[(class, difficult)]``."""
    parts = [
        "<annotation>",
        "\t<folder>VOC2012</folder>",
        f"\t<filename>{image_id}.jpg</filename>",
        "\t<source>",
        "\t\t<database>The VOC2008 Database</database>",
        "\t</source>",
        "\t<size>",
        "\t\t<width>500</width>",
        "\t\t<height>375</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for name, difficult in objects:
        parts += [
            "\t<object>",
            f"\t\t<name>{name}</name>",
            "\t\t<pose>Unspecified</pose>",
            "\t\t<truncated>0</truncated>",
            f"\t\t<difficult>{difficult}</difficult>",
            "\t\t<bndbox>",
            "\t\t\t<xmin>10</xmin>",
            "\t\t\t<ymin>20</ymin>",
            "\t\t\t<xmax>200</xmax>",
            "\t\t\t<ymax>300</ymax>",
            "\t\t</bndbox>",
            "\t\t<part>",
            "\t\t\t<name>head</name>",
            "\t\t</part>",
            "\t</object>",
        ]
    parts.append("</annotation>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts) + "\n")


def make_mirflickr(
    root: str, *, count: int = 30, unlabelled: int = 2, seed: int = 0
) -> list[list[str]]:
    """``root/mirflickr/im<n>.jpg`` + ``mirflickr25k_annotations_v080``.

    Returns per-image sorted label names among the 38; the first
    ``unlabelled`` images have none.
    """
    from keras_dhsps.data.native.mirflickr import class_names

    rng = np.random.default_rng(seed)
    names = list(class_names(38))
    sets = _label_sets(rng, count, names, unlabelled)
    for number in range(1, count + 1):
        write_jpeg(
            os.path.join(root, "mirflickr", f"im{number}.jpg"),
            seed=number,
        )
    annotations = os.path.join(root, "mirflickr25k_annotations_v080")
    os.makedirs(annotations, exist_ok=True)
    for name in names:
        members = [n for n in range(1, count + 1) if name in sets[n - 1]]
        with open(os.path.join(annotations, name + ".txt"), "w") as handle:
            handle.write("".join(f"{n}\r\n" for n in members))
    with open(os.path.join(annotations, "README.txt"), "w") as handle:
        handle.write("MIRFLICKR-25000 annotations\n")
    return sets


def make_nuswide(
    root: str,
    *,
    count: int = 40,
    concepts: int = 25,
    unlabelled: int = 3,
    seed: int = 0,
) -> tuple[list[str], np.ndarray]:
    """``ImageList/Imagelist.txt``, ``Groundtruth/AllLabels``, ``Flickr/``.

    Concept ``c<k>`` is positive for an image with probability decreasing
    in ``k`` so the most frequent concepts are well defined. Returns
    ``(concept names, (count, concepts) labels)``.
    """
    rng = np.random.default_rng(seed)
    names = [f"c{k:02d}" for k in range(concepts)]
    probability = np.linspace(0.6, 0.05, concepts)
    labels = (rng.random((count, concepts)) < probability).astype(np.uint8)
    labels[:unlabelled] = 0
    lines = []
    for index in range(count):
        folder = names[index % concepts]
        file_name = f"{index:04d}_{1000 + index}.jpg"
        write_jpeg(os.path.join(root, "Flickr", folder, file_name), seed=index)
        lines.append(f"C:\\ImageData\\Flickr\\{folder}\\{file_name}")
    os.makedirs(os.path.join(root, "ImageList"), exist_ok=True)
    with open(os.path.join(root, "ImageList", "Imagelist.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    label_dir = os.path.join(root, "Groundtruth", "AllLabels")
    os.makedirs(label_dir, exist_ok=True)
    for column, name in enumerate(names):
        with open(os.path.join(label_dir, f"Labels_{name}.txt"), "w") as f:
            f.write("".join(f"{v}\n" for v in labels[:, column]))
    return names, labels


def make_iapr(
    root: str, descriptions: list[str], *, seed: int = 0
) -> list[str]:
    """``root/iaprtc12/{images,annotations_complete_eng}/<NN>/<id>``.

    One image per description; returns the image paths relative to root.
    """
    base = os.path.join(root, "iaprtc12")
    paths = []
    for index, description in enumerate(descriptions):
        folder, image_id = f"{index // 10:02d}", str(1000 + index)
        write_jpeg(
            os.path.join(base, "images", folder, image_id + ".jpg"),
            seed=seed + index,
        )
        record = (
            "<DOC>\n"
            f"<DOCNO>annotations/{folder}/{image_id}.eng</DOCNO>\n"
            "<TITLE>Plaza de Armas</TITLE>\n"
            f"<DESCRIPTION>{description}</DESCRIPTION>\n"
            "<NOTES></NOTES>\n"
            "<LOCATION>Cuzco, Perú</LOCATION>\n"
            "<DATE>March 2002</DATE>\n"
            f"<IMAGE>images/{folder}/{image_id}.jpg</IMAGE>\n"
            f"<THUMBNAIL>thumbnails/{folder}/{image_id}.jpg</THUMBNAIL>\n"
            "</DOC>\n"
        )
        path = os.path.join(
            base, "annotations_complete_eng", folder, image_id + ".eng"
        )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="latin-1") as handle:
            handle.write(record)
        paths.append(f"iaprtc12/images/{folder}/{image_id}.jpg")
    return paths


def make_coco(
    root: str,
    *,
    count: int = 20,
    unannotated: int = 2,
    seed: int = 0,
    categories: tuple[str, ...] = ("person", "bicycle", "zebra", "apple"),
) -> dict[str, list[str]]:
    """``annotations/instances_{train,val}2014.json`` + image folders.

    Category ids are deliberately not in name order. Returns
    ``relative path -> sorted class names``.
    """
    rng = np.random.default_rng(seed)
    ids = {name: 10 * (index + 1) for index, name in enumerate(categories)}
    truth = {}
    for subset_index, subset in enumerate(("train2014", "val2014")):
        images, annotations = [], []
        for index in range(subset_index, count, 2):
            file_name = f"COCO_{subset}_{index:012d}.jpg"
            write_jpeg(os.path.join(root, subset, file_name), seed=index)
            images.append(
                {"id": index, "file_name": file_name, "width": 40, "height": 30}
            )
            names = (
                []
                if index < unannotated
                else sorted(
                    rng.choice(
                        categories, int(rng.integers(1, 3)), replace=False
                    ).tolist()
                )
            )
            for name in names + names[:1]:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": index,
                        "category_id": ids[name],
                        "bbox": [1, 2, 3, 4],
                        "iscrowd": 0,
                    }
                )
            truth[f"{subset}/{file_name}"] = names
        data = {
            "info": {"description": "COCO 2014 Dataset"},
            "images": images,
            "annotations": annotations,
            "categories": [
                {"id": ids[name], "name": name, "supercategory": "thing"}
                for name in reversed(categories)
            ],
        }
        path = os.path.join(root, "annotations", f"instances_{subset}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
    return truth

"""MS-COCO (2014 or 2017) from its instances JSON files, 80 classes.

Layout, under ``root``::

    annotations/instances_train2014.json, instances_val2014.json
    train2014/<file_name>, val2014/<file_name>

(or the ``2017`` names). Each image's labels are the categories of its
instance annotations; the classes are the 80 category names, sorted by
name (the peers order them by category id; sorting makes the column order
independent of the file). Images without annotations are dropped and
counted (82,783 + 40,504 images of 2014 leave 122,218 labelled, HashNet's
count).
"""

from __future__ import annotations

import os

import numpy as np

from keras_dhsps.data.collection import Collection
from keras_dhsps.data.splits import Protocol
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import read_json_file

#: HashNet's sizes: 5,000 queries, 10,000 training images; we draw training
#: images from the database (= every non-query image) and keep queries out
#: of the database (HashNet's lists put them in it; docs/peers.md §2).
PROTOCOL = Protocol(
    num_query=5000,
    num_train=10000,
    num_database=None,
    train_from_database=True,
    source="HashNet MS-COCO sizes, queries held out (docs/peers.md §2)",
)

SUBSETS = {
    "2014": ("train2014", "val2014"),
    "2017": ("train2017", "val2017"),
}


def _escapes(file_name: str) -> bool:
    """Whether an image ``file_name`` is empty, absolute or climbs out."""
    parts = file_name.replace("\\", "/").split("/")
    return (
        not file_name.strip()
        or file_name.startswith(("/", "\\"))
        or ":" in parts[0]
        or ".." in parts
    )


def _categories(path: str, data) -> dict[int, str]:
    """Category id -> name of one instances file; names non-empty strings."""
    categories = {c["id"]: c["name"] for c in data["categories"]}
    for key, name in categories.items():
        if not isinstance(name, str) or not name:
            raise DataError(
                f"{path}: category {key!r} has name {name!r}, not "
                "a non-empty string"
            )
    return categories


def _images(
    path: str,
    subset: str,
    data,
    entries: dict[str, str],
    image_labels: dict[str, set[str]],
) -> dict:
    """Registers the images of one instances file; returns id -> path.

    Adds each image's ``subset/file_name`` to ``entries`` (with where it
    was named) and, with no labels yet, to ``image_labels``.
    """
    by_id = {}
    for index, image in enumerate(data["images"]):
        where = f"{path}: images[{index}]"
        name = image["file_name"]
        if not isinstance(name, str) or _escapes(name):
            raise DataError(
                f"{where}: file_name {name!r} is not a file inside {subset}/"
            )
        relative = f"{subset}/{name}"
        if image["id"] in by_id:
            raise DataError(f"{where}: image id {image['id']!r} twice")
        if relative in entries:
            raise DataError(
                f"{where}: {relative} also named by "
                f"{entries[relative].rsplit(': ', 1)[1]}"
            )
        by_id[image["id"]] = relative
        entries[relative] = where
        image_labels.setdefault(relative, set())
    return by_id


def _annotate(
    path: str,
    data,
    categories: dict[int, str],
    by_id: dict,
    image_labels: dict[str, set[str]],
) -> None:
    """Adds each annotation's category name to its image's labels."""
    for index, annotation in enumerate(data["annotations"]):
        category = annotation["category_id"]
        if category not in categories:
            raise DataError(
                f"{path}: annotations[{index}]: unknown category id "
                f"{category!r}"
            )
        if annotation["image_id"] not in by_id:
            raise DataError(
                f"{path}: annotations[{index}]: unknown image id "
                f"{annotation['image_id']!r}"
            )
        image_labels[by_id[annotation["image_id"]]].add(categories[category])


def _read_subset(
    path: str,
    subset: str,
    entries: dict[str, str],
    image_labels: dict[str, set[str]],
) -> dict[int, str]:
    """Reads one instances file into ``entries`` and ``image_labels``.

    Returns its categories (id -> name); a missing field or a value of the
    wrong type is a DataError naming the file.
    """
    data = read_json_file(
        path, "COCO annotation file", error=DataError, kind=dict
    )
    try:
        categories = _categories(path, data)
        by_id = _images(path, subset, data, entries, image_labels)
        _annotate(path, data, categories, by_id, image_labels)
    except KeyError as error:
        raise DataError(f"{path}: missing field {error}") from None
    except (TypeError, AttributeError) as error:
        raise DataError(
            f"{path}: not a COCO instances file ({error})"
        ) from None
    return categories


def _label_matrix(
    image_labels: dict[str, set[str]], category_names: dict[int, str]
) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """Sorted class names, sorted paths and their 0/1 label matrix."""
    names = tuple(sorted(set(category_names.values())))
    column = {name: index for index, name in enumerate(names)}
    paths = sorted(image_labels)
    labels = np.zeros((len(paths), len(names)), np.uint8)
    for row, path in enumerate(paths):
        for name in image_labels[path]:
            labels[row, column[name]] = 1
    return names, paths, labels


def scan(root: str, *, year: str = "2014") -> Collection:
    """Reads the instances JSON files of a COCO directory.

    Raises:
        DataError: a missing or malformed JSON file, or an annotation whose
            category id is not among the file's categories (file and the
            annotation's index).
    """
    if str(year) not in SUBSETS:
        raise DataError(f"unknown COCO year {year!r}; known: 2014, 2017")
    category_names: dict[int, str] = {}
    entries: dict[str, str] = {}  # path -> where it was named
    image_labels: dict[str, set[str]] = {}
    found = False
    for subset in SUBSETS[str(year)]:
        path = os.path.join(root, "annotations", f"instances_{subset}.json")
        if not os.path.isfile(path):
            continue
        found = True
        categories = _read_subset(path, subset, entries, image_labels)
        for key, name in categories.items():
            if category_names.get(key, name) != name:
                raise DataError(f"{path}: category {key} renamed to {name!r}")
            category_names[key] = name
    if not found:
        raise DataError(
            f"{os.path.join(root, 'annotations')}: no instances_*{year}.json"
        )
    names, paths, labels = _label_matrix(image_labels, category_names)
    return Collection(
        name="coco",
        root=root,
        class_names=names,
        paths=paths,
        labels=labels,
        sources=[entries[path] for path in paths],
    )

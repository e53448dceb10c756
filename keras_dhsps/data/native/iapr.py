"""IAPR TC-12 from the official benchmark (images + English annotations).

Layout (``iaprtc12.tgz`` extracted), under ``root`` or ``root/iaprtc12``::

    images/<NN>/<id>.jpg
    annotations_complete_eng/<NN>/<id>.eng

Each ``.eng`` file is a small SGML record (``<DOC>``, ``<DOCNO>``,
``<TITLE>``, ``<DESCRIPTION>``, ``<NOTES>``, ``<LOCATION>``, ``<DATE>``,
``<IMAGE>images/NN/id.jpg</IMAGE>``), ISO-8859-1 encoded.

No hashing peer publishes an image-only IAPR TC-12 label set and the
paper's label count is unknown (docs/method.md §4), so the label set is
ours, documented here: the labels of an image are the vocabulary words
that occur in its ``<DESCRIPTION>`` (lower-cased alphabetic tokens, English
stop words and words shorter than 3 letters removed); the vocabulary is the
``num_classes`` words that occur in the most images, ties broken
alphabetically (default 255, the label count of the DCMH cross-modal
convention; the labels themselves differ). ``vocabulary=`` names the words
explicitly; a word that occurs in no description is an error.
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np

from keras_dhsps.data.collection import Collection
from keras_dhsps.data.collection import labels_from_sets
from keras_dhsps.data.splits import Protocol
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import UnknownNameError

#: Cross-modal convention (torchcmh tc12.py): 2,000 queries, 10,000
#: training images drawn from the retrieval set = every non-query image.
PROTOCOL = Protocol(
    num_query=2000,
    num_train=10000,
    num_database=None,
    train_from_database=True,
    source="torchcmh IAPR TC-12 sizes (docs/peers.md §2); label set ours",
)

#: Words never used as labels: English function words and annotation
#: boilerplate.
STOP_WORDS = frozenset(
    """
    a about above across after against along among an and another are around
    as at be behind below beneath beside besides between beyond both but by
    can down during each either for from front has have her here his in
    inside into is it its left middle near next of off on one onto or other
    out outside over right some the their them there these they this those
    three through to top two under up very which while with without
    """.split()
)

_FIELD = re.compile(r"<(DESCRIPTION|IMAGE)>(.*?)</\1>", re.S | re.I)
_WORD = re.compile(r"[a-z]+")


def _base(root: str) -> str:
    for candidate in (os.path.join(root, "iaprtc12"), root):
        if os.path.isdir(os.path.join(candidate, "annotations_complete_eng")):
            return candidate
    raise DataError(
        f"{root}: not an IAPR TC-12 directory "
        "(no annotations_complete_eng folder)"
    )


def _escapes(relative: str) -> bool:
    """Whether a relative image path is empty, absolute or climbs out."""
    parts = relative.replace("\\", "/").split("/")
    return (
        not relative
        or relative.startswith(("/", "\\"))
        or ":" in parts[0]
        or ".." in parts
    )


def read_annotation(path: str) -> tuple[str, set[str]]:
    """``(image path relative to the benchmark folder, description words)``.

    Raises:
        DataError: no ``<IMAGE>`` or ``<DESCRIPTION>`` element (file, line
            1), or an ``<IMAGE>`` path that is empty, absolute or escapes
            the benchmark folder (file and its line).
    """
    with open(path, encoding="latin-1") as handle:
        text = handle.read()
    fields, lines = {}, {}
    for match in _FIELD.finditer(text):
        key = match.group(1).upper()
        fields[key] = match.group(2)
        lines[key] = text.count("\n", 0, match.start()) + 1
    for key in ("IMAGE", "DESCRIPTION"):
        if key not in fields:
            raise DataError(f"{path}:1: no <{key}> element")
    image = fields["IMAGE"].strip()
    if _escapes(image):
        raise DataError(
            f"{path}:{lines['IMAGE']}: <IMAGE> {image!r} is not a path "
            "inside the benchmark folder"
        )
    words = {
        word
        for word in _WORD.findall(fields["DESCRIPTION"].lower())
        if len(word) >= 3 and word not in STOP_WORDS
    }
    return image, words


def scan(
    root: str,
    *,
    num_classes: int = 255,
    vocabulary: list[str] | None = None,
) -> Collection:
    """Reads every ``.eng`` annotation of an IAPR TC-12 directory.

    Args:
        root: the benchmark directory (or its parent).
        num_classes: size of the most-frequent-word vocabulary.
        vocabulary: explicit label words instead.

    Raises:
        DataError: no annotations or a malformed one.
        UnknownNameError: a ``vocabulary`` word occurs in no description.
    """
    base = _base(root)
    prefix = os.path.relpath(base, root).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    annotation_dir = os.path.join(base, "annotations_complete_eng")
    paths, word_sets, sources, seen = [], [], [], {}
    for folder, _, files in sorted(os.walk(annotation_dir)):
        for name in sorted(files):
            if not name.endswith(".eng"):
                continue
            path = os.path.join(folder, name)
            image, words = read_annotation(path)
            if prefix + image in seen:
                raise DataError(
                    f"{path}:1: image {image!r} is also annotated by "
                    f"{seen[prefix + image]}"
                )
            seen[prefix + image] = path
            paths.append(prefix + image)
            word_sets.append(words)
            sources.append(f"{path}:1")
    if not paths:
        raise DataError(f"{annotation_dir}: no .eng annotation files")
    frequency = collections.Counter(w for words in word_sets for w in words)
    if vocabulary is not None:
        unknown = sorted(set(vocabulary) - set(frequency))
        if unknown:
            raise UnknownNameError(
                f"unknown IAPR TC-12 label {unknown[0]!r}: it occurs in no "
                f"description under {annotation_dir}"
            )
        names = tuple(sorted(set(vocabulary)))
    else:
        ranked = sorted(frequency, key=lambda w: (-frequency[w], w))
        names = tuple(sorted(ranked[:num_classes]))
    kept = [words & set(names) for words in word_sets]
    return Collection(
        name="iapr-tc12",
        root=root,
        class_names=names,
        paths=paths,
        labels=labels_from_sets(kept, names).astype(np.uint8),
        sources=sources,
    )

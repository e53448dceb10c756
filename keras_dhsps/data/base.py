"""The in-memory description of a retrieval dataset and its splits."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.utils.errors import DataError

#: Split names, in the order they are reported. ``validation`` is carved
#: from training data and is the only split used for model selection.
SPLIT_NAMES = ("train", "validation", "query", "database")


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: multi-hot labels plus either decoded images or file paths.

    Attributes:
        labels: ``(N, C)`` uint8 multi-hot labels.
        images: ``(N, H, W, 3)`` uint8 images held in memory, or None.
        paths: N image file paths (absolute), or None.
        manifest_checksum: the checksum of the manifest the split was
            loaded from, or None; keys image stores
            (``keras_dhsps.data.store``).
    """

    labels: NDArray[np.uint8]
    images: NDArray[np.uint8] | None = None
    paths: tuple[str, ...] | None = None
    manifest_checksum: str | None = dataclasses.field(
        default=None, compare=False
    )

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise ValueError("a Split holds exactly one of images or paths")
        count = len(self.images) if self.images is not None else len(self.paths)
        if count != len(self.labels):
            raise ValueError(
                f"{count} images but {len(self.labels)} label rows"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class RetrievalDataset:
    """A named dataset: class names and its splits.

    Attributes:
        name: the registry name it was loaded with.
        class_names: C names, in label-column order.
        splits: split name -> :class:`Split` (see :data:`SPLIT_NAMES`).
        info: provenance, JSON-ready (manifest path, dropped images by
            reason, overlaps between splits); empty for generated data.
    """

    name: str
    class_names: tuple[str, ...]
    splits: Mapping[str, Split]
    info: Mapping = dataclasses.field(default_factory=dict)

    def split(self, name: str) -> Split:
        """The split called ``name``; DataError if the dataset lacks it."""
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no {name!r} split "
                f"(it has: {', '.join(self.splits)})"
            )
        return self.splits[name]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict:
        """Counts per split and labels per image, JSON-ready."""
        return {
            "dataset": self.name,
            "classes": len(self.class_names),
            "splits": {
                name: {
                    "images": len(split),
                    "labels_per_image": round(
                        float(split.labels.sum(axis=1).mean()), 3
                    )
                    if len(split)
                    else 0.0,
                }
                for name, split in self.splits.items()
            },
            **({"info": dict(self.info)} if self.info else {}),
        }


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Full batches per epoch (at least one: a split smaller than one batch
    is one batch)."""
    return max(count // batch_size, 1)

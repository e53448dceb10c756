"""Datasets: a registry from names to loaders, the splits, the pipeline.

:func:`load_dataset` is the one entry point: ``load_dataset("digits-mosaic")``
needs nothing else; datasets read from disk also take ``root``:

* ``"voc2012"``, ``"mirflickr25k"`` (``num_labels=38`` or 24),
  ``"nuswide21"``, ``"iapr-tc12"``, ``"coco"``: native layouts (see
  :mod:`keras_dhsps.data.native`); they read the manifest written by
  ``dhsps data prepare`` when there is one, else draw the same seeded split
  on the fly. Options: the reader's own plus ``num_query``, ``num_train``,
  ``num_database``, ``validation_fraction``, ``manifest_dir``.
* ``"label-mosaic:voc2012"`` (``:mirflickr25k``, ``:nuswide21``,
  ``:coco``): generated images carrying real label rows of that dataset
  (:mod:`keras_dhsps.data.label_mosaic`); no download, no ``root``.
* ``"lists"``: the peers' ``relative/path l_1 ... l_C`` list files.

Nothing here imports TensorFlow (only :mod:`keras_dhsps.data.tfdata_reader`
does), so data errors are reported before TensorFlow starts.
"""

from __future__ import annotations

import inspect

from keras_dhsps.data.base import SPLIT_NAMES
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.data.digits_mosaic import load_digits_mosaic
from keras_dhsps.data.label_mosaic import DATASETS as LABEL_MOSAIC_DATASETS
from keras_dhsps.data.label_mosaic import load_label_mosaic
from keras_dhsps.data.listfile import load_list_files
from keras_dhsps.data.native import NATIVE
from keras_dhsps.data.native import load_native
from keras_dhsps.data.native import prepare
from keras_dhsps.data.options import check_options
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import UnknownNameError


def _generated(label, load, *args):
    """The registry loader of a dataset generated in memory: it refuses a
    ``--data-root`` and passes the seed and the split options to ``load``
    (its signature lists them, so unknown options are refused by name)."""

    def loader(root, seed, **options):
        if root is not None:
            raise DataError(
                f"{label} is generated in memory and takes no --data-root"
            )
        return load(*args, seed=seed, **options)

    options = [
        parameter
        for parameter in inspect.signature(load).parameters.values()
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.name != "seed"
    ]
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    loader.__signature__ = inspect.Signature(
        [
            inspect.Parameter("root", positional),
            inspect.Parameter("seed", positional),
            *options,
        ]
    )
    loader.__name__ = f"load_{label.replace('-', '_').replace(':', '_')}"
    return loader


def _lists(
    root,
    seed,
    *,
    lists_dir=None,
    validation_fraction=0.1,
    drop_unlabelled=True,
):
    return load_list_files(
        root,
        seed=seed,
        lists_dir=lists_dir,
        validation_fraction=validation_fraction,
        drop_unlabelled=drop_unlabelled,
    )


def _native(name):
    def loader(root, seed, **options):
        return load_native(name, root, seed, **options)

    loader.__name__ = f"load_{name.replace('-', '_')}"
    return loader


#: name -> ``loader(root, seed, **options) -> RetrievalDataset``.
DATASETS = {
    "digits-mosaic": _generated("digits-mosaic", load_digits_mosaic),
    **{
        f"label-mosaic:{name}": _generated(
            f"label-mosaic:{name}", load_label_mosaic, name
        )
        for name in LABEL_MOSAIC_DATASETS
    },
    "lists": _lists,
    **{name: _native(name) for name in NATIVE},
}


def load_dataset(name, *, root=None, seed=0, **options) -> RetrievalDataset:
    """Loads the dataset registered under ``name``.

    Args:
        name: a key of :data:`DATASETS`.
        root: the dataset directory, for datasets read from disk.
        seed: seed of the split protocol.
        **options: dataset-specific options (split sizes, ...).

    Raises:
        UnknownNameError: no dataset of that name.
        DataError: missing or malformed files.
    """
    if name not in DATASETS:
        raise UnknownNameError(
            f"unknown dataset {name!r}; known datasets: "
            f"{', '.join(sorted(DATASETS))}"
        )
    loader = DATASETS[name]
    try:
        inspect.signature(loader).bind(root, seed, **options)
    except TypeError as error:
        raise DataError(f"bad options for dataset {name!r}: {error}") from None
    return loader(root, seed, **options)


def load_configured_dataset(data_config, *, root=None) -> RetrievalDataset:
    """:func:`load_dataset` for a ``keras_dhsps.config.DataConfig`` (its
    name, seed and options) and a data root from the command line."""
    check_options(data_config)
    return load_dataset(
        data_config.name,
        root=root,
        seed=data_config.seed,
        **data_config.options,
    )


__all__ = [
    "DATASETS",
    "SPLIT_NAMES",
    "RetrievalDataset",
    "Split",
    "load_configured_dataset",
    "load_dataset",
    "load_digits_mosaic",
    "load_label_mosaic",
    "load_list_files",
    "load_native",
    "prepare",
]

"""The protocol shared by the paper-table configs, and their smoke variant.

The paper's body could not be read when these configs were written
(docs/method.md §8): the protocol is the authors' released code
(docs/method.md §3) and the metric cut-offs are our choice, stated here.

* hasher: Caffe AlexNet (``bvlc_alexnet.npy``, BGR mean-subtracted input,
  227×227 direct resize) → Dense(K) → softsign, as the authors' code;
* optimizer: Adam (ε = 1e-8), 1e-3 on the hash layer, ×0.01 on AlexNet,
  both ×0.5 every 500 steps; batch 128; 100 epochs; model = last epoch;
* loss defaults: β = 5, γ = 0.1, α = 0.1;
* metrics: mAP@all (mAP@5000 on NUS-WIDE, whose database has ~190 k
  images), WAP@100, NDCG@100, ACG@100 (DSRH definitions,
  keras_dhsps.metrics); relevance = shares ≥ 1 label, graded r = shared
  labels; ties broken by database index;
* baselines: the same model, data and loop with another loss (DHN, DPSH,
  HashNet, DSH, CSQ); shallow LSH, ITQ, SH and SDH on AlexNet fc7 features.

The AlexNet weights are a local file the user passes with
``--set model.backbone_weights=/path/to/bvlc_alexnet.npy``; nothing is
downloaded. Results go to ``results/<table>/``; the paper column reads
``reproduce/reference/<table>.json``, which takes only values with a cited
source (none is transcribed yet: docs/method.md §6).

Runtime: unmeasured; see README. No GPU run of these configs has been
timed yet. The work is known: one deep run is 100 epochs over the training
split (400,000 images for VOC2012 and MIRFlickr-25K, 1,000,000 or more for
NUS-WIDE and IAPR TC-12) plus one encoding of the query and database
splits; shallow baselines cost one feature extraction each. The README's
"Reproducing the paper" table gives a per-table estimate and what it rests
on. ``smoke`` swaps in digits-mosaic, the small CNN, 12 bits and one epoch
so every table runs on a CPU in seconds (``--smoke``).
"""

import dataclasses
import os

from keras_dhsps.config import DataConfig
from keras_dhsps.config import EvalConfig
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import InputConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.experiments import Method
from keras_dhsps.experiments import TableConfig
from keras_dhsps.experiments.references import load_reference
from keras_dhsps.utils.errors import ConfigError

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "reference")

BITS = (12, 24, 32, 48)
METRICS_ALL = ("map@all", "wap@100", "ndcg@100", "acg@100")

DEEP_METHODS = (
    Method("IDHN", LossConfig("idhn")),
    Method("DHN", LossConfig("dhn")),
    Method("DPSH", LossConfig("dpsh")),
    Method("HashNet", LossConfig("hashnet")),
    Method("DSH", LossConfig("dsh")),
    Method("CSQ", LossConfig("csq")),
)
SHALLOW_METHODS = (
    Method("LSH", shallow="lsh"),
    Method("ITQ", shallow="itq"),
    Method("SH", shallow="sh"),
    Method("SDH", shallow="sdh"),
)
ALL_METHODS = DEEP_METHODS + SHALLOW_METHODS

SMOKE_DATA = {
    "num_train": 64,
    "num_validation": 16,
    "num_query": 16,
    "num_database": 48,
}


def authors_protocol(dataset, *, map_at=("all",), data_options=None):
    """The experiment every cell of a paper table starts from."""
    return ExperimentConfig(
        name=dataset,
        data=DataConfig(name=dataset, seed=0, options=dict(data_options or {})),
        model=ModelConfig(backbone="alexnet", activation="softsign"),
        loss=LossConfig("idhn"),
        train=TrainConfig(
            epochs=100,
            batch_size=128,
            learning_rate=1e-3,
            backbone_lr_multiplier=0.01,
            decay_steps=500,
            decay_rate=0.5,
            adam_epsilon=1e-8,
        ),
        # The authors' input: every image resized straight to 227x227, no
        # crop, no flip (docs/method.md §3); decoded once into the store.
        input=InputConfig(
            resize="direct", random_crop=False, random_flip=False
        ),
        eval=EvalConfig(
            map_at=tuple(map_at), ndcg_at=(100,), acg_at=(100,), wap_at=(100,)
        ),
    )


def smoke(table):
    """The same table on digits-mosaic with a tiny budget (for tests)."""
    base = table.base
    base = dataclasses.replace(
        base,
        data=DataConfig(name="digits-mosaic", seed=0, options=dict(SMOKE_DATA)),
        model=dataclasses.replace(
            base.model, backbone="small_cnn", backbone_weights=None
        ),
        train=dataclasses.replace(
            base.train,
            epochs=1,
            batch_size=32,
            backbone_lr_multiplier=1.0,
            decay_steps=0,
        ),
        eval=dataclasses.replace(base.eval, map_at=("all",)),
    )
    metrics = tuple(
        "map@all" if metric.startswith("map@") else metric
        for metric in table.metrics
    )
    return dataclasses.replace(
        table, base=base, bits=(12,), seeds=(0,), metrics=metrics
    )


def parse_arg(arg):
    """Validates a config ``arg``: None or ``"smoke"``."""
    if arg not in (None, "smoke"):
        raise ConfigError(
            f"unknown arg {arg!r}; this table takes none (the paper's "
            "table) or smoke"
        )
    return arg


def paper_table(
    arg,
    *,
    name,
    title,
    dataset,
    map_at="all",
    methods=None,
    bits=None,
):
    """A result table under the authors' protocol, with the values cited
    for it in ``reproduce/reference/<name>.json`` beside ours.

    Args:
        arg: the config ``arg`` (None or ``"smoke"``).
        name: the table's name (and its reference file's).
        title: the Markdown title.
        dataset: a name in ``keras_dhsps.data.DATASETS``.
        map_at: the mAP cut-off (``"all"`` or a number).
        methods: the rows (default: IDHN vs every baseline, the paper's).
        bits: the code lengths (default: the paper's 12-48).
    """
    parse_arg(arg)
    table = TableConfig(
        name=name,
        title=title
        if methods is not None
        else f"{title}: IDHN vs deep and shallow baselines",
        base=authors_protocol(dataset, map_at=(map_at,)),
        methods=ALL_METHODS if methods is None else tuple(methods),
        bits=BITS if bits is None else tuple(bits),
        seeds=(0,),
        metrics=(f"map@{map_at}", "wap@100", "ndcg@100", "acg@100"),
        reference=load_reference(os.path.join(REFERENCE_DIR, f"{name}.json")),
    )
    return smoke(table) if arg == "smoke" else table

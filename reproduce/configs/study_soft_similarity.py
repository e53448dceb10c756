"""When does soft similarity help? IDHN, its ablations and DPSH on five
datasets whose label structure differs (issue 15).

Parts (the config ``arg``; each is one table):

* ``digits-mosaic`` (default), ``voc2012``, ``mirflickr25k``, ``nuswide21``,
  ``coco``: IDHN, hard-only (``idhn_hard_only``), soft-only
  (``idhn_soft_only``) and DPSH at 12 and 48 bits, seeds 0, 1, 2, on
  digits-mosaic or ``label-mosaic:<dataset>`` (real label rows of that
  dataset; keras_dhsps/data/label_mosaic.py);
* ``gamma``: IDHN's soft weight γ ∈ {0.01, 0.1, 1} on
  ``label-mosaic:mirflickr25k`` (the dataset with the most soft pairs),
  same bits and seeds (γ = 0.1 is the default: it shares its cells with
  the ``mirflickr25k`` part);
* ``PART-smoke`` (and ``smoke`` for digits-mosaic): the same table on tiny
  splits, one epoch, one seed, 12 bits, for the tests.

Everything but the loss is digits_mosaic.py's: small CNN from scratch,
32×32 images, 2,000 train / 250 validation / 500 query / 2,000 database,
batch 64, Adam 1e-3 halved every 300 steps. The budget (epochs) is one per
dataset, the same for every method, read from
``reproduce/results/study_soft_similarity/budgets.json`` written by
``python reproduce/study_soft_similarity.py budgets``: one run of 120
epochs each of IDHN and hard-only at 48 bits, seed 0, with validation mAP
(validation queries against the training images, never the query split)
every 10 epochs; a method's budget is the first checkpoint after which
validation mAP rises by less than 0.005 over the next two checkpoints, and
the dataset's budget is the larger of the two. Until a dataset has both
curves its budget is 30 epochs, and the table title says so.

Command (the whole study, results, figure; see the script's docstring):
    python reproduce/study_soft_similarity.py budgets
    python reproduce/study_soft_similarity.py run
One part alone:
    python -m keras_dhsps reproduce \\
        reproduce/configs/study_soft_similarity.py:voc2012
"""

import dataclasses
import json
import os

from keras_dhsps.config import DataConfig
from keras_dhsps.config import EvalConfig
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.experiments import Method
from keras_dhsps.experiments import TableConfig

DATASET_PARTS = (
    "digits-mosaic",
    "voc2012",
    "mirflickr25k",
    "nuswide21",
    "coco",
)
PARTS = (*DATASET_PARTS, "gamma")
GAMMA_DATASET = "mirflickr25k"
GAMMAS = (0.01, 0.1, 1.0)
BITS = (12, 48)
SEEDS = (0, 1, 2)
DEFAULT_EPOCHS = 30
BUDGETS_FILE = os.path.join(
    os.path.dirname(__file__),
    "..",
    "results",
    "study_soft_similarity",
    "budgets.json",
)
SMOKE_DATA = {
    "num_train": 64,
    "num_validation": 16,
    "num_query": 16,
    "num_database": 48,
}
METHODS = (
    Method("IDHN", LossConfig("idhn")),
    Method("hard-only", LossConfig("idhn_hard_only")),
    Method("soft-only", LossConfig("idhn_soft_only")),
    Method("DPSH", LossConfig("dpsh")),
)


def dataset_name(part):
    """The registry name of a dataset part."""
    return part if part == "digits-mosaic" else f"label-mosaic:{part}"


def budget(part, budgets_file=BUDGETS_FILE):
    """``(epochs, how chosen)`` of a dataset part."""
    if os.path.isfile(budgets_file):
        with open(budgets_file, encoding="utf-8") as handle:
            chosen = json.load(handle)["budgets"]
        entry = chosen.get(part, {})
        if "epochs" in entry:
            how = "chosen on validation mAP"
            if not entry.get("plateau", True):
                how = "the cap: validation mAP still rising"
            return int(entry["epochs"]), how
    return DEFAULT_EPOCHS, "default, not yet chosen on validation"


def base_experiment(part, epochs):
    """The experiment every cell of a dataset part starts from."""
    return ExperimentConfig(
        name=f"study_soft_similarity/{part}",
        data=DataConfig(name=dataset_name(part), seed=0),
        model=ModelConfig(backbone="small_cnn", activation="tanh"),
        train=TrainConfig(
            epochs=epochs,
            batch_size=64,
            learning_rate=1e-3,
            backbone_lr_multiplier=1.0,
            decay_steps=300,
            decay_rate=0.5,
        ),
        eval=EvalConfig(
            map_at=("all",), ndcg_at=(100,), acg_at=(100,), wap_at=(100,)
        ),
    )


def _parse(arg):
    part, smoke = arg or "digits-mosaic", False
    if part == "smoke":
        part, smoke = "digits-mosaic", True
    elif part.endswith("-smoke"):
        part, smoke = part[: -len("-smoke")], True
    if part not in PARTS:
        raise ValueError(
            f"unknown arg {arg!r}; use one of {', '.join(PARTS)}, "
            "optionally followed by -smoke, or smoke"
        )
    return part, smoke


def _smoke(table):
    base = table.base
    return dataclasses.replace(
        table,
        base=dataclasses.replace(
            base,
            data=dataclasses.replace(base.data, options=dict(SMOKE_DATA)),
            train=dataclasses.replace(base.train, epochs=1, batch_size=32),
        ),
        bits=(12,),
        seeds=(0,),
    )


def get_config(arg=None):
    """``arg``: a part (default ``digits-mosaic``), ``PART-smoke``, or
    ``smoke``; see the module docstring."""
    part, smoke = _parse(arg)
    dataset_part = GAMMA_DATASET if part == "gamma" else part
    epochs, chosen = budget(dataset_part)
    if part == "gamma":
        methods = tuple(
            Method(
                f"IDHN γ={gamma:g}",
                # γ = 0.1 is the default: no params, so the cell is shared.
                LossConfig(
                    "idhn", {} if gamma == 0.1 else {"soft_weight": gamma}
                ),
            )
            for gamma in GAMMAS
        )
        title = f"IDHN soft weight γ on {dataset_name(dataset_part)}"
    else:
        methods = METHODS
        title = f"Soft similarity study on {dataset_name(part)}"
    table = TableConfig(
        name=f"study_soft_similarity_{part}",
        title=f"{title} ({epochs} epochs: {chosen})",
        base=base_experiment(dataset_part, epochs),
        methods=methods,
        bits=BITS,
        seeds=SEEDS,
        metrics=("map@all", "ndcg@100", "acg@100", "wap@100"),
    )
    return _smoke(table) if smoke else table

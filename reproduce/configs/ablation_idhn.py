"""IDHN ablations on MIRFlickr-25K at 12, 24, 32 and 48 bits.

Each row changes one thing of IDHN (common.py's protocol, the authors'
code): the hard-only similarity of DHN (every pair sharing a label counted
similar, cross-entropy everywhere), soft-only (the MSE term on every pair,
no cross-entropy), no quantization term (α = 0), and DeepHash-pytorch's
variant of the loss (θ = ½⟨u,u⟩, its γ(θ + K − 2Ks)² soft term; in-batch
pairs here: its memory bank of all training codes needs per-sample indices,
see keras_dhsps.losses.ablations).

Command:
    python -m keras_dhsps reproduce --table ablation_idhn \\
        --data-root /data/mirflickr25k \\
        --set model.backbone_weights=/weights/bvlc_alexnet.npy \\
        --output results/ablation_idhn
    ... --smoke    # on digits-mosaic, seconds on a CPU

Expected: no published numbers are transcribed (docs/method.md §6).

Runtime: unmeasured; see README. 5 methods × 4 code lengths = 20 AlexNet
runs of 100 epochs over 4,000 training images each (400,000 images per
run), as for the MIRFlickr-25K table (common.py).
"""

from common import BITS
from common import authors_protocol
from common import parse_arg
from common import smoke

from keras_dhsps.config import LossConfig
from keras_dhsps.experiments import Method
from keras_dhsps.experiments import TableConfig


def get_config(arg=None):
    """``arg``: None (the ablation table) or ``"smoke"``."""
    parse_arg(arg)
    table = TableConfig(
        name="ablation_idhn",
        title="IDHN ablations on MIRFlickr-25K",
        base=authors_protocol("mirflickr25k"),
        methods=(
            Method("IDHN", LossConfig("idhn")),
            Method("hard-only", LossConfig("idhn_hard_only")),
            Method("soft-only", LossConfig("idhn_soft_only")),
            Method("no quantization", LossConfig("idhn_no_quantization")),
            Method("DeepHash-pytorch variant", LossConfig("idhn_dhp")),
        ),
        bits=BITS,
        seeds=(0,),
        metrics=("map@all", "wap@100", "ndcg@100", "acg@100"),
    )
    return smoke(table) if arg == "smoke" else table

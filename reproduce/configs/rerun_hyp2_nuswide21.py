"""NUS-WIDE-21 under the HyP2 Loss protocol, beside their re-run of IDHN.

Xu et al., "HyP2 Loss", ACM MM 2022 (arXiv 2208.06866), re-ran the public
IDHN code ("IDHN †") on NUS-WIDE (21 concepts): 2,100 query / 10,500
train, AlexNet, mAP@5000, at 12, 24, 36 and 48 bits. This table runs
IDHN under that protocol (common.py's hasher and optimizer, the authors'
code) so a user with the data compares like with like; the column
"reported by others (re-run)" reads reproduce/reference/
rerun_hyp2_nuswide21.json, with its source printed under the table.
These are not the IDHN paper's numbers.

Command:
    python -m keras_dhsps reproduce --table rerun_hyp2_nuswide21 \\
        --data-root /data/nuswide21 \\
        --set model.backbone_weights=/weights/bvlc_alexnet.npy
    ... --smoke    # on digits-mosaic, seconds on a CPU

Runtime: 4 AlexNet runs of 100 epochs over 10,500 images, and the
~190,000-image database encoded once per run (common.py's
estimate per run; not measured here, no GPU was available).
"""

from common import paper_table

from keras_dhsps.config import LossConfig
from keras_dhsps.experiments import Method


def get_config(arg=None):
    """``arg``: None (the table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="rerun_hyp2_nuswide21",
        title="NUS-WIDE-21, HyP2 Loss protocol (mAP@5000, 12-48 bits)",
        dataset="nuswide21",
        map_at=5000,
        methods=(Method("IDHN", LossConfig("idhn")),),
        bits=(12, 24, 36, 48),
    )

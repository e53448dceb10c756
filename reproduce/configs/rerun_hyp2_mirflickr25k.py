"""MIRFlickr-25K under the HyP2 Loss protocol, beside their re-run of IDHN.

Xu et al., "HyP2 Loss", ACM MM 2022 (arXiv 2208.06866), re-ran the public
IDHN code ("IDHN †") on MIRFlickr-25K: 1,000 query / 4,000 train / the rest
as database, AlexNet, mAP@1000, at 12, 24, 36 and 48 bits. This table runs
IDHN under that protocol (common.py's hasher and optimizer, the authors'
code) so a user with the data compares like with like; the column
"reported by others (re-run)" reads reproduce/reference/
rerun_hyp2_mirflickr25k.json, with its source printed under the table.
These are not the IDHN paper's numbers.

Command:
    python -m keras_dhsps reproduce --table rerun_hyp2_mirflickr25k \\
        --data-root /data/mirflickr25k \\
        --set model.backbone_weights=/weights/bvlc_alexnet.npy
    ... --smoke    # on digits-mosaic, seconds on a CPU

Runtime: 4 AlexNet runs of 100 epochs over 4,000 images (common.py's
estimate per run; not measured here, no GPU was available).
"""

from common import paper_table

from keras_dhsps.config import LossConfig
from keras_dhsps.experiments import Method


def get_config(arg=None):
    """``arg``: None (the table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="rerun_hyp2_mirflickr25k",
        title="MIRFlickr-25K, HyP2 Loss protocol (mAP@1000, 12-48 bits)",
        dataset="mirflickr25k",
        map_at=1000,
        methods=(Method("IDHN", LossConfig("idhn")),),
        bits=(12, 24, 36, 48),
    )

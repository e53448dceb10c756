"""MIRFlickr-25K, mAP@all at 48 bits, beside two published re-runs.

Two re-runs of IDHN report mAP over the whole database at 48 bits on
MIRFlickr-25K (1,000 query / 4,000 train / the rest as database, AlexNet):

* swuxyj/DeepHash-pytorch, ``IDHN.py`` header: 0.740, with its own variant
  of the loss (loss ``idhn_dhp`` here, row "DeepHash-pytorch variant");
* pectinid16/IDHN issue #2, a user's re-run of the authors' code: 0.7128
  (row "IDHN").

The column "reported by others (re-run)" reads reproduce/reference/
rerun_mirflickr25k_map_all.json; its sources are printed under the table.
Neither is the IDHN paper's number. Protocol otherwise common.py's.

Command:
    python -m keras_dhsps reproduce --table rerun_mirflickr25k_map_all \\
        --data-root /data/mirflickr25k \\
        --set model.backbone_weights=/weights/bvlc_alexnet.npy
    ... --smoke    # on digits-mosaic, seconds on a CPU

Runtime: 2 AlexNet runs of 100 epochs over 4,000 images (common.py's
estimate per run; not measured here, no GPU was available).
"""

from common import paper_table

from keras_dhsps.config import LossConfig
from keras_dhsps.experiments import Method


def get_config(arg=None):
    """``arg``: None (the table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="rerun_mirflickr25k_map_all",
        title="MIRFlickr-25K, mAP@all at 48 bits, beside published re-runs",
        dataset="mirflickr25k",
        methods=(
            Method("IDHN", LossConfig("idhn")),
            Method("DeepHash-pytorch variant", LossConfig("idhn_dhp")),
        ),
        bits=(48,),
    )

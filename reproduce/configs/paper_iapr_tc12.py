"""IAPR TC-12: IDHN and its competitors at 12, 24, 32 and 48 bits.

IAPR TC-12 with our label set (no peer list exists; see
docs/datasets.md §1), 2,000 query / 10,000 train drawn from the database.
Protocol, metrics and baselines: common.py.

Command (datasets under /data, weights under /weights):
    python -m keras_dhsps reproduce --table paper_iapr_tc12 \
        --data-root /data/iapr-tc12 \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy

Expected: reproduce/reference/paper_iapr_tc12.json (empty until transcribed).
Runtime: 24 AlexNet runs of 1,000,000 training images each (see common.py
for the estimate per run); --smoke: under a minute on a 2-core CPU.
"""

from common import paper_table


def get_config(arg=None):
    """``arg``: None (the paper's table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="paper_iapr_tc12",
        title="IAPR TC-12",
        dataset="iapr-tc12",
    )

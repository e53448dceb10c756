"""MIRFlickr-25K: IDHN and its competitors at 12, 24, 32 and 48 bits.

MIRFlickr-25K with the authors' 38 labels, 1,000 query / 4,000 train /
the rest as database, disjoint, unlabelled images dropped.
Protocol, metrics and baselines: common.py.

Command (datasets under /data, weights under /weights):
    python -m keras_dhsps reproduce --table paper_mirflickr25k \
        --data-root /data/mirflickr25k \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy

Expected: reproduce/reference/paper_mirflickr25k.json (empty until transcribed).
Runtime: 24 AlexNet runs of 400,000 training images each (see common.py
for the estimate per run); --smoke: under a minute on a 2-core CPU.
"""

from common import paper_table


def get_config(arg=None):
    """``arg``: None (the paper's table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="paper_mirflickr25k",
        title="MIRFlickr-25K",
        dataset="mirflickr25k",
    )

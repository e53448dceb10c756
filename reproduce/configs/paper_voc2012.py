"""VOC2012: IDHN and its competitors at 12, 24, 32 and 48 bits.

VOC2012 (20 classes), 1,000 query / 4,000 train / 6,540 database,
disjoint (the DeepHash-pytorch split sizes).
Protocol, metrics and baselines: common.py.

Command (datasets under /data, weights under /weights):
    python -m keras_dhsps reproduce --table paper_voc2012 \
        --data-root /data/voc2012 \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy

Expected: reproduce/reference/paper_voc2012.json (empty until transcribed).
Runtime: 24 AlexNet runs of 400,000 training images each (see common.py
for the estimate per run); --smoke: under a minute on a 2-core CPU.
"""

from common import paper_table


def get_config(arg=None):
    """``arg``: None (the paper's table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="paper_voc2012",
        title="VOC2012",
        dataset="voc2012",
    )

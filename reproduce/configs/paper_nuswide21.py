"""NUS-WIDE: IDHN and its competitors at 12, 24, 32 and 48 bits.

NUS-WIDE, 21 most frequent concepts, 2,100 query (100 per concept),
10,500 train (500 per concept) drawn from the ~193,000-image database.
Protocol, metrics and baselines: common.py.

Command (datasets under /data, weights under /weights):
    python -m keras_dhsps reproduce --table paper_nuswide21 \
        --data-root /data/nuswide21 \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy

Expected: reproduce/reference/paper_nuswide21.json (empty until transcribed).
Runtime: 24 AlexNet runs of 1,050,000 training images each, plus encoding
the database once per cell (see common.py
for the estimate per run); --smoke: under a minute on a 2-core CPU.
"""

from common import paper_table


def get_config(arg=None):
    """``arg``: None (the paper's table) or ``"smoke"``."""
    return paper_table(
        arg,
        name="paper_nuswide21",
        title="NUS-WIDE",
        dataset="nuswide21",
        map_at=5000,
    )

"""NUS-WIDE: IDHN and its competitors at 12, 24, 32 and 48 bits.

Table: NUS-WIDE, 21 most frequent concepts, 2,100 query (100/class), 10,500
train (500/class) drawn from the database. Protocol, metrics and baselines:
see common.py (the authors' released code; metric cut-offs are ours until
the paper's are confirmed).

Command (one GPU; the dataset prepared under /data/nuswide21, see the
README's "Reproducing the paper"):
    python -m keras_dhsps reproduce --table paper_nuswide21 \
        --data-root /data/nuswide21 \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy \
        --output results/paper_nuswide21
    ... --smoke    # every cell on digits-mosaic, seconds on a CPU

Expected: the paper column of reproduce/reference/paper_nuswide21.json (empty
until transcribed from the PDF; none is invented). Runtime: 6 deep methods ×
4 code lengths × 100 epochs of AlexNet-227, about 24 training runs; budget
roughly 1 GPU-hour per run on one modern GPU (not yet measured here: no GPU
was available when this config was written), plus feature extraction for
the 4 shallow methods.
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

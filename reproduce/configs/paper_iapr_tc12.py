"""IAPR TC-12: IDHN and its competitors at 12, 24, 32 and 48 bits.

Table: IAPR TC-12 (our label set and split: see keras_dhsps/data; no peer
list exists). Protocol, metrics and baselines: see common.py (the authors'
released code; metric cut-offs are ours until the paper's are confirmed).

Command (one GPU; the dataset prepared under /data/iapr-tc12, see the
README's "Reproducing the paper"):
    python -m keras_dhsps reproduce --table paper_iapr_tc12 \
        --data-root /data/iapr-tc12 \
        --set model.backbone_weights=/weights/bvlc_alexnet.npy \
        --output results/paper_iapr_tc12
    ... --smoke    # every cell on digits-mosaic, seconds on a CPU

Expected: the paper column of reproduce/reference/paper_iapr_tc12.json (empty
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
        name="paper_iapr_tc12",
        title="IAPR TC-12",
        dataset="iapr-tc12",
    )

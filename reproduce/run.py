"""Regenerate the result tables: ``python reproduce/run.py [options]``.

A thin wrapper of ``python -m keras_dhsps reproduce`` (the same options),
run from the repository root:

    python reproduce/run.py --all --smoke          # every table, seconds
    python reproduce/run.py --table paper_voc2012 --data-root /data/voc2012 \\
        --set model.backbone_weights=/weights/bvlc_alexnet.npy

Results go to ``results/<table>/`` (``results.json``, ``results.md``,
``pr_curve.png``); finished cells are cached and skipped on rerun.
"""

import sys

from keras_dhsps.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))

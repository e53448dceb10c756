"""Training a hasher.

`fit`, its callbacks, optimizers, distribution and the run directory.
"""

#: ``dhsps train --strategy`` (``keras_dhsps.training.distribution``); here,
#: where importing it imports no Keras, so the CLI can offer them.
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")

"""Hashing losses: IDHN, its ablations and (later) the deep baselines.

Each loss is a pure ``keras.ops`` function plus a thin registered
``keras.losses.Loss`` class whose ``call(y_true=labels, y_pred=codes)``
returns one value per image. :func:`get_loss` builds one by name.
"""

from keras_dhsps.errors import UnknownNameError
from keras_dhsps.losses.idhn import HardOnlyLoss
from keras_dhsps.losses.idhn import IDHNLoss
from keras_dhsps.losses.idhn import hard_only_loss
from keras_dhsps.losses.idhn import idhn_loss
from keras_dhsps.losses.similarity import hard_pair_mask
from keras_dhsps.losses.similarity import hard_similarity
from keras_dhsps.losses.similarity import soft_similarity

LOSSES = {
    "idhn": IDHNLoss,
    "idhn_hard_only": HardOnlyLoss,
}


def get_loss(name, **params):
    """Builds the loss registered under ``name`` with keyword ``params``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`LOSSES`.
    """
    if name not in LOSSES:
        raise UnknownNameError(
            f"unknown loss {name!r}; known losses: {', '.join(sorted(LOSSES))}"
        )
    return LOSSES[name](**params)


__all__ = [
    "LOSSES",
    "HardOnlyLoss",
    "IDHNLoss",
    "get_loss",
    "hard_only_loss",
    "hard_pair_mask",
    "hard_similarity",
    "idhn_loss",
    "soft_similarity",
]

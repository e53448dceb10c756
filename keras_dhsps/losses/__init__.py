"""Hashing losses: IDHN, its ablations and the deep baselines.

Each loss is a pure ``keras.ops`` function plus a thin registered
``keras.losses.Loss`` class whose ``call(y_true=labels, y_pred=codes)``
returns one value per image. :func:`get_loss` builds one by name.
"""

from keras_dhsps.config.registry import LOSS_CLASSES
from keras_dhsps.config.registry import resolve
from keras_dhsps.losses.ablations import IDHNDHPLoss
from keras_dhsps.losses.ablations import IDHNNoQuantizationLoss
from keras_dhsps.losses.ablations import IDHNSoftOnlyLoss
from keras_dhsps.losses.ablations import idhn_dhp_loss
from keras_dhsps.losses.ablations import soft_only_loss
from keras_dhsps.losses.csq import CSQLoss
from keras_dhsps.losses.csq import csq_loss
from keras_dhsps.losses.csq import hash_centers
from keras_dhsps.losses.dhn import DHNLoss
from keras_dhsps.losses.dhn import dhn_loss
from keras_dhsps.losses.dpsh import DPSHLoss
from keras_dhsps.losses.dpsh import dpsh_loss
from keras_dhsps.losses.dsh import DSHLoss
from keras_dhsps.losses.dsh import dsh_loss
from keras_dhsps.losses.hashnet import HashNetLoss
from keras_dhsps.losses.hashnet import hashnet_loss
from keras_dhsps.losses.idhn import HardOnlyLoss
from keras_dhsps.losses.idhn import IDHNLoss
from keras_dhsps.losses.idhn import hard_only_loss
from keras_dhsps.losses.idhn import idhn_loss
from keras_dhsps.losses.similarity import hard_pair_mask
from keras_dhsps.losses.similarity import hard_similarity
from keras_dhsps.losses.similarity import soft_similarity
from keras_dhsps.utils.errors import UnknownNameError

#: name -> loss class, from :data:`keras_dhsps.config.registry.LOSS_CLASSES`.
LOSSES = {name: resolve(ref) for name, ref in LOSS_CLASSES.items()}


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
    "CSQLoss",
    "DHNLoss",
    "DPSHLoss",
    "DSHLoss",
    "HardOnlyLoss",
    "HashNetLoss",
    "IDHNDHPLoss",
    "IDHNLoss",
    "IDHNNoQuantizationLoss",
    "IDHNSoftOnlyLoss",
    "csq_loss",
    "dhn_loss",
    "dpsh_loss",
    "dsh_loss",
    "get_loss",
    "hard_only_loss",
    "hard_pair_mask",
    "hard_similarity",
    "hash_centers",
    "hashnet_loss",
    "idhn_dhp_loss",
    "idhn_loss",
    "soft_only_loss",
    "soft_similarity",
]

"""The shape every stateless hashing loss shares."""

import keras


class HashingLoss(keras.losses.Loss):
    """A pure per-image loss function plus its keyword hyperparameters.

    The tf-similarity ``MetricLoss`` pattern: a subclass sets ``loss_fn``
    (``loss_fn(labels, codes, **hyperparameters) -> (B,)``) and passes its
    hyperparameters to ``__init__`` as keywords. Each becomes an attribute
    of the same name, is read when ``call`` runs (so a changed attribute
    takes effect at the next trace, as HashNet's continuation needs), and
    appears in ``get_config``. ``y_true`` are the multi-hot labels and
    ``y_pred`` the relaxed codes; one value per image is returned, so
    Keras' reduction and ``sample_weight`` keep their meaning.
    """

    loss_fn = None

    def __init__(
        self, *, name, reduction="sum_over_batch_size", dtype=None, **params
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._param_names = tuple(params)
        for key, value in params.items():
            setattr(self, key, value)

    def _params(self):
        return {key: getattr(self, key) for key in self._param_names}

    def call(self, y_true, y_pred):
        return type(self).loss_fn(y_true, y_pred, **self._params())

    def get_config(self):
        config = super().get_config()
        config.update(self._params())
        return config

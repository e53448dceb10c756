"""Adam with one learning rate per group of layers (no tensorflow-addons).

:class:`LayerwiseAdam` multiplies the learning rate of every variable
outside ``hash_layer`` by ``backbone_lr_multiplier``: the authors' two
Adams (docs/method.md §3) as one optimizer that works with ``model.fit``
under every backend and serializes with the model. Why this is the same
algorithm: docs/design.md §1.2.
"""

import keras

from keras_dhsps.config import SCHEDULES
from keras_dhsps.utils.errors import UnknownNameError


@keras.saving.register_keras_serializable(package="keras_dhsps")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is scaled per layer.

    A variable's layer is the first component of its ``path`` (for example
    ``hash_layer`` in ``hash_layer/kernel``). Its step size is
    ``learning_rate * multipliers[layer]`` if the layer is named in
    ``multipliers``, else ``learning_rate * default_multiplier``.

    Args:
        learning_rate: float or ``keras.optimizers.schedules`` schedule; the
            rate of the layers named with multiplier 1 (the hash layer).
        multipliers: dict of layer name -> learning-rate multiplier.
        default_multiplier: multiplier of every other layer (the backbone);
            0.01 is the authors' ratio 1e-5 / 1e-3.
        epsilon: Adam's epsilon; 1e-8 is TF1's default, which the authors
            used (Keras' default is 1e-7).
        **kwargs: passed to ``keras.optimizers.Adam``.

    Example:
    >>> optimizer = LayerwiseAdam(
    ...     1e-3, multipliers={"hash_layer": 1.0}, default_multiplier=0.01)
    """

    def __init__(
        self,
        learning_rate=0.001,
        multipliers=None,
        default_multiplier=1.0,
        epsilon=1e-8,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, **kwargs)
        self.multipliers = dict(multipliers or {})
        self.default_multiplier = float(default_multiplier)
        self._variable_multipliers = []

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._variable_multipliers = [
            self.multiplier_for(variable) for variable in variables
        ]

    def multiplier_for(self, variable):
        """The learning-rate multiplier of ``variable`` (a Keras variable)."""
        layer = variable.path.split("/")[0]
        return float(self.multipliers.get(layer, self.default_multiplier))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        multiplier = self._variable_multipliers[index]
        super().update_step(gradient, variable, learning_rate * multiplier)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "multipliers": dict(self.multipliers),
                "default_multiplier": self.default_multiplier,
            }
        )
        return config


def step_decay(learning_rate, decay_steps=500, decay_rate=0.5):
    """The authors' schedule: multiply by ``decay_rate`` every ``decay_steps``.

    ``tf.train.exponential_decay(..., staircase=True)`` in the authors' code;
    here the serializable ``keras.optimizers.schedules.ExponentialDecay``.
    """
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps, decay_rate, staircase=True
    )


def make_schedule(
    name,
    learning_rate,
    *,
    decay_steps=500,
    decay_rate=0.5,
    total_steps=None,
):
    """A learning rate or serializable Keras schedule by name.

    Args:
        name: ``"step"`` (:func:`step_decay`; ``decay_steps=0`` makes it
            constant), ``"cosine"`` (``keras.optimizers.schedules.
            CosineDecay`` from ``learning_rate`` to 0 over ``total_steps``)
            or ``"constant"``.
        learning_rate: the initial rate.
        decay_steps: step decay period.
        decay_rate: step decay factor.
        total_steps: length of the run (``"cosine"`` only).

    Returns:
        A float or a ``keras.optimizers.schedules.LearningRateSchedule``.

    Raises:
        UnknownNameError: unknown ``name``.
        ValueError: ``"cosine"`` without a positive ``total_steps``.
    """
    if name not in SCHEDULES:
        raise UnknownNameError(
            f"unknown schedule {name!r}; known schedules: "
            f"{', '.join(SCHEDULES)}"
        )
    if name == "constant" or (name == "step" and not decay_steps):
        return float(learning_rate)
    if name == "step":
        return step_decay(learning_rate, decay_steps, decay_rate)
    if not total_steps or total_steps < 1:
        raise ValueError(
            "the cosine schedule needs the run length. "
            f"Received: total_steps={total_steps}"
        )
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, int(total_steps)
    )

"""keras_dhsps: IDHN deep hashing with soft pairwise similarity in Keras 3."""

__version__ = "0.1.0"

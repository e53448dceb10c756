"""Typed experiment configuration, TensorFlow-free.

The dataclasses and their JSON round trip are in :mod:`.schema`, what each
field may hold in :mod:`.rules`, config files in :mod:`.files`.
"""

from keras_dhsps.config.files import load_config_file
from keras_dhsps.config.rules import ACTIVATIONS
from keras_dhsps.config.rules import PRECISIONS
from keras_dhsps.config.rules import RESIZE_MODES
from keras_dhsps.config.rules import RULES
from keras_dhsps.config.rules import SCHEDULES
from keras_dhsps.config.schema import DataConfig
from keras_dhsps.config.schema import EvalConfig
from keras_dhsps.config.schema import ExperimentConfig
from keras_dhsps.config.schema import InputConfig
from keras_dhsps.config.schema import LossConfig
from keras_dhsps.config.schema import ModelConfig
from keras_dhsps.config.schema import TrainConfig
from keras_dhsps.config.schema import backbone_lr_multiplier
from keras_dhsps.config.schema import config_hash
from keras_dhsps.config.schema import from_dict
from keras_dhsps.config.schema import override
from keras_dhsps.config.schema import to_dict

__all__ = [
    "ACTIVATIONS",
    "PRECISIONS",
    "RESIZE_MODES",
    "RULES",
    "SCHEDULES",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "InputConfig",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "backbone_lr_multiplier",
    "config_hash",
    "from_dict",
    "load_config_file",
    "override",
    "to_dict",
]

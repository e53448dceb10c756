"""Typed configs: JSON round trip, overrides, stable hashes."""

import pytest

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import config_hash
from keras_dhsps.config import from_dict
from keras_dhsps.config import override
from keras_dhsps.config import to_dict


def test_json_round_trip_preserves_tuples():
    config = override(
        ExperimentConfig(),
        'eval.map_at=["all", 5000]',
        "model.image_size=[64, 64]",
    )
    assert config.eval.map_at == ("all", 5000)
    assert from_dict(to_dict(config)) == config
    assert from_dict(to_dict(config)).model.image_size == (64, 64)


def test_override_parses_json_values_and_nested_params():
    config = override(
        ExperimentConfig(),
        "train.epochs=3",
        "train.learning_rate=0.01",
        "loss.name=idhn_hard_only",
        'loss.params={"beta": 2.0}',
        "data.options.num_train=50",
    )
    assert config.train.epochs == 3 and config.train.learning_rate == 0.01
    assert config.loss.name == "idhn_hard_only"
    assert config.loss.params == {"beta": 2.0}
    assert config.data.options == {"num_train": 50}
    assert ExperimentConfig().train.epochs == 100  # the original is untouched


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("train.epochz=3", "unknown"),
        ("epochs", "KEY=VALUE"),
        ("nope.x=1", "unknown"),
    ],
)
def test_override_errors(assignment, message):
    with pytest.raises(ValueError, match=message):
        override(ExperimentConfig(), assignment)


def test_hash_is_stable_and_sensitive():
    base = ExperimentConfig()
    assert config_hash(base) == config_hash(from_dict(to_dict(base)))
    assert config_hash(base) != config_hash(override(base, "model.bits=12"))
    assert len(config_hash(base)) == 16


def test_backbone_lr_multiplier_follows_pretrained_weights():
    from keras_dhsps.config import ExperimentConfig
    from keras_dhsps.config import backbone_lr_multiplier
    from keras_dhsps.config import override

    # From scratch: the backbone trains at the hash layer's rate.
    assert backbone_lr_multiplier(ExperimentConfig()) == 1.0
    # Pretrained weights: the authors' 1/100.
    pretrained = override(
        ExperimentConfig(), "model.backbone_weights=bvlc_alexnet.npy"
    )
    assert backbone_lr_multiplier(pretrained) == 0.01
    # An explicit value always wins.
    explicit = override(pretrained, "train.backbone_lr_multiplier=0.5")
    assert backbone_lr_multiplier(explicit) == 0.5

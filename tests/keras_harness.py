"""Round trips every custom Keras object must survive (keras-hub style).

One place for the checks that the layer, loss and model tests share:

* :func:`assert_config_round_trip`: ``from_config(get_config())`` gives the
  same class and a JSON-identical config, and every ``__init__`` argument is
  a config key (keras-cv's ``assertAllInitParametersAreInConfig``);
* :func:`assert_serialization_round_trip`: ``keras.saving.
  serialize_keras_object`` records the ``keras_dhsps>ClassName`` registry key
  and ``deserialize_keras_object`` revives the same class and config;
* :func:`run_serialization_test`: both of the above;
* :func:`assert_keras_file_round_trip`: a model saved as ``.keras`` reloads
  in safe mode and gives the same outputs.

Each returns the revived object so a test can compare its outputs too.
"""

from __future__ import annotations

import inspect
import json
import os

import keras
import numpy as np

PACKAGE = "keras_dhsps"


def _json(config) -> str:
    """The config as canonical JSON (fails if it is not JSON-serializable)."""
    return json.dumps(config, sort_keys=True)


def assert_init_args_in_config(instance) -> None:
    """Every named ``__init__`` argument of the class is a config key."""
    parameters = inspect.signature(type(instance).__init__).parameters
    names = {
        name
        for name, parameter in parameters.items()
        if name != "self"
        and parameter.kind
        not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }
    missing = names - set(instance.get_config())
    assert not missing, f"__init__ arguments missing from config: {missing}"


def assert_config_round_trip(instance):
    """``from_config(get_config())``: same class, JSON-identical config."""
    config = instance.get_config()
    assert_init_args_in_config(instance)
    revived = type(instance).from_config(config)
    assert type(revived) is type(instance)
    assert _json(revived.get_config()) == _json(config)
    return revived


def assert_serialization_round_trip(instance):
    """``serialize_keras_object`` -> ``deserialize_keras_object``: the
    registry key is ``keras_dhsps>ClassName``; same class and config."""
    serialized = keras.saving.serialize_keras_object(instance)
    expected_key = f"{PACKAGE}>{type(instance).__name__}"
    assert serialized["registered_name"] == expected_key
    revived = keras.saving.deserialize_keras_object(
        json.loads(_json(serialized))
    )
    assert type(revived) is type(instance)
    assert _json(revived.get_config()) == _json(instance.get_config())
    return revived


def run_serialization_test(instance):
    """Both round trips; returns the object revived from its serialization."""
    assert_config_round_trip(instance)
    return assert_serialization_round_trip(instance)


def assert_keras_file_round_trip(model, inputs, directory, rtol=1e-6):
    """Saves ``model`` as ``.keras``, reloads it with ``safe_mode=True`` and
    checks the outputs on ``inputs``; returns the reloaded model."""
    path = os.path.join(str(directory), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded) is type(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(inputs)),
        keras.ops.convert_to_numpy(model(inputs)),
        rtol=rtol,
    )
    return reloaded

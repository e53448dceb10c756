"""The run directory: layout, claim, completeness; fit leaves a run the
loader opens."""

import json
import os

import pytest

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import override
from keras_dhsps.config import to_dict
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.training import rundir
from keras_dhsps.utils.errors import DHSPSError


def test_claim_writes_the_config_then_accepts_the_same_config(tmp_path):
    run = rundir.RunDirectory(str(tmp_path / "run"))
    config = ExperimentConfig()
    assert run.read_config() is None
    assert run.claim(config) is False  # claimed now, not complete
    with open(run.join(rundir.CONFIG_FILE), encoding="utf-8") as handle:
        assert json.load(handle) == to_dict(config)
    assert run.claim(config) is False  # same config: resume
    run.write_report({"metrics": {}})
    assert run.claim(config) is True  # complete: nothing to do


def test_claim_refuses_another_config_naming_every_differing_key(tmp_path):
    run = rundir.RunDirectory(str(tmp_path))
    run.claim(ExperimentConfig())
    other = override(ExperimentConfig(), "model.bits=12", "train.seed=4")
    with pytest.raises(DHSPSError) as raised:
        run.claim(other)
    message = str(raised.value)
    assert "model.bits: 48 -> 12" in message
    assert "train.seed: 0 -> 4" in message
    assert "\n" not in message


def test_config_differences_compare_free_form_dicts_whole():
    old = {"loss": {"name": "idhn", "params": {"beta": 5}}}
    new = {"loss": {"name": "idhn", "params": {"beta": 5, "alpha": 1}}}
    assert rundir.config_differences(old, new) == [
        'loss.params: {"beta": 5} -> {"beta": 5, "alpha": 1}'
    ]


def test_fit_leaves_a_loadable_run_directory(tmp_path):
    import numpy as np

    from tests.training_helpers import train_tiny_run

    run = str(tmp_path / "run")
    result, dataset, config = train_tiny_run(run)
    for name in (rundir.CONFIG_FILE, rundir.MODEL_FILE, rundir.HISTORY_FILE):
        assert os.path.isfile(os.path.join(run, name)), name
    hasher = load_hasher(run)
    images = dataset.split("query").images[:4]
    expected = keras_codes(result.model, images)
    np.testing.assert_allclose(hasher.codes(images), expected, atol=1e-5)
    assert hasher.metadata["config"] == to_dict(config)


def keras_codes(model, images):
    import keras
    import numpy as np

    return np.asarray(
        keras.ops.convert_to_numpy(model(images.astype("float32")))
    )


def test_check_reports_the_run_without_writing(tmp_path):
    run = rundir.RunDirectory(str(tmp_path / "run"))
    assert run.check(ExperimentConfig()) is None  # no run yet
    assert not os.path.exists(run.join(rundir.CONFIG_FILE))
    run.claim(ExperimentConfig())
    assert run.check(ExperimentConfig()) is False  # to resume
    with pytest.raises(DHSPSError, match="model.bits: 48 -> 12"):
        run.check(override(ExperimentConfig(), "model.bits=12"))

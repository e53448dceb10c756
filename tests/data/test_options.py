"""A config's dataset (name, options) is checked by keras_dhsps.data, with
one-line errors, wherever a config is put to work and before any work."""

import pytest

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import override
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.data.options import check_options
from keras_dhsps.utils.errors import ConfigError
from keras_dhsps.utils.errors import DHSPSError

BAD = [
    ("data.name=mnist", 'data.name="mnist" is not a known dataset; known: '),
    (
        "data.options.num_trian=5",
        "data.options: digits-mosaic takes no option 'num_trian'; "
        "allowed: num_train,",
    ),
    (
        'data.options={"colour": 1, "num_train": 8}',
        "data.options: digits-mosaic takes no option 'colour'; allowed:",
    ),
]


@pytest.mark.parametrize("assignment, message", BAD)
def test_unknown_dataset_or_option_names_it_and_what_is_allowed(
    assignment, message
):
    config = override(ExperimentConfig(), assignment)  # config lets it by
    with pytest.raises(ConfigError) as caught:
        check_options(config.data)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, DHSPSError)  # the CLI's one line
    assert isinstance(caught.value, ValueError)  # library callers


def test_known_datasets_and_options_pass():
    check_options(ExperimentConfig().data)
    check_options(
        override(ExperimentConfig(), "data.options.num_train=50").data
    )
    lists = override(ExperimentConfig(), "data.name=lists").data
    check_options(lists)  # its options are its own, and it has defaults


@pytest.mark.parametrize("assignment, message", BAD)
def test_loading_a_configured_dataset_checks_first(assignment, message):
    config = override(ExperimentConfig(), assignment)
    with pytest.raises(ConfigError, match="^" + message[:20]):
        load_configured_dataset(config.data)


def test_fit_refuses_before_any_work(tmp_path):
    from keras_dhsps.training.fit import fit

    run_dir = tmp_path / "run"
    config = override(ExperimentConfig(), "data.options.num_trian=5")
    with pytest.raises(ConfigError, match="takes no option 'num_trian'"):
        fit(config, run_dir=str(run_dir), verbose=0)
    assert not run_dir.exists()  # nothing claimed, nothing trained

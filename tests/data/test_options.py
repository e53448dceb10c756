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


VALUES = [
    ('{"num_query": -5}', "data.options.num_query=-5 is not allowed"),
    ('{"num_query": 0}', "data.options.num_query=0 is not allowed"),
    ('{"num_database": 0}', "data.options.num_database=0 is not allowed"),
    ('{"num_train": 2.5}', "data.options.num_train=2.5 is not allowed"),
    ('{"max_digits": 9}', "data.options.max_digits=9 is not allowed"),
    (
        '{"num_train": 1000000000}',
        "data.options: digits-mosaic with 1,000,002,750 images needs about "
        "2.79 TiB of memory",
    ),
]


@pytest.mark.parametrize("options, message", VALUES)
def test_option_values_are_checked_from_the_readers_signature(options, message):
    config = override(ExperimentConfig(), f"data.options={options}")
    with pytest.raises(ConfigError) as caught:
        check_options(config.data)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_an_option_without_a_rule_is_checked_by_its_defaults_type(
    monkeypatch,
):
    from keras_dhsps import data

    def loader(root, seed, *, smoothing=0.5, shuffle=True):
        return None

    monkeypatch.setitem(data.DATASETS, "plugin", loader)
    good = override(ExperimentConfig(), "data.name=plugin")
    check_options(good.data)
    cases = (
        ("smoothing", '"x"', r"a number in \[0, inf\)"),
        ("shuffle", "1", "true or false"),
    )
    for key, value, kind in cases:
        bad = override(good, f"data.options.{key}={value}")
        with pytest.raises(ConfigError, match=f"expected {kind}"):
            check_options(bad.data)


def test_a_batch_without_a_pair_is_refused_when_the_config_is_built():
    with pytest.raises(ConfigError, match="train.batch_size=1 is not allowed"):
        override(ExperimentConfig(), "train.batch_size=1")

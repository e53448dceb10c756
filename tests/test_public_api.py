"""The package's public API: lazy, TensorFlow-free to import, and runnable."""

import importlib.util
import pathlib

import keras_dhsps
from tests.child import run_python

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_to_its_owner():
    for name, module in keras_dhsps.PUBLIC_API.items():
        value = getattr(keras_dhsps, name)
        assert value.__module__.startswith(module), (name, value.__module__)
    assert set(keras_dhsps.PUBLIC_API) <= set(dir(keras_dhsps))


def test_unknown_attribute_is_an_attribute_error():
    try:
        keras_dhsps.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light_until_a_feature_is_used():
    code = (
        "import sys, keras_dhsps; "
        "heavy = [m for m in ('tensorflow', 'keras', 'jax') "
        "if m in sys.modules]; "
        "keras_dhsps.ExperimentConfig(); "
        "print(heavy)"
    )
    out = run_python(code, check=True).stdout
    assert out.strip() == "[]"


def test_quickstart_example_trains_a_working_hasher(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "quickstart", ROOT / "examples" / "quickstart.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(str(tmp_path / "run"))
    metrics = result["report"]["metrics"]
    # Random codes score about 0.50 here; a collapsed hasher (a few
    # distinct codes, every neighbour at distance 0) 0.54.
    assert metrics["map@all"] > 0.65
    assert result["distinct_codes"] > 200  # of 2,000 database images
    # 3 queries x 5 neighbours, sorted by Hamming distance in [0, 32].
    distances = result["distances"]
    assert distances.shape == (3, 5)
    assert (distances.min() >= 0) and (distances.max() <= 32)
    assert all(sorted(row) == row for row in distances.tolist())
    assert "query 0: neighbours" in capsys.readouterr().out


def test_the_python_api_prints_what_the_cli_prints_into_a_log(tmp_path):
    """No TensorFlow start-up notices, and progress as one line per epoch
    (no carriage returns or colour codes) when stdout is not a terminal."""
    code = (
        "import keras_dhsps\n"
        "config = keras_dhsps.override(keras_dhsps.ExperimentConfig(),\n"
        '    \'data.options={"num_train": 64, "num_validation": 0,\'\n'
        '    \' "num_query": 8, "num_database": 16}\',\n'
        "    'train.epochs=2', 'train.batch_size=32', 'model.bits=8',\n"
        "    'train.tensorboard=false')\n"
        "keras_dhsps.fit(config)\n"
    )
    done = run_python(code, cwd=tmp_path, check=True)
    assert "I0000" not in done.stderr and "oneDNN" not in done.stderr
    assert "\r" not in done.stdout and "\x1b[" not in done.stdout
    assert done.stdout.count("Epoch ") == 2

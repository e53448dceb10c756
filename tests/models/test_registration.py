"""``import keras_dhsps`` registers every custom object, without
importing TensorFlow, so ``keras.saving.load_model`` opens a trained model."""

import pytest

from tests.child import run_python

QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    from keras_dhsps.config import ExperimentConfig
    from keras_dhsps.config import override
    from keras_dhsps.training.fit import fit

    config = override(
        ExperimentConfig(),
        "train.epochs=0",
        "model.bits=8",
        'data.options={"num_train": 32, "num_validation": 8, '
        '"num_query": 8, "num_database": 16}',
    )
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    fit(config, verbose=0).model.save(path)
    return path


@pytest.mark.parametrize(
    "code",
    [
        # The package first: it imports neither TensorFlow nor Keras, and
        # registers when Keras is imported.
        "import sys\n"
        "import keras_dhsps\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'keras' not in sys.modules, 'keras imported'\n"
        "import keras\n",
        "import keras\nimport keras_dhsps\n",  # Keras first
    ],
    ids=["package-first", "keras-first"],
)
def test_load_model_after_import_keras_dhsps(trained_model, tmp_path, code):
    result = run_python(
        code + f"model = keras.saving.load_model({trained_model!r})\n"
        "print(type(model.optimizer).__name__)\n",
        cwd=tmp_path,
        env=QUIET,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LayerwiseAdam"


@pytest.mark.slow
def test_control_without_the_package_keras_cannot_load(trained_model, tmp_path):
    # The test above can fail: plain Keras does not know the classes.
    result = run_python(
        f"import keras\nkeras.saving.load_model({trained_model!r})\n",
        cwd=tmp_path,
        env=QUIET,
    )
    assert result.returncode != 0
    assert "LayerwiseAdam" in result.stderr

"""Every config field is checked when a config is built or overridden:
type, range, known names, and the loss's params against its signature."""

import dataclasses
import json
import os
import sys

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.config import RULES
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import config_hash
from keras_dhsps.config import from_dict
from keras_dhsps.config import load_config_file
from keras_dhsps.config import override
from keras_dhsps.config import to_dict
from keras_dhsps.config.registry import LOSS_CLASSES
from keras_dhsps.config.registry import loss_parameters
from keras_dhsps.config.rules import LOSS_PARAMETERS
from keras_dhsps.data.options import check_options
from keras_dhsps.utils.errors import ConfigError
from keras_dhsps.utils.errors import DHSPSError
from tests.child import run_python
from tests.paths import REPO

ROOT = REPO
CONFIGS = os.path.join(ROOT, "reproduce", "configs")


def all_keys():
    defaults = to_dict(ExperimentConfig())
    return [
        f"{section}.{key}" if isinstance(values, dict) else section
        for section, values in defaults.items()
        for key in (values if isinstance(values, dict) else [None])
    ]


def test_every_field_has_a_rule_and_the_defaults_pass():
    assert sorted(all_keys()) == sorted(RULES)
    ExperimentConfig()  # the defaults satisfy every rule


@pytest.mark.parametrize(
    "assignment, message",
    [
        (
            "train.epochs=abc",
            'train.epochs="abc" is not allowed; expected an integer >= 0',
        ),
        (
            "train.epochs=true",
            "train.epochs=true is not allowed; expected an integer >= 0",
        ),
        ("train.epochs=2.5", "train.epochs=2.5 is not allowed"),
        (
            "model.bits=0",
            "model.bits=0 is not allowed; expected an integer >= 1",
        ),
        ("model.bits=-4", "model.bits=-4 is not allowed"),
        ("train.batch_size=0", "train.batch_size=0 is not allowed"),
        (
            "model.activation=relu",
            'model.activation="relu" is not allowed; expected one of '
            '"tanh", "softsign"',
        ),
        (
            'loss.params={"sof_weight": 0.2}',
            "loss.params: idhn takes no parameter 'sof_weight'; allowed: "
            "beta, hard_high, hard_low, include_diagonal, "
            "quantization_weight, soft_weight",
        ),
        (
            'loss.params={"beta": "five"}',
            'loss.params.beta="five" is not allowed; expected a number in '
            "(0, inf)",
        ),
        ("loss.params.hard_high=1.5", "loss.params.hard_high=1.5 is not"),
        ("loss.name=idhm", 'loss.name="idhm" is not a known loss; known:'),
        ("model.backbone=resnet", 'model.backbone="resnet" is not allowed'),
        ("train.precision=fp16", 'train.precision="fp16" is not allowed'),
        ("train.schedule=linear", 'train.schedule="linear" is not allowed'),
        ("input.resize=crop", 'input.resize="crop" is not allowed'),
        ("input.store=disk", 'input.store="disk" is not allowed'),
        ("train.jit_compile=maybe", 'train.jit_compile="maybe" is not'),
        (
            "train.validation_fraction=1",
            "train.validation_fraction=1 is not allowed; expected a number "
            "in [0, 1)",
        ),
        ("train.learning_rate=0", "train.learning_rate=0 is not allowed"),
        ("train.learning_rate=NaN", "train.learning_rate=NaN is not"),
        (
            "train.backbone_lr_multiplier=-1",
            "train.backbone_lr_multiplier=-1 is not allowed; expected null "
            "or a number in [0, inf)",
        ),
        ("eval.map_at=[0]", "eval.map_at=[0] is not allowed"),
        ("eval.map_at=[]", "eval.map_at=[] is not allowed"),
        ("eval.ndcg_at=[0]", "eval.ndcg_at=[0] is not allowed"),
        ("eval.tie_aware=yes", 'eval.tie_aware="yes" is not allowed'),
        ("model.image_size=64", "model.image_size=64 is not allowed"),
        ("input.resize_to=[256]", "input.resize_to=[256] is not allowed"),
        ("input.shuffle_buffer=0", "input.shuffle_buffer=0 is not allowed"),
        ("train=3", "train=3 is not allowed; expected a JSON object"),
        ("train.epochz=3", "unknown config key 'train.epochz'; known in"),
        ("name=", 'name="" is not allowed; expected a non-empty string'),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(assignment, message):
    with pytest.raises(ConfigError) as caught:
        override(ExperimentConfig(), assignment)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, DHSPSError)  # the CLI's one line
    assert isinstance(caught.value, ValueError)  # library callers


def test_direct_construction_and_from_dict_are_checked_too():
    with pytest.raises(ConfigError, match="model.bits=0"):
        ModelConfig(bits=0)
    with pytest.raises(ConfigError, match="sof_weight"):
        LossConfig(params={"sof_weight": 0.1})
    with pytest.raises(ConfigError, match="train.batch_size=0"):
        dataclasses.replace(ExperimentConfig().train, batch_size=0)
    values = to_dict(ExperimentConfig())
    values["train"]["epochs"] = "3"
    with pytest.raises(ConfigError, match='train.epochs="3"'):
        from_dict(values)


def test_good_values_are_accepted_and_kept_as_given():
    config = override(
        ExperimentConfig(),
        "train.epochs=0",  # the library builds the initial model with 0
        "train.learning_rate=1",  # an int where a float is expected stays 1
        "train.jit_compile=false",
        "train.backbone_lr_multiplier=null",
        'eval.map_at=["all", 5000]',
        "model.image_size=[64, 64]",
        "loss.name=hashnet",
        'loss.params={"scale": null, "include_diagonal": false}',
        "data.options.num_train=50",
    )
    assert config.train.learning_rate == 1
    assert to_dict(config)["train"]["learning_rate"] == 1
    assert config.eval.map_at == ("all", 5000)


def test_every_loss_takes_its_defaults_and_refuses_bad_values():
    # A loss's parameters come from its constructor; what each may hold,
    # from rules.LOSS_PARAMETERS by name (a name missing there would take
    # any value, so every parameter of the package's losses must be in it).
    for name in LOSS_CLASSES:
        defaults = dict(loss_parameters(name))
        assert set(defaults) <= set(LOSS_PARAMETERS), name
        assert LossConfig(name=name, params=defaults).params == defaults
        for param in defaults:
            with pytest.raises(ConfigError, match=f"loss.params.{param}="):
                LossConfig(name=name, params={param: "x"})


@pytest.mark.parametrize(
    "name, params",
    [
        ("idhn", {"quantization_weight": -0.1}),  # weights are >= 0
        ("idhn_soft_only", {"soft_weight": -1}),
        ("idhn", {"beta": 0}),  # beta > 0
        ("idhn_dhp", {"hard_low": -0.5}),  # a probability
        ("idhn_dhp", {"memory_size": 1.5}),  # an integer >= 0
        ("idhn_dhp", {"bits": 0}),  # null or an integer >= 1
        ("dsh", {"margin": -1}),  # null or >= 0
        ("hashnet", {"scale": 0}),  # null or > 0
        ("dhn", {"scale": None}),  # its default is 0.5: not nullable
        ("csq", {"seed": -1}),
        ("dpsh", {"include_diagonal": 1}),  # a boolean
    ],
)
def test_loss_params_keep_their_types_and_ranges(name, params):
    with pytest.raises(ConfigError, match="is not allowed; expected"):
        LossConfig(name=name, params=params)


def test_a_config_takes_any_dataset_name_the_data_package_judges_it():
    # Datasets are data's: their names and options are checked by
    # keras_dhsps.data.options.check_options where the config is used.
    config = override(ExperimentConfig(), "data.name=mnist")
    assert config.data.name == "mnist"


def test_hashes_of_existing_configs_are_unchanged():
    # Validation changes no stored value, so no hash. The default config's
    # hash moved once, on purpose: train.validation_every's default became
    # None (automatic) instead of 0, which now means off
    # (b40007587ee83c35 before).
    assert config_hash(ExperimentConfig()) == "9855469b870b7bcd"


def test_every_table_config_validates(tmp_path):
    from keras_dhsps.experiments import TableConfig
    from keras_dhsps.experiments.table_config import cell_config

    for file in sorted(os.listdir(CONFIGS)):
        if file == "common.py" or not file.endswith(".py"):
            continue
        for arg in ("", ":smoke"):
            table = load_config_file(
                os.path.join(CONFIGS, file) + arg, TableConfig
            )
            for method in table.methods:
                for bits in table.bits:
                    cell = cell_config(table, method, bits, table.seeds[0])
                    check_options(cell.data)
    with pytest.raises(ConfigError, match="unknown arg 'full'; this table"):
        load_config_file(
            os.path.join(CONFIGS, "paper_voc2012.py:full"), TableConfig
        )


def test_config_files_import_siblings_without_sys_path(tmp_path):
    from keras_dhsps.experiments import TableConfig

    path_before = list(sys.path)
    modules_before = set(sys.modules)
    # Another loader may have cached a `common`; it must survive untouched.
    cached_common = sys.modules.get("common")
    first = load_config_file(
        os.path.join(CONFIGS, "paper_voc2012.py"), TableConfig
    )
    assert sys.path == path_before
    assert set(sys.modules) == modules_before  # no `common` left behind
    # Another directory with its own common.py gets its own, not the cache.
    other = tmp_path / "configs"
    other.mkdir()
    (other / "common.py").write_text("EPOCHS = 7\n")
    (other / "mine.py").write_text(
        "from common import EPOCHS\n"
        "from keras_dhsps.config import ExperimentConfig, override\n"
        "def get_config(arg=None):\n"
        "    return override(ExperimentConfig(), f'train.epochs={EPOCHS}')\n"
    )
    config = load_config_file(str(other / "mine.py"), ExperimentConfig)
    assert config.train.epochs == 7
    assert first.name == "paper_voc2012"
    assert sys.modules.get("common") is cached_common


def test_config_imports_no_tensorflow_and_nothing_above_it(tmp_path):
    code = (
        "import sys\n"
        "from keras_dhsps.config import ExperimentConfig, override\n"
        "override(ExperimentConfig(), 'loss.name=csq', 'data.options={}')\n"
        "try:\n"
        "    override(ExperimentConfig(), 'model.bits=0')\n"
        "except ValueError:\n"
        "    pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')]\n"
        "assert not bad, bad\n"
        "# nor the layers it checks against: it reads their registries\n"
        "above = [m for m in sys.modules if m.startswith(("
        "'keras_dhsps.data', 'keras_dhsps.losses', 'keras_dhsps.models', "
        "'keras_dhsps.training'))]\n"
        "assert not above, above\n"
    )
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(k for k in RULES if "." in k)),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(-2, 2, allow_nan=False),
        st.sampled_from(["", "all", "tanh", "step", "direct", "auto", "x"]),
        st.lists(st.integers(-1, 300), max_size=3),
    ),
)
def test_any_value_is_accepted_or_refused_naming_the_key(key, value):
    try:
        config = override(ExperimentConfig(), f"{key}={json.dumps(value)}")
    except ConfigError as error:
        assert str(error).startswith(key), (key, value, str(error))
        return
    # Accepted: it is stored as given (lists as tuples) and round-trips.
    section, field = key.split(".")
    stored = getattr(getattr(config, section), field)
    assert stored == (tuple(value) if isinstance(value, list) else value)
    assert from_dict(to_dict(config)) == config


def test_a_loss_registered_at_run_time_is_checked_by_its_signature(
    monkeypatch,
):
    from keras_dhsps import losses

    class PluginLoss:
        def __init__(self, alpha=1.0, name="plugin", **kwargs):
            pass

    monkeypatch.setitem(losses.LOSSES, "plugin", PluginLoss)
    assert LossConfig(name="plugin", params={"alpha": 2}).params == {"alpha": 2}
    with pytest.raises(ConfigError, match="plugin takes no parameter 'beta'"):
        LossConfig(name="plugin", params={"beta": 1})


def test_graded_cutoffs_may_be_empty_to_skip_the_metric():
    # Tables that report mAP only (e.g. the tie test) pass ndcg_at=[]; mAP
    # itself is always reported, so its list must not be empty.
    config = override(ExperimentConfig(), "eval.ndcg_at=[]", "eval.wap_at=[]")
    assert config.eval.ndcg_at == () and config.eval.wap_at == ()


def test_random_crop_needs_a_cropping_resize_mode():
    from keras_dhsps.config import InputConfig

    with pytest.raises(ConfigError, match="input.random_crop=true needs"):
        InputConfig(random_crop=True)
    with pytest.raises(ConfigError, match="input.random_crop"):
        override(ExperimentConfig(), "input.random_crop=true")
    assert InputConfig(random_crop=True, resize="resize_crop").random_crop


def test_validation_every_none_is_automatic_and_zero_is_off():
    assert ExperimentConfig().train.validation_every is None
    assert (
        override(
            ExperimentConfig(), "train.validation_every=0"
        ).train.validation_every
        == 0
    )
    with pytest.raises(ConfigError, match="train.validation_every=-1"):
        override(ExperimentConfig(), "train.validation_every=-1")

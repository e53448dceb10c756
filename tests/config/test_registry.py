"""keras_dhsps.config.registry: the backbones and losses a config can name, read
without importing Keras, and resolved by the packages that build them."""

import inspect

from keras_dhsps.config import registry
from tests.child import run_python


def test_loss_parameters_read_from_source_equal_the_live_signature():
    # The reader parses each loss's constructor; the classes themselves
    # (imported here, with Keras) must agree with what it read.
    from keras_dhsps import losses

    for name, reference in registry.LOSS_CLASSES.items():
        cls = losses.LOSSES[name]
        assert registry.resolve(reference) is cls
        live = {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in registry.NOT_LOSS_PARAMETERS
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        assert dict(registry.loss_parameters(name)) == live, name
    assert registry.loss_parameters("no_such_loss") is None


def test_every_backbone_builder_takes_its_options():
    for name, spec in registry.BACKBONES.items():
        build = registry.resolve(spec.builder)
        signature = inspect.signature(build)
        signature.bind(
            input_shape=(*spec.image_size, 3), weights=None, **spec.options
        )
        assert spec.description and spec.preprocessing, name


def test_reading_the_registry_imports_no_keras():
    code = (
        "import sys\n"
        "from keras_dhsps.config import registry\n"
        "for name in registry.LOSS_CLASSES:\n"
        "    assert registry.loss_parameters(name)\n"
        "assert registry.BACKBONES['alexnet'].image_size == (227, 227)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras') or m.startswith(('keras_dhsps.losses', "
        "'keras_dhsps.models'))]\n"
        "assert not loaded, loaded\n"
    )
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr

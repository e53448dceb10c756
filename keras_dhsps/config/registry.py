"""The backbones and losses a config can name, without importing Keras.

Each entry points at its builder or class as ``"module:name"``.
:mod:`keras_dhsps.models.backbones` and :mod:`keras_dhsps.losses` resolve
the entries (and so import Keras); :mod:`keras_dhsps.config` checks a
config's backbone, loss and loss parameters here, TensorFlow-free: a
loss's parameters are read from its constructor's source.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import os
import types
from typing import Any


def resolve(reference: str) -> Any:
    """The object that ``"package.module:name"`` names (importing it)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what it expects.

    Attributes:
        builder: ``"module:function"``, called as
            ``function(input_shape=..., weights=..., **options)`` and
            returning a ``keras.Model``.
        image_size: the ``(height, width)`` it was designed for.
        description: one line for ``--help`` and the README.
        preprocessing: what the model does to its ``[0, 255]`` RGB input.
        options: further keyword arguments of ``builder``.
    """

    builder: str
    image_size: tuple
    description: str
    preprocessing: str = ""
    options: dict = dataclasses.field(default_factory=dict)

    def build(self, input_shape, weights=None):
        """The backbone, a ``keras.Model`` (imports Keras)."""
        build = resolve(self.builder)
        return build(input_shape=input_shape, weights=weights, **self.options)


_BACKBONES = "keras_dhsps.models.backbones"
_ALEXNET = "keras_dhsps.models.alexnet:build_alexnet"
_CAFFE = "RGB->BGR, minus ImageNet mean [103.939, 116.779, 123.68] (BGR)"
_INSIDE = "inside the application (rescale + normalize)"


def _application(name: str, size: int, features: str, caffe: bool):
    """A ``keras.applications`` network, average-pooled."""
    return BackboneSpec(
        builder=f"{_BACKBONES}:build_application",
        image_size=(size, size),
        description=f"keras.applications {name}, {features}",
        preprocessing=_CAFFE if caffe else _INSIDE,
        options={"application": name, "caffe_preprocessing": caffe},
    )


#: name -> :class:`BackboneSpec` (``keras_dhsps.models.backbones.BACKBONES``).
BACKBONES = {
    "small_cnn": BackboneSpec(
        builder=f"{_BACKBONES}:build_small_cnn",
        image_size=(32, 32),
        description="3-conv CNN for digits-mosaic (no pretrained weights)",
        preprocessing="x / 255",
    ),
    "alexnet": BackboneSpec(
        builder=_ALEXNET,
        image_size=(227, 227),
        description="Caffe AlexNet to fc7; weights: bvlc_alexnet.npy path",
        preprocessing="RGB->BGR, minus [104, 117, 123] (BGR; Caffe weights)",
        options={"channel_order": "bgr"},
    ),
    "alexnet_authors_rgb": BackboneSpec(
        builder=_ALEXNET,
        image_size=(227, 227),
        description="AlexNet fed RGB as in the IDHN authors' code",
        preprocessing="RGB kept, minus [123, 117, 104] (authors' bug)",
        options={"channel_order": "authors_rgb"},
    ),
    "vgg16": _application("VGG16", 224, "avg-pooled conv5 (512)", True),
    "vgg19": _application("VGG19", 224, "avg-pooled conv5 (512)", True),
    "resnet50": _application("ResNet50", 224, "avg pool (2048)", True),
    "efficientnet_b0": _application(
        "EfficientNetB0", 224, "avg pool (1280)", False
    ),
    "efficientnet_b3": _application(
        "EfficientNetB3", 300, "avg pool (1536)", False
    ),
}

_LOSSES = "keras_dhsps.losses"
#: loss name -> its class (``keras_dhsps.losses.LOSSES`` resolves these).
LOSS_CLASSES = {
    "idhn": f"{_LOSSES}.idhn:IDHNLoss",
    "idhn_hard_only": f"{_LOSSES}.idhn:HardOnlyLoss",
    "idhn_soft_only": f"{_LOSSES}.ablations:IDHNSoftOnlyLoss",
    "idhn_no_quantization": f"{_LOSSES}.ablations:IDHNNoQuantizationLoss",
    "idhn_dhp": f"{_LOSSES}.ablations:IDHNDHPLoss",
    "dhn": f"{_LOSSES}.dhn:DHNLoss",
    "dpsh": f"{_LOSSES}.dpsh:DPSHLoss",
    "hashnet": f"{_LOSSES}.hashnet:HashNetLoss",
    "dsh": f"{_LOSSES}.dsh:DSHLoss",
    "csq": f"{_LOSSES}.csq:CSQLoss",
}

#: Constructor parameters that are not the loss's own (Keras's ``name``).
NOT_LOSS_PARAMETERS = ("self", "name")


@functools.cache
def loss_parameters(name: str) -> types.MappingProxyType | None:
    """The keyword parameters of loss ``name``'s constructor and their
    defaults (``inspect.Parameter.empty`` for none), less
    :data:`NOT_LOSS_PARAMETERS` and ``*args``/``**kwargs``. Read from the
    class's source file, which is not imported (importing it imports
    Keras). None for a name not in :data:`LOSS_CLASSES`."""
    if name not in LOSS_CLASSES:
        return None
    module, _, class_name = LOSS_CLASSES[name].partition(":")
    with open(_source_file(module), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    return types.MappingProxyType(_defaults(_init(tree, class_name).args))


def _source_file(module: str) -> str:
    """The file of a module of this package, found without importing it
    (``importlib.util.find_spec`` would import its parent package)."""
    _, *parts = module.split(".")
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(package, *parts) + ".py"


def _init(tree: ast.Module, class_name: str) -> ast.FunctionDef:
    classes = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == class_name
    ]
    for node in classes[0].body if classes else []:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return node
    raise LookupError(f"{class_name} defines no __init__ of its own")


def _defaults(args: ast.arguments) -> dict[str, Any]:
    positional = [*args.posonlyargs, *args.args]
    missing = [None] * (len(positional) - len(args.defaults))
    names = [arg.arg for arg in (*positional, *args.kwonlyargs)]
    defaults = [*missing, *args.defaults, *args.kw_defaults]
    return {
        name: inspect.Parameter.empty
        if default is None
        else ast.literal_eval(default)
        for name, default in zip(names, defaults, strict=True)
        if name not in NOT_LOSS_PARAMETERS
    }

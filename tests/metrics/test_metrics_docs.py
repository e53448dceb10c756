"""The worked examples in the metrics docstrings are executed."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "keras_dhsps.utils.codes",
    "keras_dhsps.metrics.relevance",
    "keras_dhsps.metrics.ranking",
    "keras_dhsps.metrics.retrieval",
    "keras_dhsps.metrics.curves",
    "keras_dhsps.metrics.report",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.attempted > 0
    assert result.failed == 0

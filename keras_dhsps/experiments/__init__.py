"""The paper's tables: config schema, runner, rendering, shallow baselines.

Table config files import :class:`Method` and :class:`TableConfig` from
here; ``table_config`` loads them, ``runner`` runs them, ``render`` writes
their Markdown and plot, ``references`` reads cited values.
"""

from keras_dhsps.experiments.table_config import Method
from keras_dhsps.experiments.table_config import TableConfig

__all__ = ["Method", "TableConfig"]

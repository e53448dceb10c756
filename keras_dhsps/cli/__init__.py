"""The ``dhsps`` command line: ``main`` parses and dispatches; one module
per command (``train``, ``evaluate``, ``reproduce``, ``export``, ``encode``,
``search``, ``plot``, ``data``); shared flags in ``arguments``."""

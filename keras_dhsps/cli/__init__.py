"""The ``dhsps`` command line: argument parsing and dispatch."""

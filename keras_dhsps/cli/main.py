"""The ``dhsps`` command line (also ``python -m keras_dhsps``): the parser
and the one dispatch point.

Command ``NAME`` lives in ``keras_dhsps.cli.NAME`` (``add_arguments`` and
the handlers), imported only once a command line names it: ``dhsps --help``
imports no command, and TensorFlow, silenced, only loads for a command that
needs it. User errors (unknown dataset, missing or malformed data, bad
option) print one ``error: ...`` line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.terminal import progress_verbosity

EXIT_USAGE = 2

#: Every command, in ``dhsps --help`` order, with its one-line help.
COMMANDS = {
    "train": "train a hasher",
    "evaluate": "mAP, NDCG, ... of a trained hasher",
    "reproduce": "train and evaluate every cell of one or more tables",
    "export": "export a hasher (SavedModel, ONNX or LiteRT)",
    "encode": "encode an image collection into an HDF5 code database",
    "search": "find the nearest images of query images",
    "index": "build search indexes and shard manifests",
    "plot": "PR / P@N curves, retrieval examples",
    "data": "prepare and verify datasets",
}

_VERBOSE_HELP = (
    "0 silent, 1 progress bars (default; on a terminal only: output to a "
    "file or pipe gets 2), 2 one line per epoch; accepted before or after "
    "the subcommand"
)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error: ...`` line, status 2."""

    def error(self, message):
        line = _one_line(f"{message} (see {self.prog} --help)")
        self.exit(EXIT_USAGE, f"error: {line}\n")


class _Commands(argparse._SubParsersAction):
    """The commands; the one a command line names gets its arguments from
    its module, imported then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded = set()

    def __call__(self, parser, namespace, values, option_string=None):
        name = values[0]
        if name not in self._loaded:
            command = self._name_parser_map[name]
            module = importlib.import_module(f"keras_dhsps.cli.{name}")
            module.add_arguments(command)
            _add_verbose_everywhere(command)
            self._loaded.add(name)
        super().__call__(parser, namespace, values, option_string)


def _add_verbose(parser, default) -> None:
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=default,
        help=_VERBOSE_HELP,
    )


def _add_verbose_everywhere(parser) -> None:
    """``--verbose`` after a command and after each of its subcommands
    (the value given before the command stays unless given again)."""
    _add_verbose(parser, argparse.SUPPRESS)
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_verbose_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dhsps",
        description="IDHN deep hashing with soft pairwise similarity.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, action=_Commands
    )
    for name, help_text in COMMANDS.items():
        commands.add_parser(name, help=help_text)
    _add_verbose(parser, None)
    return parser


def _one_line(message) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _user_error(error: DHSPSError) -> int:
    sys.stdout.flush()
    print(f"error: {_one_line(error)}", file=sys.stderr)
    return EXIT_USAGE


def main(argv=None) -> int:
    """Runs the CLI; returns the exit status.

    User errors (:class:`DHSPSError`, bad options) print one ``error: ...``
    line and return 2; anything else is a bug and keeps its traceback.
    """
    # Parsing imports the command's module, which may import TensorFlow.
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except DHSPSError as error:  # e.g. a command that needs TensorFlow
        return _user_error(error)
    args.verbose = progress_verbosity(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        args.handler(args)
    except DHSPSError as error:
        return _user_error(error)
    return 0

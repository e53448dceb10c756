"""Command line: ``python -m keras_dhsps`` (also installed as ``dhsps``).

Subcommands:

* ``train``: train a hasher, write a run directory (``model.keras``,
  ``config.json``, ``history.json``, ``report.json``);
* ``evaluate``: score a run directory (or a ``.keras`` file) on a dataset's
  query and database splits;
* ``reproduce``: train and evaluate every cell of a table config.

User errors (unknown dataset, missing or malformed data, bad option) print
one ``error: ...`` line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys

from keras_dhsps.cli import data as data_commands
from keras_dhsps.cli import ship as ship_commands
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.data.options import check_options
from keras_dhsps.serving.load import resolve_model_file
from keras_dhsps.training import STRATEGIES
from keras_dhsps.training.rundir import CONFIG_FILE
from keras_dhsps.training.rundir import RunDirectory
from keras_dhsps.training.rundir import read_json_file
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import around_first_import

EXIT_USAGE = 2


def _experiment_config(args):
    from keras_dhsps.config import ExperimentConfig
    from keras_dhsps.config import from_dict
    from keras_dhsps.config import load_config_file
    from keras_dhsps.config import override

    if args.config is None:
        config = ExperimentConfig()
    elif args.config.split(":")[0].endswith(".json"):
        config = from_dict(read_json_file(args.config, "config file"))
    else:
        config = load_config_file(args.config, ExperimentConfig)
    assignments = list(args.set or [])
    for flag, key in (
        ("dataset", "data.name"),
        ("bits", "model.bits"),
        ("loss", "loss.name"),
        ("epochs", "train.epochs"),
        ("batch_size", "train.batch_size"),
        ("seed", "train.seed"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            assignments.append(f"{key}={json.dumps(value)}")
    config = override(config, *assignments)
    check_options(config.data)
    return config


def _add_config_flags(parser):
    parser.add_argument(
        "--config",
        help="experiment config: a .py file with get_config(arg) "
        "(FILE.py[:ARG]) or a run's config.json",
    )
    parser.add_argument("--dataset", help="dataset name, e.g. digits-mosaic")
    parser.add_argument(
        "--data-root",
        "--root",
        dest="data_root",
        help="dataset directory (--root is an alias)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.epochs=5 (repeatable)",
    )


def _require_training(config):
    """``train`` and ``reproduce`` train: 0 epochs would write an untrained
    model (the library allows 0 to build the initial model)."""
    if config.train.epochs < 1:
        raise DHSPSError(
            f"train.epochs={config.train.epochs} is not allowed here; "
            "expected an integer >= 1"
        )


def _train(args):
    from keras_dhsps.utils.files import check_writable_output

    config = _experiment_config(args)
    if args.name:
        config = dataclasses.replace(config, name=args.name)
    _require_training(config)
    check_writable_output(args.output, directory=True)
    if args.strategy != "default":
        from keras_dhsps.training.distribution import check_strategy

        check_strategy(args.strategy)  # before any data is read
    run = RunDirectory(args.output)
    if run.check(config):
        print(f"{args.output} is complete (config unchanged); nothing to do")
        return
    # Data first: keras_dhsps.data imports no TensorFlow, so a data error is
    # reported before TensorFlow prints its start-up notices. fit claims
    # the run directory (config.json) once the data has loaded.
    dataset = load_configured_dataset(config.data, root=args.data_root)
    _fit_and_report(args, config, dataset, run)


def _fit_and_report(args, config, dataset, run):
    from keras_dhsps.retrieval.evaluation import evaluate_retrieval
    from keras_dhsps.training.fit import fit

    strategy = None
    if args.strategy != "default":
        from keras_dhsps.training.distribution import make_strategy

        strategy = make_strategy(args.strategy)
    # The output directory is the run directory: checkpoints go there, and
    # the same command run again resumes from the last one.
    # fit writes model.keras and history.json into the run directory.
    result = fit(
        config,
        dataset=dataset,
        verbose=args.verbose,
        run_dir=run.path,
        strategy=strategy,
    )
    _say(args, "evaluating: encoding the query and database splits")
    report = evaluate_retrieval(
        result.model,
        result.dataset,
        config.eval,
        verbose=args.verbose,
        input_config=config.input,
    )
    run.write_report(report)
    _print_metrics(report["metrics"])
    print(f"wrote {args.output}")


def _say(args, message):
    """A progress line (not in silent mode)."""
    if args.verbose:
        print(message, flush=True)


def _evaluate(args):
    model_path, run_config = resolve_model_file(args.model)
    if args.config is None and run_config is not None:
        args.config = os.path.join(args.model, CONFIG_FILE)
    config = _experiment_config(args)
    if args.output:
        from keras_dhsps.utils.files import check_writable_output

        check_writable_output(args.output)
    dataset = load_configured_dataset(config.data, root=args.data_root)

    from keras_dhsps.retrieval.evaluation import evaluate_retrieval
    from keras_dhsps.serving.load import load_hasher
    from keras_dhsps.utils.files import write_json

    model = load_hasher(model_path).model
    _say(args, "evaluating: encoding the query and database splits")
    report = evaluate_retrieval(
        model,
        dataset,
        config.eval,
        verbose=args.verbose,
        input_config=config.input,
    )
    _print_metrics(report["metrics"])
    if args.output:
        write_json(args.output, report)
        print(f"wrote {args.output}")


def _table_specs(args):
    """``(name, FILE[:ARG])`` of each table the reproduce command names."""
    from keras_dhsps.experiments.table_config import config_name
    from keras_dhsps.experiments.table_config import list_tables
    from keras_dhsps.experiments.table_config import table_config_path

    if sum(bool(x) for x in (args.config, args.table, args.all)) != 1:
        raise DHSPSError("give one of CONFIG, --table NAME or --all")
    if args.config:
        paths = [args.config]
    elif args.table:
        paths = [
            table_config_path(name, args.configs_dir) for name in args.table
        ]
    else:
        paths = [
            table_config_path(name, args.configs_dir)
            for name in list_tables(args.configs_dir)
        ]
    arg = "smoke" if args.smoke else "full" if args.full else None
    if args.smoke and args.full:
        raise DHSPSError("--smoke and --full exclude each other")
    specs = []
    for path in paths:
        if arg and ":" in path:
            raise DHSPSError(f"--{arg} cannot be combined with FILE:ARG")
        name = config_name(path.split(":")[0])
        specs.append((name, f"{path}:{arg}" if arg else path))
    return specs


def _reproduce(args):
    from keras_dhsps.experiments.table_config import load_table_config
    from keras_dhsps.experiments.table_config import with_overrides
    from keras_dhsps.utils.files import check_writable_output

    specs = _table_specs(args)
    tables = [
        (name, with_overrides(load_table_config(spec), *(args.set or [])))
        for name, spec in specs
    ]
    for _, table in tables:
        _require_training(table.base)
    check_writable_output(args.output or "results", directory=True)

    import keras

    from keras_dhsps.experiments.runner import run_table

    single = len(tables) == 1
    output_root = args.output or "results"
    # Tables share one cell cache, so identical cells are computed once.
    cells_dir = os.path.join(output_root, "cells") if not single else None
    for name, table in tables:
        output = (
            output_root
            if single and args.output
            else os.path.join(output_root, name)
        )
        bar = keras.utils.Progbar(
            len(table.methods) * len(table.bits) * len(table.seeds),
            verbose=args.verbose,
            unit_name="cell",
        )

        def progress(done, total, message, bar=bar):
            logging.getLogger("keras_dhsps").info(message)
            bar.update(done)

        results = run_table(
            table,
            output,
            data_root=args.data_root,
            progress=progress,
            cells_dir=cells_dir,
        )
        with open(os.path.join(output, "results.md"), encoding="utf-8") as f:
            print(f.read())
        print(f"wrote {output} in {results['seconds']:.0f} s")


def _print_metrics(metrics):
    for key, value in sorted(metrics.items()):
        print(f"{key:>24s}  {value:.4f}")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error: ...`` line, status 2."""

    def error(self, message):
        line = _one_line(f"{message} (see {self.prog} --help)")
        self.exit(EXIT_USAGE, f"error: {line}\n")


_VERBOSE_HELP = (
    "0 silent, 1 progress bars (default; on a terminal only: output to a "
    "file or pipe gets 2), 2 one line per epoch; accepted before or after "
    "the subcommand"
)


def _add_verbose_everywhere(parser, *, top=True):
    """``--verbose`` before or after any subcommand."""
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None if top else argparse.SUPPRESS,
        help=_VERBOSE_HELP,
    )
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_verbose_everywhere(child, top=False)


_TRAIN_EPILOG = (
    "The backbone learns at train.backbone_lr_multiplier times the hash "
    "layer's rate; by default 1.0 for a backbone trained from scratch and "
    "the authors' 0.01 with pretrained weights (model.backbone_weights "
    "set). Rerunning the same command resumes the run in --output; a "
    "finished run is left as it is; a run directory made with another "
    "config is refused, naming the keys that differ. Every config field is "
    "checked before any work (e.g. --set train.epochs=abc is refused)."
)


def _add_train(commands):
    train = commands.add_parser(
        "train", help="train a hasher", epilog=_TRAIN_EPILOG
    )
    _add_config_flags(train)
    train.add_argument(
        "--bits", type=ship_commands.at_least(1), help="code length K"
    )
    train.add_argument("--loss", help="loss name, e.g. idhn, idhn_hard_only")
    train.add_argument("--epochs", type=ship_commands.at_least(1))
    train.add_argument("--batch-size", type=ship_commands.at_least(1))
    train.add_argument("--seed", type=ship_commands.at_least(0))
    train.add_argument("--name", help="experiment name")
    train.add_argument(
        "--output",
        required=True,
        help="run directory: model.keras, config.json, history.json, "
        "report.json, checkpoints/ (rerunning the command resumes)",
    )
    train.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
        help="tf.distribute strategy (the loss sees the global batch)",
    )
    train.set_defaults(handler=_train)


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="mAP, NDCG, ... of a trained hasher"
    )
    evaluate.add_argument("model", help="a run directory or a .keras file")
    _add_config_flags(evaluate)
    evaluate.add_argument("--output", help="write the report JSON here")
    evaluate.set_defaults(handler=_evaluate)


def _add_reproduce(commands):
    reproduce = commands.add_parser(
        "reproduce", help="train and evaluate every cell of one or more tables"
    )
    reproduce.add_argument(
        "config", nargs="?", help="a table config FILE.py[:ARG]"
    )
    reproduce.add_argument(
        "--table",
        action="append",
        help="a table by name (reproduce/configs/NAME.py); repeatable",
    )
    reproduce.add_argument(
        "--all", action="store_true", help="every table in --configs-dir"
    )
    reproduce.add_argument(
        "--configs-dir",
        default="reproduce/configs",
        help="where --table and --all look (default: reproduce/configs)",
    )
    reproduce.add_argument(
        "--output",
        help="results directory (default: results/<table>; with several "
        "tables, one subdirectory each)",
    )
    reproduce.add_argument(
        "--data-root", "--root", dest="data_root", help="dataset directory"
    )
    reproduce.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a field of every cell, e.g. "
        "--set model.backbone_weights=bvlc_alexnet.npy (repeatable)",
    )
    reproduce.add_argument(
        "--full", action="store_true", help="more seeds and epochs (FILE:full)"
    )
    reproduce.add_argument(
        "--smoke",
        action="store_true",
        help="digits-mosaic with a tiny budget (FILE:smoke), for checks",
    )
    reproduce.set_defaults(handler=_reproduce)


def build_parser():
    parser = _Parser(
        prog="dhsps",
        description="IDHN deep hashing with soft pairwise similarity.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_reproduce(commands)
    ship_commands.register(commands)
    data_commands.register(commands)
    _add_verbose_everywhere(parser)
    return parser


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """Sends file descriptor 2 to /dev/null while the block runs (C++ log
    lines that no environment variable turns off)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_tensorflow_import() -> None:
    """Imports TensorFlow, when something first needs it, with its C++
    start-up notices (absl ``I0000 ... oneDNN ...``) silenced: they are
    printed whatever ``TF_CPP_MIN_LOG_LEVEL`` says and would bury the
    one-line errors. Python exceptions from the import still show."""

    def silenced(execute):
        with _stderr_descriptor_silenced():
            execute()

    around_first_import("tensorflow", silenced)


def _one_line(message) -> str:
    return " ".join(str(message).split()) or "unknown error"


def main(argv=None) -> int:
    """Runs the CLI; returns the exit status.

    User errors (:class:`DHSPSError`, bad options) print one ``error: ...``
    line and return 2; anything else is a bug and keeps its traceback.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.verbose in (None, 1):  # \r-redrawn bars only on a terminal
        args.verbose = 1 if sys.stdout.isatty() else 2
    # TensorFlow's C++ start-up notices would bury the one-line errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _quiet_tensorflow_import()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        args.handler(args)
    except DHSPSError as error:
        sys.stdout.flush()
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    return 0

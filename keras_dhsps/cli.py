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
import dataclasses
import json
import logging
import os
import sys

from keras_dhsps.errors import DHSPSError

EXIT_USAGE = 2


def _experiment_config(args):
    from keras_dhsps.config import ExperimentConfig
    from keras_dhsps.config import from_dict
    from keras_dhsps.config import override
    from keras_dhsps.io_utils import read_json
    from keras_dhsps.tables import load_table_config

    if args.config is None:
        config = ExperimentConfig()
    elif args.config.split(":")[0].endswith(".json"):
        path = args.config
        if not os.path.isfile(path):
            raise DHSPSError(f"config file not found: {path}")
        config = from_dict(read_json(path))
    else:
        config = load_table_config(args.config)
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
    try:
        return override(config, *assignments)
    except (ValueError, TypeError) as error:
        raise DHSPSError(str(error)) from None


def _add_config_flags(parser):
    parser.add_argument(
        "--config",
        help="experiment config: a .py file with get_config(arg) "
        "(FILE.py[:ARG]) or a run's config.json",
    )
    parser.add_argument("--dataset", help="dataset name, e.g. digits-mosaic")
    parser.add_argument("--data-root", help="dataset directory")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.epochs=5 (repeatable)",
    )


def _load_dataset(config, data_root):
    # Imports no TensorFlow: data errors are reported before its start-up
    # notices are printed.
    from keras_dhsps.data import load_dataset

    return load_dataset(
        config.data.name,
        root=data_root,
        seed=config.data.seed,
        **config.data.options,
    )


def _train(args):
    from keras_dhsps.config import to_dict

    config = _experiment_config(args)
    if args.name:
        config = dataclasses.replace(config, name=args.name)
    dataset = _load_dataset(config, args.data_root)

    from keras_dhsps.evaluation import evaluate_retrieval
    from keras_dhsps.io_utils import write_json
    from keras_dhsps.train import fit

    result = fit(config, dataset=dataset, verbose=args.verbose)
    os.makedirs(args.output, exist_ok=True)
    result.model.save(os.path.join(args.output, "model.keras"))
    write_json(os.path.join(args.output, "config.json"), to_dict(config))
    write_json(os.path.join(args.output, "history.json"), result.history)
    report = evaluate_retrieval(
        result.model, result.dataset, config.eval, verbose=args.verbose
    )
    write_json(os.path.join(args.output, "report.json"), report)
    _print_metrics(report["metrics"])
    print(f"wrote {args.output}")


def _evaluate(args):
    model_path = args.model
    if os.path.isdir(model_path):
        if args.config is None:
            candidate = os.path.join(model_path, "config.json")
            if os.path.isfile(candidate):
                args.config = candidate
        model_path = os.path.join(model_path, "model.keras")
    if not os.path.isfile(model_path):
        raise DHSPSError(f"model file not found: {model_path}")
    config = _experiment_config(args)
    dataset = _load_dataset(config, args.data_root)

    from keras_dhsps.evaluation import evaluate_retrieval
    from keras_dhsps.io_utils import write_json
    from keras_dhsps.models import load_hasher

    model = load_hasher(model_path)
    report = evaluate_retrieval(model, dataset, config.eval, verbose=args.verbose)
    _print_metrics(report["metrics"])
    if args.output:
        write_json(args.output, report)
        print(f"wrote {args.output}")


def _reproduce(args):
    import keras

    from keras_dhsps.tables import load_table_config
    from keras_dhsps.tables import run_table

    spec = args.config
    if args.full:
        if ":" in spec:
            raise DHSPSError("--full cannot be combined with FILE:ARG")
        spec += ":full"
    table = load_table_config(spec)
    bar = keras.utils.Progbar(
        len(table.methods) * len(table.bits) * len(table.seeds),
        verbose=args.verbose,
        unit_name="cell",
    )

    def progress(done, total, message):
        logging.getLogger("keras_dhsps").info(message)
        bar.update(done)

    results = run_table(
        table, args.output, data_root=args.data_root, progress=progress
    )
    with open(os.path.join(args.output, "results.md"), encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {args.output} in {results['seconds']:.0f} s")


def _print_metrics(metrics):
    for key, value in sorted(metrics.items()):
        print(f"{key:>24s}  {value:.4f}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="dhsps",
        description="IDHN deep hashing with soft pairwise similarity.",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="0 silent, 1 progress bars (default), 2 one line per epoch",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a hasher")
    _add_config_flags(train)
    train.add_argument("--bits", type=int, help="code length K")
    train.add_argument("--loss", help="loss name, e.g. idhn, idhn_hard_only")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--name", help="experiment name")
    train.add_argument(
        "--output", required=True, help="run directory to write"
    )
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate", help="mAP, NDCG, ... of a trained hasher"
    )
    evaluate.add_argument("model", help="a run directory or a .keras file")
    _add_config_flags(evaluate)
    evaluate.add_argument("--output", help="write the report JSON here")
    evaluate.set_defaults(handler=_evaluate)

    reproduce = commands.add_parser(
        "reproduce", help="train and evaluate every cell of a table"
    )
    reproduce.add_argument("config", help="table config FILE.py[:ARG]")
    reproduce.add_argument("--output", required=True, help="results directory")
    reproduce.add_argument("--data-root", help="dataset directory")
    reproduce.add_argument(
        "--full", action="store_true", help="more seeds and epochs (FILE:full)"
    )
    reproduce.set_defaults(handler=_reproduce)
    __import__("keras_dhsps.ship_commands").ship_commands.register(commands)
    __import__("keras_dhsps.data.commands").data.commands.register(commands)
    return parser


def main(argv=None) -> int:
    """Runs the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up notices would bury the one-line errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        args.handler(args)
    except DHSPSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0

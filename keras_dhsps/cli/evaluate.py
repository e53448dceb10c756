"""``dhsps evaluate``: score a run directory (or a ``.keras`` file) on a
dataset's query and database splits."""

from __future__ import annotations

import os

from keras_dhsps.cli.arguments import add_config_flags
from keras_dhsps.cli.arguments import experiment_config
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.retrieval.evaluation import evaluate_retrieval
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.serving.load import resolve_model_file
from keras_dhsps.training.rundir import CONFIG_FILE
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.files import write_json


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a run directory or a .keras file")
    add_config_flags(parser)
    parser.add_argument("--output", help="write the report JSON here")
    parser.set_defaults(handler=run)


def run(args) -> None:
    model_path, run_config = resolve_model_file(args.model)
    if args.config is None and run_config is not None:
        args.config = os.path.join(args.model, CONFIG_FILE)
    config = experiment_config(args)
    if args.output:
        check_writable_output(args.output)
    dataset = load_configured_dataset(config.data, root=args.data_root)
    report = score(load_hasher(model_path).model, dataset, config, args.verbose)
    print_metrics(report["metrics"])
    if args.output:
        write_json(args.output, report)
        print(f"wrote {args.output}")


def score(model, dataset, config, verbose) -> dict:
    """The retrieval report of ``model`` on ``dataset`` (``train`` scores
    the model it trained with it too); says so unless silent."""
    if verbose:
        print("evaluating: encoding the query and database splits", flush=True)
    return evaluate_retrieval(
        model,
        dataset,
        config.eval,
        verbose=verbose,
        input_config=config.input,
    )


def print_metrics(metrics: dict) -> None:
    for key, value in sorted(metrics.items()):
        print(f"{key:>24s}  {value:.4f}")

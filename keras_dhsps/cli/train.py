"""``dhsps train``: train a hasher into a run directory (``model.keras``,
``config.json``, ``history.json``, ``report.json``)."""

from __future__ import annotations

import dataclasses
import logging

from keras_dhsps.cli.arguments import add_config_flags
from keras_dhsps.cli.arguments import at_least
from keras_dhsps.cli.arguments import experiment_config
from keras_dhsps.cli.arguments import require_training
from keras_dhsps.cli.evaluate import print_metrics
from keras_dhsps.cli.evaluate import score
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.training import STRATEGIES
from keras_dhsps.training import multihost
from keras_dhsps.training.distribution import check_strategy
from keras_dhsps.training.distribution import make_strategy
from keras_dhsps.training.fit import fit
from keras_dhsps.training.rundir import RunDirectory
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output

_EPILOG = (
    "The backbone learns at train.backbone_lr_multiplier times the hash "
    "layer's rate; by default 1.0 for a backbone trained from scratch and "
    "the authors' 0.01 with pretrained weights (model.backbone_weights "
    "set). Rerunning the same command resumes the run in --output; a "
    "finished run is left as it is; a run directory made with another "
    "config is refused, naming the keys that differ. Every config field is "
    "checked before any work (e.g. --set train.epochs=abc is refused)."
)


def add_arguments(parser) -> None:
    parser.epilog = _EPILOG
    add_config_flags(parser)
    parser.add_argument("--bits", type=at_least(1), help="code length K")
    parser.add_argument("--loss", help="loss name, e.g. idhn, idhn_hard_only")
    parser.add_argument("--epochs", type=at_least(1))
    parser.add_argument("--batch-size", type=at_least(1))
    parser.add_argument("--seed", type=at_least(0))
    parser.add_argument("--name", help="experiment name")
    parser.add_argument(
        "--output",
        required=True,
        help="run directory: model.keras, config.json, history.json, "
        "report.json, checkpoints/ (rerunning the command resumes)",
    )
    parser.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
        help="tf.distribute strategy (the loss sees the global batch)",
    )
    _add_multihost_arguments(parser)
    parser.set_defaults(handler=run)


def _add_multihost_arguments(parser) -> None:
    group = parser.add_argument_group(
        "training across processes and hosts (KERAS_BACKEND=jax; see "
        "docs/distributed.md)"
    )
    group.add_argument(
        "--distribution",
        default="none",
        choices=multihost.DISTRIBUTIONS,
        help="data_parallel: jax.distributed and keras.distribution."
        "DataParallel over every process's devices; process 0 writes "
        "--output (default: none)",
    )
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="process 0's address (default: JAX_COORDINATOR_ADDRESS or "
        "JAX's cluster detection)",
    )
    group.add_argument("--num-processes", type=at_least(1))
    group.add_argument("--process-id", type=at_least(0))
    group.add_argument(
        "--coordinator-timeout",
        type=at_least(1),
        default=300,
        metavar="SECONDS",
        help="how long to wait for every process to join (default 300)",
    )


def run(args) -> None:
    config = experiment_config(args)
    if args.name:
        config = dataclasses.replace(config, name=args.name)
    require_training(config)
    check_writable_output(args.output, directory=True)
    check_strategy(args.strategy)  # before any data is read
    if args.distribution == "data_parallel":
        config = _multihost_config(args, config)
    run_dir = RunDirectory(args.output)
    state = run_dir.check(config)
    if state:
        print(f"{args.output} is complete (config unchanged); nothing to do")
        return
    if args.distribution == "data_parallel":
        _train_across_processes(args, config, run_dir, resuming=state is False)
        return
    dataset = load_configured_dataset(config.data, root=args.data_root)
    # The output directory is the run directory: fit claims it (config.json)
    # and writes model.keras, history.json and the checkpoints there, so the
    # same command run again resumes from the last one.
    if args.verbose:  # fit says where a resumed run starts
        logging.getLogger("keras_dhsps.training.fit").setLevel(logging.INFO)
    result = fit(
        config,
        dataset=dataset,
        verbose=args.verbose,
        run_dir=run_dir.path,
        strategy=_strategy(args.strategy),
    )
    report = score(result.model, result.dataset, config, args.verbose)
    run_dir.write_report(report)
    print_metrics(report["metrics"])
    print(f"wrote {args.output}")


def _strategy(name: str):
    """The ``tf.distribute`` strategy ``--strategy`` names; None for the
    default (Keras's own device placement)."""
    return None if name == "default" else make_strategy(name)


def _multihost_config(args, config):
    """Refuses what ``--distribution data_parallel`` cannot run, before
    any work; the config it trains (no validation during training)."""
    if args.strategy != "default":
        raise DHSPSError("--strategy and --distribution exclude each other")
    multihost.check_multihost(args.num_processes, args.process_id)
    return multihost.without_validation(config)


def _train_across_processes(args, config, run_dir, *, resuming) -> None:
    """``--distribution data_parallel``: every process trains its share of
    each global batch; process 0 alone writes the run directory and
    evaluates the trained model."""
    if resuming:
        raise DHSPSError(
            f"{args.output} holds a started run; resuming is not supported "
            "with --distribution data_parallel (give another --output)"
        )
    multihost.start_data_parallel(
        args.coordinator,
        args.num_processes,
        args.process_id,
        timeout_s=args.coordinator_timeout,
    )
    chief = multihost.is_chief()
    dataset = load_configured_dataset(config.data, root=args.data_root)
    with multihost.process_run_dir(run_dir.path) as path:
        result = fit(
            config,
            dataset=dataset,
            verbose=args.verbose if chief else 0,
            run_dir=path,
            reader="tf.data",
        )
    if not chief:
        print("trained; process 0 writes the run directory")
        return
    model = multihost.local_model(result.model)
    report = score(model, result.dataset, config, args.verbose)
    run_dir.write_report(report)
    print_metrics(report["metrics"])
    print(f"wrote {args.output}")

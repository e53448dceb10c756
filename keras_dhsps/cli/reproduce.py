"""``dhsps reproduce``: train and evaluate every cell of one or more table
configs, and print each table."""

from __future__ import annotations

import logging
import os

import keras

from keras_dhsps.cli.arguments import require_training
from keras_dhsps.experiments.runner import run_table
from keras_dhsps.experiments.table_config import CONFIGS_DIR
from keras_dhsps.experiments.table_config import config_name
from keras_dhsps.experiments.table_config import list_tables
from keras_dhsps.experiments.table_config import load_table_config
from keras_dhsps.experiments.table_config import table_config_path
from keras_dhsps.experiments.table_config import with_overrides
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output


def add_arguments(parser) -> None:
    parser.add_argument(
        "config", nargs="?", help="a table config FILE.py[:ARG]"
    )
    parser.add_argument(
        "--table",
        action="append",
        help="a table by name (reproduce/configs/NAME.py); repeatable",
    )
    parser.add_argument(
        "--all", action="store_true", help="every table in --configs-dir"
    )
    parser.add_argument(
        "--configs-dir",
        default=CONFIGS_DIR,
        help="where --table and --all look (default: the repository's "
        "reproduce/configs, wherever the command runs)",
    )
    parser.add_argument(
        "--output",
        help="results directory (default: results/<table>; with several "
        "tables, one subdirectory each)",
    )
    parser.add_argument(
        "--data-root", "--root", dest="data_root", help="dataset directory"
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a field of every cell, e.g. "
        "--set model.backbone_weights=bvlc_alexnet.npy (repeatable)",
    )
    parser.add_argument(
        "--full", action="store_true", help="more seeds and epochs (FILE:full)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="digits-mosaic with a tiny budget (FILE:smoke), for checks",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    tables = [
        (name, with_overrides(load_table_config(spec), *(args.set or [])))
        for name, spec in _table_specs(args)
    ]
    for _, table in tables:
        require_training(table.base)
    output_root = args.output or "results"
    check_writable_output(output_root, directory=True)
    single = len(tables) == 1
    # Tables share one cell cache, so identical cells are computed once.
    cells_dir = os.path.join(output_root, "cells") if not single else None
    for name, table in tables:
        output = (
            output_root
            if single and args.output
            else os.path.join(output_root, name)
        )
        _run_one(args, table, output, cells_dir)


def _run_one(args, table, output: str, cells_dir: str | None) -> None:
    """Computes one table's cells with a progress bar; prints the table."""
    bar = keras.utils.Progbar(
        len(table.methods) * len(table.bits) * len(table.seeds),
        verbose=args.verbose,
        unit_name="cell",
    )

    def progress(done, total, message):
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


def _table_specs(args) -> list[tuple[str, str]]:
    """``(name, FILE[:ARG])`` of each table the command line names."""
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

"""``dhsps index``: persisted search indexes and shard manifests.

* ``dhsps index build CODES -o INDEX``: the index directory of a code
  database (``.h5``) or a shard manifest (``.json``), for ``dhsps search``
  and ``keras_dhsps.retrieval.index_directory.open_index``
  (docs/search.md);
* ``dhsps index shards SHARD.h5 ... -o MANIFEST.json``: lists the code
  databases of one collection in order, with rows and checksums.
"""

from __future__ import annotations

import argparse

from keras_dhsps.utils.errors import DHSPSError


def _build(args) -> None:
    from keras_dhsps.retrieval.index_directory import build_index
    from keras_dhsps.utils.files import check_writable_output

    check_writable_output(args.output, directory=True)
    summary = build_index(
        args.codes,
        args.output,
        method=args.method,
        num_substrings=args.num_substrings,
    )
    shards = summary["shards"]
    print(
        f"wrote {args.output}: {summary['codes']} {summary['bits']}-bit codes"
        f"{f' in {shards} shards' if shards > 1 else ''}, method {args.method}"
    )


def _shards(args) -> None:
    from keras_dhsps.retrieval.shards import write_shard_manifest
    from keras_dhsps.utils.files import check_writable_output

    if not args.output.lower().endswith(".json"):
        raise DHSPSError(f"{args.output}: a shard manifest ends in .json")
    check_writable_output(args.output)
    shards = write_shard_manifest(args.output, args.shards)
    total = sum(shard.rows for shard in shards)
    print(f"wrote {args.output}: {len(shards)} shards, {total} codes")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def add_arguments(parser) -> None:
    """Fills ``dhsps index`` (``build``, ``shards``)."""
    from keras_dhsps.retrieval.index import METHODS

    commands = parser.add_subparsers(dest="index_command", required=True)
    build = commands.add_parser(
        "build", help="write the index directory of a code database"
    )
    build.add_argument(
        "codes", help="a code database (.h5) or a shard manifest (.json)"
    )
    build.add_argument("-o", "--output", required=True, help="new directory")
    build.add_argument("--method", default="mih", choices=METHODS)
    build.add_argument(
        "--num-substrings",
        type=_positive,
        help="m for mih (default ceil(bits / log2 N))",
    )
    build.set_defaults(handler=_build)
    shards = commands.add_parser(
        "shards", help="write a shard manifest of code databases"
    )
    shards.add_argument("shards", nargs="+", metavar="SHARD.h5")
    shards.add_argument("-o", "--output", required=True, help="a .json file")
    shards.set_defaults(handler=_shards)

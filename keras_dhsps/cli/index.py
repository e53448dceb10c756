"""``dhsps index``: persisted search indexes and shard manifests.

* ``dhsps index build CODES -o INDEX``: the index directory of a code
  database (``.h5``) or a shard manifest (``.json``), for ``dhsps search``
  and ``keras_dhsps.retrieval.index_directory.open_index``
  (docs/search.md);
* ``dhsps index shards SHARD.h5 ... -o MANIFEST.json``: lists the code
  databases of one collection in order, with rows and checksums.
"""

from __future__ import annotations

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.retrieval.index import METHODS
from keras_dhsps.retrieval.index_directory import build_index
from keras_dhsps.retrieval.shards import is_manifest
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.outputs import check_output
from keras_dhsps.utils.outputs import refuse_overlap


def _build(args) -> None:
    refuse_overlap(args.output, [args.codes])
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
    if not is_manifest(args.output):
        raise DHSPSError(f"{args.output}: a shard manifest ends in .json")
    check_output(
        args.output,
        kind="shard manifest",
        inputs=args.shards,
        overwrite=args.overwrite,
    )
    check_writable_output(args.output)
    shards = write_shard_manifest(args.output, args.shards)
    total = sum(shard.rows for shard in shards)
    print(f"wrote {args.output}: {len(shards)} shards, {total} codes")


def add_arguments(parser) -> None:
    """Fills ``dhsps index`` (``build``, ``shards``)."""
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
        type=at_least(1),
        help="m for mih (default ceil(bits / log2 N))",
    )
    build.set_defaults(handler=_build)
    shards = commands.add_parser(
        "shards", help="write a shard manifest of code databases"
    )
    shards.add_argument("shards", nargs="+", metavar="SHARD.h5")
    shards.add_argument("-o", "--output", required=True, help="a .json file")
    shards.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing shard manifest (never another file)",
    )
    shards.set_defaults(handler=_shards)

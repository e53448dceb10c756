"""``dhsps search MODEL CODES QUERY_IMAGE... -k 20``: the nearest images
of query images, with their Hamming distances. CODES: a code database, a
shard manifest or an index directory (docs/search.md)."""

from __future__ import annotations

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.retrieval.collection import open_collection
from keras_dhsps.retrieval.index import BACKENDS
from keras_dhsps.serving.encode import read_query_images
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError

# Results per query that `dhsps search` prints by default.
_DEFAULT_K = 20


def add_arguments(parser) -> None:
    parser.add_argument(
        "model", help="a run directory, .keras file or SavedModel"
    )
    parser.add_argument(
        "codes",
        help="a code database (.h5) or shard manifest (.json) from `dhsps "
        "encode`, or an index directory from `dhsps index build`",
    )
    parser.add_argument("queries", nargs="+", metavar="QUERY_IMAGE")
    parser.add_argument(
        "-k", type=at_least(1), default=_DEFAULT_K, help="results per query"
    )
    parser.add_argument(
        "--radius",
        type=at_least(0),
        help="instead of the top k: every item with distance <= RADIUS "
        "(at most k shown)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="the flat scan's (auto: faiss if installed; an index "
        "directory keeps its own)",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    collection = open_collection(args.codes, backend=args.backend)
    hasher = load_hasher(args.model)
    if hasher.bits != collection.bits:
        raise DHSPSError(
            f"{args.model} makes {hasher.bits}-bit codes but {args.codes} "
            f"holds {collection.bits}-bit codes"
        )
    images = read_query_images(args.queries, hasher)
    packed = pack_codes(hasher.codes_from_preprocessed(images))
    index = collection.index
    within = [None] * len(packed)
    if args.radius is not None:
        lims, distances, indices = index.range_search(packed, args.radius)
        rows = [
            (
                distances[lims[q] : lims[q + 1]][: args.k],
                indices[lims[q] : lims[q + 1]][: args.k],
            )
            for q in range(len(packed))
        ]
        within = [int(lims[q + 1] - lims[q]) for q in range(len(packed))]
    else:
        distances, indices = index.search(packed, args.k)
        rows = list(zip(distances, indices, strict=True))
    for query, row, count in zip(args.queries, rows, within, strict=True):
        _print_results(query, row, count, args, collection.paths)


def _print_results(query, row, within, args, paths) -> None:
    """One query's ranked results; with ``--radius``, how many codes were
    within it when only the first ``k`` are shown."""
    print(f"query {query}")
    if within is not None:
        shown = min(within, args.k)
        more = f"; showing the first {shown} (-k)" if within > shown else ""
        print(f"{within} codes within radius {args.radius}{more}")
    print(f"{'rank':>6s} {'distance':>8s}  path")
    for rank, (distance, item) in enumerate(zip(*row, strict=True), start=1):
        if item < 0:
            break
        print(f"{rank:>6d} {int(distance):>8d}  {paths[item]}")

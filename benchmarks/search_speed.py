"""Hamming search speed: faiss vs the NumPy fallback vs a naive loop.

Searches ``--queries`` random 64-bit codes against ``--database`` random
64-bit codes (default 1,000,000) for the ``k = 100`` nearest, and reports
queries per second of:

* ``faiss IndexBinaryFlat`` alone (its own, unspecified tie order);
* ``HammingIndex(backend="faiss")``: the same plus the stable tie order
  (candidates re-sorted, unresolved ties re-queried by range search);
* ``HammingIndex(backend="numpy")``: popcount on 64-bit words, blocks of
  queries, the exact k-th distance by ``np.partition``;
* a naive per-query loop: XOR + popcount + stable ``argsort`` of one query
  at a time (``--naive-queries`` of them; it is slow).

It also checks that the two ``HammingIndex`` backends and the naive loop
return identical distances and indices. Run:

    python benchmarks/search_speed.py                 # ~1-2 min on 2 cores
    python benchmarks/search_speed.py --output benchmarks/search_speed.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_dhsps.retrieval.index import HammingIndex  # noqa: E402
from keras_dhsps.retrieval.index import faiss_available  # noqa: E402
from keras_dhsps.utils.files import write_json  # noqa: E402


def naive_search(queries: np.ndarray, database: np.ndarray, k: int):
    """One query at a time: popcount of XOR, stable argsort, top k."""
    words = database.view(np.uint64).ravel()
    distances = np.empty((len(queries), k), dtype=np.int32)
    indices = np.empty((len(queries), k), dtype=np.int64)
    for row, query in enumerate(queries.view(np.uint64).ravel()):
        dist = np.bitwise_count(np.bitwise_xor(words, query))
        order = np.argsort(dist, kind="stable")[:k]
        distances[row], indices[row] = dist[order], order
    return distances, indices


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--naive-queries", type=int, default=50)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="faiss OpenMP threads (default 1: the NumPy paths use one core)",
    )
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.bits != 64:
        parser.error("the naive loop views codes as one uint64: --bits 64")
    rng = np.random.default_rng(args.seed)
    database = rng.integers(0, 256, (args.database, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, (args.queries, 8), dtype=np.uint8)
    k = args.k
    rows = []

    def record(name, seconds, count):
        rows.append(
            {
                "method": name,
                "queries": count,
                "seconds": round(seconds, 3),
                "qps": round(count / seconds, 1),
            }
        )
        print(
            f"{name:<42s} {count:>6d} queries {seconds:8.2f} s "
            f"{count / seconds:10.1f} q/s",
            flush=True,
        )

    results = {}
    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(args.threads)
        flat = faiss.IndexBinaryFlat(args.bits)
        flat.add(database)
        _, seconds = timed(flat.search, queries, k)
        record("faiss IndexBinaryFlat (raw tie order)", seconds, len(queries))
        index = HammingIndex(args.bits, backend="faiss")
        index.add(database)
        results["faiss"], seconds = timed(index.search, queries, k)
        record("HammingIndex faiss (stable ties)", seconds, len(queries))
    index = HammingIndex(args.bits, backend="numpy")
    index.add(database)
    results["numpy"], seconds = timed(index.search, queries, k)
    record("HammingIndex numpy (stable ties)", seconds, len(queries))
    naive, seconds = timed(
        naive_search, queries[: args.naive_queries], database, k
    )
    record("naive per-query loop (stable argsort)", seconds, args.naive_queries)
    reference = results["numpy"]
    identical = np.array_equal(
        reference[0][: args.naive_queries], naive[0]
    ) and np.array_equal(reference[1][: args.naive_queries], naive[1])
    if "faiss" in results:
        identical = identical and all(
            np.array_equal(a, b)
            for a, b in zip(results["faiss"], reference, strict=True)
        )
    print(f"identical results across methods: {identical}")
    summary = {
        "database": args.database,
        "bits": args.bits,
        "k": k,
        "identical": bool(identical),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs",
        "faiss_threads": args.threads if faiss_available() else None,
        "results": rows,
    }
    if args.output:
        write_json(args.output, summary)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())

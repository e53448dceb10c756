"""Hamming search at scale: flat scans against exact multi-index hashing.

For each database size, code length and kind of codes, every method
(``HammingIndex`` flat/mih on the NumPy and faiss backends) builds its index
and answers the same queries, k nearest and radius searches; results are
checked identical to the NumPy flat scan's (distances and indices, ties by
database index). Reported: queries per second, the ratio to the NumPy flat
scan measured in the same run, build time, memory beside the codes, and the
floor of any one-query-at-a-time linear scan (one pass over the codes).

Codes (seeded):

* ``uniform``: every bit a fair coin (MIH's worst case);
* ``trained``: 2,048 uniform random centres; each code is a centre drawn
  uniformly with each bit flipped independently with probability 5/64
  (7.8 %); queries are drawn the same way (same centres, new draws).

Run (the machine is shared: ``nice``)::

    nice -n 10 python benchmarks/search_scale.py --sizes 1e6,1e7
    nice -n 10 python benchmarks/search_scale.py --sizes 1e7 --bits 32,128
    nice -n 10 python benchmarks/search_scale.py --sizes 1e8 \\
        --methods flat-numpy,flat-faiss,mih-numpy --flat-queries 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_dhsps.retrieval.index import HammingIndex  # noqa: E402
from keras_dhsps.retrieval.index import faiss_available  # noqa: E402
from keras_dhsps.retrieval.mih import SCAN_FRACTION  # noqa: E402

METHODS = ("flat-numpy", "flat-faiss", "mih-numpy")
CENTRES = 2048
_BLOCK = 1 << 22


def _flip_words(rng, shape) -> np.ndarray:
    """Random words whose bits are set with probability 5/64 (binary
    0.000101: an OR for each 1 digit, an AND for each 0, last digit
    first)."""
    words = np.zeros(shape, dtype=np.uint64)
    for digit in (1, 0, 1, 0, 0, 0):
        other = rng.integers(0, 2**64, shape, dtype=np.uint64, endpoint=False)
        words = (other | words) if digit else (other & words)
    return words


def make_codes(rng, count: int, bits: int, kind: str, centres) -> np.ndarray:
    """``(count, bits / 8)`` packed codes of ``kind`` (module docstring)."""
    words = -(-bits // 64)
    out = np.empty((count, words), dtype=np.uint64)
    for start in range(0, count, _BLOCK):
        rows = min(_BLOCK, count - start)
        if kind == "uniform":
            block = rng.integers(0, 2**64, (rows, words), dtype=np.uint64)
        else:
            block = centres[rng.integers(0, len(centres), rows)]
            block ^= _flip_words(rng, (rows, words))
        out[start : start + rows] = block
    return np.ascontiguousarray(out.view(np.uint8)[:, : bits // 8])


def scan_floor(codes: np.ndarray) -> float:
    """Seconds of one pass over the packed codes (a reduction: the least
    any one-query-at-a-time scan must spend reading them)."""
    flat = codes.reshape(-1)
    words = flat[: len(flat) // 8 * 8].view(np.uint64)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        np.bitwise_or.reduce(words)
        best = min(best, time.perf_counter() - start)
    return best


def build(method: str, bits: int, codes: np.ndarray, args):
    """``(index, seconds, bytes held besides the codes)``."""
    kind, backend = method.split("-")
    start = time.perf_counter()
    index = HammingIndex(
        bits,
        backend=backend,
        method="flat" if kind == "flat" else "mih",
        num_substrings=args.m,
        scan_fraction=args.scan_fraction,
    )
    index.add(codes, copy=False)
    if kind == "mih":
        index.tables()
    index.search(codes[:1], 1)  # the NumPy scan's words, where they exist
    return index, time.perf_counter() - start, index.extra_bytes


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def run_case(args, bits: int, size: int, kind: str) -> list[dict]:
    rng = np.random.default_rng([args.seed, bits, size, kind == "trained"])
    centres = rng.integers(0, 2**64, (CENTRES, -(-bits // 64)), np.uint64)
    codes = make_codes(rng, size, bits, kind, centres)
    queries = make_codes(rng, args.queries, bits, kind, centres)
    floor = scan_floor(codes)
    print(
        f"\n{kind} {bits}-bit codes, N = {size:,}: {codes.nbytes / 1e6:.0f} MB;"
        f" one pass over them {floor * 1e3:.1f} ms (scan floor "
        f"{1 / floor:.1f} q/s); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    earlier = {}  # every earlier method's results, by query
    for method in args.methods:
        index, seconds, extra = build(method, bits, codes, args)
        common = dict(
            kind=kind,
            bits=bits,
            size=size,
            method=method,
            build_s=round(seconds, 2),
            extra_bytes=int(extra),
            extra_ratio=round(extra / codes.nbytes, 2),
            m=index.num_substrings,
            floor_qps=round(1 / floor, 2),
        )
        print(
            f"  {method}: built in {seconds:.1f} s, m={index.num_substrings}, "
            f"{extra / 1e6:.0f} MB besides the codes "
            f"({extra / codes.nbytes:.2f}x)",
            flush=True,
        )
        count = args.flat_queries if method.startswith("flat") else None
        for query_kind, value in [("k", k) for k in args.ks] + [
            ("radius", r) for r in args.radii
        ]:
            batch = queries[:count]
            call = index.search if query_kind == "k" else index.range_search
            result, took = timed(call, batch, value)
            identical = all(
                same(
                    _head(result, query_kind, min(n, len(batch))),
                    _head(other, query_kind, min(n, len(batch))),
                )
                for other, n in earlier.get((query_kind, value), [])
            )
            earlier.setdefault((query_kind, value), []).append(
                (result, len(batch))
            )
            rows.append(
                dict(
                    common,
                    query=query_kind,
                    value=value,
                    queries=len(batch),
                    qps=round(len(batch) / took, 1),
                    identical=identical,
                )
            )
            print(
                f"    {query_kind}={value:<5d} {len(batch):>5d} queries "
                f"{len(batch) / took:>10.1f} q/s  identical={identical}",
                flush=True,
            )
        del index
    _add_ratios(rows)
    return rows


def _head(result, query_kind: str, count: int):
    """The results of the first ``count`` queries."""
    if query_kind == "k":
        return tuple(part[:count] for part in result)
    lims, d, i = result
    return lims[: count + 1], d[: lims[count]], i[: lims[count]]


def _add_ratios(rows: list[dict]) -> None:
    base = {
        (r["query"], r["value"]): r["qps"]
        for r in rows
        if r["method"] == "flat-numpy"
    }
    for row in rows:
        flat = base.get((row["query"], row["value"]))
        row["vs_flat_numpy"] = round(row["qps"] / flat, 1) if flat else None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    numbers = lambda text: [int(float(x)) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--sizes", type=numbers, default=[10**6, 10**7])
    parser.add_argument("--bits", type=numbers, default=[64])
    parser.add_argument("--kinds", default="uniform,trained")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--flat-queries", type=int, default=100)
    parser.add_argument("--ks", type=numbers, default=[1, 10, 100, 1000])
    parser.add_argument("--radii", type=numbers, default=[0, 1, 2, 3])
    parser.add_argument("-m", type=int, help="num_substrings (default: rule)")
    parser.add_argument(
        "--scan-fraction",
        type=float,
        default=SCAN_FRACTION,
        help="mih: share of the database probed before a query is scanned",
    )
    parser.add_argument("--threads", type=int, default=1, help="faiss threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="append the rows to this JSON file")
    args = parser.parse_args(argv)
    args.kinds = args.kinds.split(",")
    args.methods = [
        m
        for m in args.methods.split(",")
        if faiss_available() or not m.endswith("faiss")
    ]
    if any(bits % 8 for bits in args.bits):
        parser.error("--bits must be multiples of 8 (whole random bytes)")
    if args.methods[0] != "flat-numpy":
        parser.error("--methods must start with flat-numpy (the reference)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"logical CPUs, NumPy {np.__version__}",
        flush=True,
    )
    rows = []
    for bits in args.bits:
        for size in args.sizes:
            for kind in args.kinds:
                rows += run_case(args, bits, size, kind)
    if args.json:
        old = []
        if os.path.isfile(args.json):
            with open(args.json, encoding="utf-8") as handle:
                old = json.load(handle)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(old + rows, handle, indent=1)
    identical = all(r["identical"] for r in rows)
    print(f"\nidentical results across methods: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())

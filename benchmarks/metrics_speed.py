"""Speed and memory of the retrieval metrics at NUS-WIDE scale.

Times, in one run and on the same data,

(a) the per-query loop the field's reference scripts use (DeepHash-pytorch
    ``CalcTopMap``: label dot product, Hamming distance by a matrix product,
    ``np.argsort``, AP over the top 5000), fed as DeepHash-pytorch feeds it
    (float32 codes, int64 labels) with NumPy's default ``argsort``; once
    more with ``kind="stable"``, which breaks ties by database index as ours
    does, for the value check; and (a') with float32 labels, the faster
    variant of ports that load labels as floats;
(b) ``keras_dhsps.metrics.mean_average_precision(k=5000)``, with the
    default number of threads and with one;
(c) ``keras_dhsps.metrics.retrieval_report`` (mAP@all and @5000, NDCG,
    ACG, WAP @100, precision/recall at radius 2, all three curves), the
    same two ways;

checks that (b) equals (a)-stable, and prints the speed-up ratios (wall
time for the threaded runs, CPU time for the one-thread runs) and the peak
memory of (b) and (c) (``tracemalloc``, which sees every NumPy buffer,
measured in a separate untimed run) and the process's peak RSS.

Cases:

* ``nus-wide-random``: 2,100 queries x 193,734 database items, 48 bits, 21
  labels; random codes and random multi-hot labels (each label with
  probability 0.1, at least one per image, as NUS-WIDE-21 images have).
* ``voc2012-labels``: random 48-bit codes with the real VOC2012 label
  matrices of DeepHash-pytorch's split (1,000 queries x 6,540 items, 20
  labels), shipped in ``keras_dhsps/data/peer_files/voc2012``.

Usage::

    python benchmarks/metrics_speed.py                 # both cases
    python benchmarks/metrics_speed.py --case voc2012-labels
    python benchmarks/metrics_speed.py --json out.json
    python benchmarks/metrics_speed.py --threads 4   # (b), (c) on 4 threads
    python benchmarks/metrics_speed.py --chunk-sweep 17 18 19 20 21
    python benchmarks/metrics_speed.py --baseline REV  # old vs new

``--baseline REV`` times, instead of the comparison with the reference
loop, (b) and (c) of this tree against the same functions of git revision
``REV`` (extracted with ``git archive`` into a temporary directory and
imported beside this tree's package), alternating old and new in each
repeat, and prints the old/new ratios (above 1: the new code is faster).

Wall-clock time depends on what else the machine runs; CPU time of this
process (``time.process_time``) is printed beside it and is the steadier
figure on a shared machine.
"""

from __future__ import annotations

import os

# The reference loop's matrix-vector products run in OpenBLAS, whose worker
# threads slow it down by an order of magnitude when the machine has other
# work; one thread is its best steady speed (ours uses no BLAS on the hot
# path). Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from keras_dhsps.data.peers import peer_labels  # noqa: E402
from keras_dhsps.metrics import mean_average_precision  # noqa: E402
from keras_dhsps.metrics import retrieval_report  # noqa: E402
from keras_dhsps.metrics._inputs import default_num_threads  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOP_K = 5000
NUM_BITS = 48


# --------------------------------------------------------------------------
# (a) The reference loop, as DeepHash-pytorch's utils/tools.py writes it.
# --------------------------------------------------------------------------
def calc_hamming_dist(b1, b2):
    q = b2.shape[1]
    return 0.5 * (q - np.dot(b1, b2.transpose()))


def calc_top_map(r_b, q_b, retrieval_l, query_l, topk, sort_kind=None):
    """CalcTopMap: AP over the top-k hits, empty queries count 0."""
    num_query = query_l.shape[0]
    topkmap = 0.0
    for i in range(num_query):
        gnd = (np.dot(query_l[i, :], retrieval_l.transpose()) > 0).astype(
            np.float32
        )
        hamm = calc_hamming_dist(q_b[i, :], r_b)
        if sort_kind is None:
            ind = np.argsort(hamm)
        else:
            ind = np.argsort(hamm, kind=sort_kind)
        gnd = gnd[ind]
        tgnd = gnd[0:topk]
        tsum = np.sum(tgnd).astype(int)
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap = topkmap + np.mean(count / tindex)
    return topkmap / num_query


# --------------------------------------------------------------------------
# Data.
# --------------------------------------------------------------------------
def random_labels(rng, num, num_labels, density):
    labels = (rng.random((num, num_labels)) < density).astype(np.uint8)
    empty = np.flatnonzero(labels.sum(axis=1) == 0)
    labels[empty, rng.integers(0, num_labels, size=empty.size)] = 1
    return labels


def make_case(name: str, seed: int):
    rng = np.random.default_rng(seed)
    if name == "nus-wide-random":
        num_q, num_db, num_labels = 2100, 193734, 21
        q_labels = random_labels(rng, num_q, num_labels, 0.1)
        db_labels = random_labels(rng, num_db, num_labels, 0.1)
    elif name == "voc2012-labels":
        q_labels = peer_labels("voc2012", "test")
        db_labels = peer_labels("voc2012", "database")
        num_q, num_db = len(q_labels), len(db_labels)
    else:
        raise SystemExit(f"unknown case {name!r}")
    q_codes = rng.standard_normal((num_q, NUM_BITS)).astype(np.float32)
    db_codes = rng.standard_normal((num_db, NUM_BITS)).astype(np.float32)
    return q_codes, q_labels, db_codes, db_labels


# --------------------------------------------------------------------------
# Measurement.
# --------------------------------------------------------------------------
def timed(fn, repeat):
    """(value, best wall s, best CPU s) over `repeat` runs."""
    walls, cpus, value = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return value, min(walls), min(cpus)


def peak_mib(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


# Runs of the reference loop: the best of three where it takes a second, one
# run at NUS-WIDE scale (about 20 s a run).
REFERENCE_REPEAT = {"nus-wide-random": 1, "voc2012-labels": 3}


def run_case(name, seed, repeat, num_threads):
    q_codes, q_labels, db_codes, db_labels = make_case(name, seed)
    args = (q_codes, q_labels, db_codes, db_labels)
    # As DeepHash-pytorch feeds CalcTopMap: float32 +-1 codes
    # (torch.sign(...).numpy()) and int64 labels (its ImageList builds them
    # with np.array([int(la) ...]), and the DataLoader keeps int64), so the
    # label dot product is an integer one, without BLAS. Ports that keep
    # labels as float32 (from .mat files) run the faster variant (a').
    q_b = np.where(q_codes >= 0, 1.0, -1.0).astype(np.float32)
    r_b = np.where(db_codes >= 0, 1.0, -1.0).astype(np.float32)
    q_l, r_l = q_labels.astype(np.int64), db_labels.astype(np.int64)
    q_f, r_f = q_labels.astype(np.float32), db_labels.astype(np.float32)
    ref_repeat = REFERENCE_REPEAT[name]

    ref = timed(lambda: calc_top_map(r_b, q_b, r_l, q_l, TOP_K), ref_repeat)
    ref_f32 = timed(lambda: calc_top_map(r_b, q_b, r_f, q_f, TOP_K), ref_repeat)
    stable = timed(lambda: calc_top_map(r_b, q_b, r_l, q_l, TOP_K, "stable"), 1)

    def ours(threads):
        return mean_average_precision(*args, k=TOP_K, num_threads=threads)

    def report(threads):
        return retrieval_report(
            *args, map_at=("all", TOP_K), num_threads=threads
        )

    ours_default = timed(lambda: ours(num_threads), repeat)
    ours_single = timed(lambda: ours(1), repeat)
    report_default = timed(lambda: report(num_threads), repeat)
    report_single = timed(lambda: report(1), repeat)
    ours_peak = peak_mib(lambda: ours(num_threads))
    report_peak = peak_mib(lambda: report(num_threads))
    seconds = {
        "a_reference_wall": ref[1],
        "a_reference_cpu": ref[2],
        "a_reference_float32_labels_wall": ref_f32[1],
        "a_reference_float32_labels_cpu": ref_f32[2],
        "a_reference_stable_wall": stable[1],
        "a_reference_stable_cpu": stable[2],
        "b_map@5000_wall": ours_default[1],
        "b_map@5000_cpu": ours_default[2],
        "b_map@5000_1_thread_wall": ours_single[1],
        "b_map@5000_1_thread_cpu": ours_single[2],
        "c_report_wall": report_default[1],
        "c_report_cpu": report_default[2],
        "c_report_1_thread_wall": report_single[1],
        "c_report_1_thread_cpu": report_single[2],
    }
    speedup = {
        "b_vs_a_wall": ref[1] / ours_default[1],
        "b_1_thread_vs_a_wall": ref[1] / ours_single[1],
        "b_1_thread_vs_a_cpu": ref[2] / ours_single[2],
        "b_vs_a_float32_labels_wall": ref_f32[1] / ours_default[1],
        "b_1_thread_vs_a_float32_labels_cpu": ref_f32[2] / ours_single[2],
        "c_vs_a_wall": ref[1] / report_default[1],
        "c_1_thread_vs_a_cpu": ref[2] / report_single[2],
    }
    return {
        "case": name,
        "queries": len(q_codes),
        "database": len(db_codes),
        "bits": NUM_BITS,
        "labels": int(q_labels.shape[1]),
        "num_threads": num_threads,
        "reference_map@5000": ref[0],
        "reference_float32_labels_map@5000": ref_f32[0],
        "reference_stable_map@5000": stable[0],
        "ours_map@5000": ours_default[0],
        "ours_1_thread_map@5000": ours_single[0],
        "abs_diff_vs_stable": max(
            abs(ours_default[0] - stable[0]), abs(ours_single[0] - stable[0])
        ),
        "report_map@5000": report_default[0]["metrics"]["map@5000"],
        "report_map@all": report_default[0]["metrics"]["map@all"],
        "seconds": seconds,
        "speedup": speedup,
        "peak_mib": {"b_map@5000": ours_peak, "c_report": report_peak},
    }


def print_result(r):
    s, x, m = r["seconds"], r["speedup"], r["peak_mib"]
    threads = r["num_threads"]
    print(
        f"\n== {r['case']}: {r['queries']:,} queries x {r['database']:,} "
        f"items, {r['bits']} bits, {r['labels']} labels"
    )
    rows = [
        (
            "(a)  reference loop, int64 labels",
            "a_reference",
            r["reference_map@5000"],
        ),
        (
            "(a') reference loop, float32 labels",
            "a_reference_float32_labels",
            r["reference_float32_labels_map@5000"],
        ),
        (
            "(a)  reference loop, stable argsort",
            "a_reference_stable",
            r["reference_stable_map@5000"],
        ),
        (
            f"(b)  mean_average_precision, {threads} threads",
            "b_map@5000",
            r["ours_map@5000"],
        ),
        (
            "(b)  mean_average_precision, 1 thread",
            "b_map@5000_1_thread",
            r["ours_1_thread_map@5000"],
        ),
        (f"(c)  retrieval_report, {threads} threads", "c_report", None),
        ("(c)  retrieval_report, 1 thread", "c_report_1_thread", None),
    ]
    for label, key, value in rows:
        line = (
            f"  {label:44s} {s[key + '_wall']:8.3f} s wall "
            f"{s[key + '_cpu']:8.3f} s CPU"
        )
        if value is not None:
            line += f"   mAP@5000 = {value:.6f}"
        print(line)
    print(f"  |b - a stable| = {r['abs_diff_vs_stable']:.1e}")
    print(
        f"  (a)/(b): {x['b_vs_a_wall']:.1f}x wall with {threads} threads, "
        f"{x['b_1_thread_vs_a_cpu']:.1f}x CPU with 1 thread"
    )
    print(
        f"  (a')/(b): {x['b_vs_a_float32_labels_wall']:.1f}x wall with "
        f"{threads} threads, {x['b_1_thread_vs_a_float32_labels_cpu']:.1f}x "
        "CPU with 1 thread"
    )
    print(
        f"  (a)/(c): {x['c_vs_a_wall']:.1f}x wall with {threads} threads, "
        f"{x['c_1_thread_vs_a_cpu']:.1f}x CPU with 1 thread"
    )
    print(
        f"  peak traced memory ({threads} threads): (b) "
        f"{m['b_map@5000']:.0f} MiB, (c) {m['c_report']:.0f} MiB"
    )


def chunk_sweep(name, seed, repeat, pair_budgets):
    """(b) and (c) on one thread for chunks of about ``2**p`` query-item
    pairs: best wall time and minor page faults per call."""
    q_codes, q_labels, db_codes, db_labels = make_case(name, seed)
    args = (q_codes, q_labels, db_codes, db_labels)
    print(f"\n== chunk sizes, {name}, one thread")
    rows = []
    for power in pair_budgets:
        chunk = max(1, (1 << power) // len(db_codes))
        for label, fn in (
            (
                "(b) mAP@5000",
                functools.partial(
                    mean_average_precision,
                    *args,
                    k=TOP_K,
                    num_threads=1,
                    chunk_size=chunk,
                ),
            ),
            (
                "(c) report",
                functools.partial(
                    retrieval_report,
                    *args,
                    map_at=("all", TOP_K),
                    num_threads=1,
                    chunk_size=chunk,
                ),
            ),
        ):
            fn()  # warm up the allocator as a long-running process would
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            _, wall, _ = timed(fn, repeat)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            rows.append(
                {
                    "case": name,
                    "pairs_log2": power,
                    "chunk_size": chunk,
                    "what": label,
                    "best_wall_s": wall,
                    "minor_faults_per_call": faults / repeat,
                }
            )
            print(
                f"  2**{power} pairs ({chunk:4d} queries) {label:13s} "
                f"{wall:8.3f} s  {faults / repeat:8.0f} page faults/call"
            )
    return rows


def _package_modules() -> dict:
    return {
        name: module
        for name, module in sys.modules.items()
        if name == "keras_dhsps" or name.startswith("keras_dhsps.")
    }


def load_revision(revision: str, directory: pathlib.Path):
    """``(mean_average_precision, retrieval_report)`` of ``keras_dhsps`` as
    of git ``revision``, imported from ``directory`` beside this tree's
    package (module-level imports bind each copy to its own modules)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "keras_dhsps"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    import keras

    current = _package_modules()
    # Importing the copy registers its Keras classes under the same names;
    # the registry is put back so this tree's classes still deserialize.
    registry = keras.saving.get_custom_objects()
    registered = dict(registry)
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, str(directory))
    try:
        old = importlib.import_module("keras_dhsps.metrics")
        origin = pathlib.Path(old.__file__).resolve()
        if not origin.is_relative_to(directory.resolve()):
            raise RuntimeError(f"imported {origin}, not the revision")
        return old.mean_average_precision, old.retrieval_report
    finally:
        sys.path.remove(str(directory))
        for name in _package_modules():
            del sys.modules[name]
        sys.modules.update(current)
        registry.clear()
        registry.update(registered)


def compare_revisions(name, seed, repeat, num_threads, revision):
    """(b) and (c) of git ``revision`` (old) and of this tree (new), on the
    same data, alternating old and new in each repeat; best wall and CPU
    time of each, the old/new ratios, and a check that the numbers agree."""
    args = make_case(name, seed)
    with tempfile.TemporaryDirectory() as directory:
        old_map, old_report = load_revision(revision, pathlib.Path(directory))
        versions = {
            "old": (old_map, old_report),
            "new": (mean_average_precision, retrieval_report),
        }
        runs = {}
        for threads in (num_threads, 1):
            for version, (map_fn, report_fn) in versions.items():
                runs[("b", threads, version)] = functools.partial(
                    map_fn, *args, k=TOP_K, num_threads=threads
                )
                runs[("c", threads, version)] = functools.partial(
                    report_fn, *args, map_at=("all", TOP_K), num_threads=threads
                )
        best = {key: (float("inf"), float("inf"), None) for key in runs}
        for _ in range(repeat):
            for key, fn in runs.items():
                value, wall, cpu = timed(fn, 1)
                best[key] = (
                    min(best[key][0], wall),
                    min(best[key][1], cpu),
                    value,
                )
    print(f"\n== {name}: {revision} (old) vs this tree (new), best of {repeat}")
    rows = []
    for what, threads in [
        ("b", num_threads),
        ("b", 1),
        ("c", num_threads),
        ("c", 1),
    ]:
        old, new = best[(what, threads, "old")], best[(what, threads, "new")]
        same = old[2] == new[2] if what == "c" else abs(old[2] - new[2]) < 1e-12
        rows.append(
            {
                "case": name,
                "what": what,
                "threads": threads,
                "old_wall_s": old[0],
                "new_wall_s": new[0],
                "old_cpu_s": old[1],
                "new_cpu_s": new[1],
                "wall_ratio": old[0] / new[0],
                "cpu_ratio": old[1] / new[1],
                "same_numbers": bool(same),
            }
        )
        label = "(b) mAP@5000" if what == "b" else "(c) report"
        print(
            f"  {label:13s} {threads} thread(s): old {old[0]:7.3f} s, new "
            f"{new[0]:7.3f} s wall (old/new {old[0] / new[0]:.2f}x); CPU "
            f"old/new {old[1] / new[1]:.2f}x; same numbers: {same}"
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--case",
        action="append",
        choices=["nus-wide-random", "voc2012-labels"],
        help="case to run (repeatable); default: both",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of (b) and (c); the best is kept",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=default_num_threads(),
        help="num_threads for (b) and (c); default: the library's default "
        "(one per available CPU, at most 8)",
    )
    parser.add_argument(
        "--chunk-sweep",
        type=int,
        nargs="+",
        metavar="P",
        help="instead of the comparison, time (b) and (c) on one thread "
        "with chunks of about 2**P query-item pairs (e.g. 17 18 19 20 21)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="instead of the comparison, time (b) and (c) of git revision "
        "REV against this tree (old/new ratios)",
    )
    parser.add_argument(
        "--json", type=pathlib.Path, help="also write the results to this file"
    )
    args = parser.parse_args(argv)
    cases = args.case or ["nus-wide-random", "voc2012-labels"]
    print(
        f"numpy {np.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    results = []
    if args.chunk_sweep:
        for name in cases:
            results += chunk_sweep(
                name, args.seed, args.repeat, args.chunk_sweep
            )
        if args.json:
            args.json.write_text(json.dumps({"chunk_sweep": results}, indent=2))
        return 0
    if args.baseline:
        for name in cases:
            results += compare_revisions(
                name, args.seed, args.repeat, args.threads, args.baseline
            )
        if args.json:
            args.json.write_text(json.dumps({"baseline": results}, indent=2))
        return 0 if all(r["same_numbers"] for r in results) else 1
    for name in cases:
        result = run_case(name, args.seed, args.repeat, args.threads)
        print_result(result)
        results.append(result)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\npeak RSS of this process (data, reference and ours): {rss:.0f} MiB"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "peak_rss_mib": rss,
                    "numpy": np.__version__,
                },
                indent=2,
            )
        )
    ok = all(r["abs_diff_vs_stable"] < 1e-9 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Speed and memory of the retrieval metrics at NUS-WIDE scale.

Times, in one run and on the same data,

(a) the per-query loop the field's reference scripts use (DeepHash-pytorch
    ``CalcTopMap``: label dot product, Hamming distance by a matrix product,
    ``np.argsort``, AP over the top 5000), once with NumPy's default
    ``argsort`` as those scripts write it and once with ``kind="stable"`` so
    that ties are broken by database index as ours are;
(b) ``keras_dhsps.metrics.mean_average_precision(k=5000)``;
(c) ``keras_dhsps.metrics.retrieval_report`` (mAP@all and @5000, NDCG,
    ACG, WAP @100, precision/recall at radius 2, all three curves);

checks that (b) equals (a)-stable, and prints the speed-up ratios and the
peak memory of (b) and (c) (``tracemalloc``, which sees every NumPy buffer,
measured in a separate untimed run) and the process's peak RSS.

Cases:

* ``nus-wide-random``: 2,100 queries x 193,734 database items, 48 bits, 21
  labels; random codes and random multi-hot labels (each label with
  probability 0.1, at least one per image, as NUS-WIDE-21 images have).
* ``voc2012-labels``: random 48-bit codes with the real VOC2012 label
  matrices of DeepHash-pytorch's split (1,000 queries x 6,540 items, 20
  labels) from ``../shared/peer_splits/voc2012``.

Usage::

    python benchmarks/metrics_speed.py                 # both cases
    python benchmarks/metrics_speed.py --case voc2012-labels
    python benchmarks/metrics_speed.py --json out.json

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
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from keras_dhsps.metrics import mean_average_precision  # noqa: E402
from keras_dhsps.metrics import retrieval_report  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER_SPLITS = ROOT.parent / "shared" / "peer_splits"
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


def read_list_labels(path: pathlib.Path) -> np.ndarray:
    rows = [line.split()[1:] for line in path.read_text().splitlines() if line]
    return np.asarray(rows, dtype=np.uint8)


def make_case(name: str, seed: int):
    rng = np.random.default_rng(seed)
    if name == "nus-wide-random":
        num_q, num_db, num_labels = 2100, 193734, 21
        q_labels = random_labels(rng, num_q, num_labels, 0.1)
        db_labels = random_labels(rng, num_db, num_labels, 0.1)
    elif name == "voc2012-labels":
        q_labels = read_list_labels(PEER_SPLITS / "voc2012" / "test.txt")
        db_labels = read_list_labels(PEER_SPLITS / "voc2012" / "database.txt")
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


def run_case(name, seed, repeat):
    q_codes, q_labels, db_codes, db_labels = make_case(name, seed)
    args = (q_codes, q_labels, db_codes, db_labels)
    # The reference scripts work on float +-1 codes and float labels.
    q_b = np.where(q_codes >= 0, 1.0, -1.0).astype(np.float32)
    r_b = np.where(db_codes >= 0, 1.0, -1.0).astype(np.float32)
    q_l, r_l = q_labels.astype(np.float32), db_labels.astype(np.float32)

    ref_value, ref_wall, ref_cpu = timed(
        lambda: calc_top_map(r_b, q_b, r_l, q_l, TOP_K), 1
    )
    stable_value, stable_wall, stable_cpu = timed(
        lambda: calc_top_map(r_b, q_b, r_l, q_l, TOP_K, "stable"), 1
    )
    ours_value, ours_wall, ours_cpu = timed(
        lambda: mean_average_precision(*args, k=TOP_K), repeat
    )

    def report():
        return retrieval_report(*args, map_at=("all", TOP_K))

    report_value, report_wall, report_cpu = timed(report, repeat)
    ours_peak = peak_mib(lambda: mean_average_precision(*args, k=TOP_K))
    report_peak = peak_mib(report)
    return {
        "case": name,
        "queries": len(q_codes),
        "database": len(db_codes),
        "bits": NUM_BITS,
        "labels": int(q_labels.shape[1]),
        "reference_map@5000": ref_value,
        "reference_stable_map@5000": stable_value,
        "ours_map@5000": ours_value,
        "abs_diff_vs_stable": abs(ours_value - stable_value),
        "report_map@5000": report_value["metrics"]["map@5000"],
        "report_map@all": report_value["metrics"]["map@all"],
        "seconds": {
            "a_reference_wall": ref_wall,
            "a_reference_cpu": ref_cpu,
            "a_reference_stable_wall": stable_wall,
            "a_reference_stable_cpu": stable_cpu,
            "b_map@5000_wall": ours_wall,
            "b_map@5000_cpu": ours_cpu,
            "c_report_wall": report_wall,
            "c_report_cpu": report_cpu,
        },
        "speedup": {
            "b_vs_a_wall": ref_wall / ours_wall,
            "b_vs_a_cpu": ref_cpu / ours_cpu,
            "c_vs_a_wall": ref_wall / report_wall,
            "c_vs_a_cpu": ref_cpu / report_cpu,
        },
        "peak_mib": {"b_map@5000": ours_peak, "c_report": report_peak},
    }


def print_result(r):
    s, x, m = r["seconds"], r["speedup"], r["peak_mib"]
    print(
        f"\n== {r['case']}: {r['queries']:,} queries x {r['database']:,} "
        f"items, {r['bits']} bits, {r['labels']} labels"
    )
    print(
        f"  (a) reference loop, np.argsort      {s['a_reference_wall']:8.2f} s"
        f" wall {s['a_reference_cpu']:8.2f} s CPU   mAP@5000 = "
        f"{r['reference_map@5000']:.6f}"
    )
    print(
        f"  (a) reference loop, stable argsort  "
        f"{s['a_reference_stable_wall']:8.2f} s wall "
        f"{s['a_reference_stable_cpu']:8.2f} s CPU   mAP@5000 = "
        f"{r['reference_stable_map@5000']:.6f}"
    )
    print(
        f"  (b) mean_average_precision(k=5000)  {s['b_map@5000_wall']:8.2f} s"
        f" wall {s['b_map@5000_cpu']:8.2f} s CPU   mAP@5000 = "
        f"{r['ours_map@5000']:.6f}  (|b - a stable| = "
        f"{r['abs_diff_vs_stable']:.1e})"
    )
    print(
        f"  (c) retrieval_report                {s['c_report_wall']:8.2f} s"
        f" wall {s['c_report_cpu']:8.2f} s CPU"
    )
    print(
        f"  speed-up (a)/(b): {x['b_vs_a_wall']:.1f}x wall, "
        f"{x['b_vs_a_cpu']:.1f}x CPU;  (a)/(c): {x['c_vs_a_wall']:.1f}x "
        f"wall, {x['c_vs_a_cpu']:.1f}x CPU"
    )
    print(
        f"  peak traced memory: (b) {m['b_map@5000']:.0f} MiB, "
        f"(c) {m['c_report']:.0f} MiB"
    )


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
        "--json", type=pathlib.Path, help="also write the results to this file"
    )
    args = parser.parse_args(argv)
    cases = args.case or ["nus-wide-random", "voc2012-labels"]
    print(
        f"numpy {np.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    results = []
    for name in cases:
        result = run_case(name, args.seed, args.repeat)
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

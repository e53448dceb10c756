"""Chunks on a thread pool: the same numbers for every thread count, errors
reach the caller, threads really run, and option checks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from keras_dhsps import metrics
from keras_dhsps.metrics import _engine
from keras_dhsps.metrics._inputs import default_chunk_size
from keras_dhsps.metrics._inputs import default_num_threads
from keras_dhsps.metrics._inputs import prepare
from keras_dhsps.utils.codes import InvalidInputError
from keras_dhsps.utils.codes import word_distances


def random_arrays(seed=0, num_queries=37, num_items=300, num_bits=24):
    # 70 labels: two label words, so binary relevance ORs across words.
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((num_queries, num_bits)).astype(np.float32),
        (rng.random((num_queries, 70)) < 0.05).astype(np.uint8),
        rng.standard_normal((num_items, num_bits)).astype(np.float32),
        (rng.random((num_items, 70)) < 0.05).astype(np.uint8),
    )


@pytest.mark.parametrize("num_threads", [2, 3, 8])
def test_report_is_identical_for_every_thread_count(num_threads):
    data = random_arrays()
    kwargs = dict(
        map_at=("all", 50), tie_aware=True, chunk_size=4, pr_rank_points=20
    )
    serial = metrics.retrieval_report(*data, num_threads=1, **kwargs)
    parallel = metrics.retrieval_report(
        *data, num_threads=num_threads, **kwargs
    )
    # Exact equality: every query is computed by one thread, and the means
    # over queries are taken after all chunks, in query order.
    assert parallel == serial


@pytest.mark.parametrize("k", ["all", 250, 20])  # full sort and top-k paths
def test_map_is_identical_for_every_thread_count(k):
    data = random_arrays(seed=1)
    values = {
        n: metrics.mean_average_precision(
            *data, k=k, chunk_size=3, num_threads=n
        )
        for n in (1, 2, 5)
    }
    assert values[2] == values[1] and values[5] == values[1]


def test_binary_relevance_path_equals_the_graded_path():
    # mean_average_precision alone only needs "shares >= 1 label" (bool);
    # inside a report with NDCG the same AP comes from shared-label counts.
    data = random_arrays(seed=2)
    for k in ("all", 100, 10):
        alone = metrics.mean_average_precision(*data, k=k)
        report = metrics.retrieval_report(*data, map_at=(k,), ndcg_at=(10,))
        label = "all" if k == "all" else k
        assert report["metrics"][f"map@{label}"] == pytest.approx(
            alone, abs=1e-15
        )


def test_chunks_run_on_several_threads(monkeypatch):
    names = set()
    lock = threading.Lock()

    def recording(*args, **kwargs):
        with lock:
            names.add(threading.current_thread().name)
        return word_distances(*args, **kwargs)

    monkeypatch.setattr(_engine, "word_distances", recording)
    metrics.mean_average_precision(
        *random_arrays(), k=50, chunk_size=2, num_threads=3
    )
    # The calling thread takes one share of the chunks, two workers the rest.
    assert names == {
        threading.main_thread().name,
        "keras_dhsps-metrics-1",
        "keras_dhsps-metrics-2",
    }


def test_a_worker_error_reaches_the_caller(monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return word_distances(*args, **kwargs)

    monkeypatch.setattr(_engine, "word_distances", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        metrics.mean_average_precision(
            *random_arrays(), k=50, chunk_size=1, num_threads=2
        )
    # 37 chunks of one query; after the failure each thread finishes at
    # most the chunk it is on, so far fewer than 37 chunks start.
    assert len(calls) <= 5


# Every public function that runs the engine, with its required options.
EVERY_ENGINE_FUNCTION = [
    (metrics.mean_average_precision, {}),
    (metrics.ndcg_at_k, {"k": 5}),
    (metrics.acg_at_k, {"k": 5}),
    (metrics.wap_at_k, {"k": 5}),
    (metrics.precision_at_k, {"k": 5}),
    (metrics.precision_recall_at_radius, {}),
    (metrics.pr_curve_by_radius, {}),
    (metrics.pr_curve_by_rank, {}),
    (metrics.precision_at_n_curve, {}),
    (metrics.retrieval_report, {}),
]


@pytest.mark.parametrize("option", ["num_threads", "chunk_size"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_every_function_validates_threads_and_chunks(option, bad):
    data = random_arrays(num_queries=3, num_items=20)
    for function, required in EVERY_ENGINE_FUNCTION:
        function(*data, **required, **{option: 2})  # a good value works
        with pytest.raises(InvalidInputError, match=option):
            function(*data, **required, **{option: bad})


def test_default_chunk_size_balances_the_threads():
    # At most 2**18 pairs a chunk: 2**18 // 6540 = 40 queries, so 1,000
    # queries need ceil(1000 / 40) = 25 chunks, made equal: 40 each. With 2
    # threads the count rounds up to 26 chunks, of ceil(1000 / 26) = 39;
    # with 3 threads to 27, of ceil(1000 / 27) = 38.
    assert default_chunk_size(1000, 6540, 1) == 40
    assert default_chunk_size(1000, 6540, 2) == 39
    assert default_chunk_size(1000, 6540, 3) == 38
    # 100 queries x 2,000 items for 4 threads: one chunk would hold them
    # all (2**18 // 2000 = 131), 4 are made, of ceil(100 / 4) = 25 queries.
    assert default_chunk_size(100, 2000, 4) == 25
    # 10 x 100 pairs are too few to share (under 2**15 a thread): 1 chunk.
    assert default_chunk_size(10, 100, 4) == 10
    # 40 x 2,000 = 80,000 pairs: two threads' worth (80000 // 2**15 = 2),
    # so 2 chunks of 20 even when 8 threads are offered.
    assert default_chunk_size(40, 2000, 8) == 20
    # Never below one query, even for a huge database.
    assert default_chunk_size(10, 10**8, 1) == 1
    # NUS-WIDE scale: 2**18 // 193734 = 1 query a chunk.
    assert default_chunk_size(2100, 193_734, 2) == 1


def test_default_num_threads_is_bounded():
    assert 1 <= default_num_threads() <= 8


def test_more_threads_than_chunks_is_fine():
    data = random_arrays(num_queries=3)
    inputs = prepare(*data)
    plan = _engine.Plan(cutoffs={"map": (300,)})
    one = _engine.compute(inputs, plan, chunk_size=10, num_threads=1)
    many = _engine.compute(inputs, plan, chunk_size=10, num_threads=16)
    key = _engine.StatKey("map", 300)
    np.testing.assert_array_equal(many[key], one[key])

"""Memory is bounded by the query chunk, not by queries x database."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from keras_dhsps import metrics


def arrays(num_queries, num_items, num_bits=48, num_labels=21, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((num_queries, num_bits)).astype(np.float32),
        (rng.random((num_queries, num_labels)) < 0.1).astype(np.uint8),
        rng.standard_normal((num_items, num_bits)).astype(np.float32),
        (rng.random((num_items, num_labels)) < 0.1).astype(np.uint8),
    )


def traced_peak(fn) -> int:
    """Peak bytes allocated while fn runs (NumPy reports its buffers)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_number_of_queries():
    num_items, chunk = 8_000, 16
    small = arrays(32, num_items)
    large = arrays(256, num_items)

    def run(a, num_threads=1):
        return lambda: metrics.retrieval_report(
            *a,
            map_at=("all", 1000),
            tie_aware=True,
            chunk_size=chunk,
            num_threads=num_threads,
        )

    peak_small, peak_large = traced_peak(run(small)), traced_peak(run(large))
    # 8x the queries: all (Q, N) work happens in chunks of 16 queries, so
    # only the O(Q) per-query outputs grow (a few KB per query).
    assert peak_large < peak_small + 256 * 4096
    # And one chunk costs well under 100 bytes per query-item pair.
    assert peak_small < 100 * chunk * num_items + 64 * num_items
    # Each thread holds one chunk's buffers: three threads, three chunks'
    # worth at most, however many queries.
    peak_threads = traced_peak(run(large, num_threads=3))
    assert peak_threads < 3 * peak_small + 256 * 4096


@pytest.mark.slow
def test_nus_wide_scale_report_fits_in_2_gib():
    # 2,100 queries x 193,734 items, 48 bits, 21 labels (NUS-WIDE-21).
    data = arrays(2100, 193_734)
    peak = traced_peak(
        lambda: metrics.retrieval_report(
            *data, map_at=("all", 5000), tie_aware=True
        )
    )
    assert peak < 2 * 2**30

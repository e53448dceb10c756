"""The staged engine: what each metric declares decides what runs, and a
metric added to the registry flows through the engine and the reduction
without touching either."""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps.metrics import _engine
from keras_dhsps.metrics import _specs
from keras_dhsps.metrics._inputs import prepare
from keras_dhsps.metrics._summaries import reduce_metric


def arrays(seed=0, num_queries=7, num_items=40, num_bits=6):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((num_queries, num_bits)),
        (rng.random((num_queries, 5)) < 0.3).astype(np.uint8),
        rng.standard_normal((num_items, num_bits)),
        (rng.random((num_items, 5)) < 0.3).astype(np.uint8),
    )


def test_needs_follow_the_declarations():
    n = 40
    # mAP alone: binary relevance, no totals, a top-k selection (5 <= N/4).
    needs = _engine.Needs.of(_engine.Plan(cutoffs={"map": (5,)}), n)
    assert needs.binary and not needs.total and not needs.full_sort
    assert not needs.full_relevance and needs.k_max == 5
    # "all_relevant" AP needs the database's relevant items.
    plan = _engine.Plan(cutoffs={"map": (5,)}, denominator="all_relevant")
    assert _engine.Needs.of(plan, n).total
    # NDCG reads shared labels and the ideal order (value counts).
    needs = _engine.Needs.of(_engine.Plan(cutoffs={"ndcg": (5,)}), n)
    assert not needs.binary and needs.value_counts
    # Tie-aware AP at N: groups from the full sort, no histogram.
    needs = _engine.Needs.of(_engine.Plan(tie_cutoffs={"map": (n,)}), n)
    assert needs.groups and needs.groups_from_sort is False  # k_max = 0
    plan = _engine.Plan(cutoffs={"map": (n,)}, tie_cutoffs={"map": (n,)})
    needs = _engine.Needs.of(plan, n)
    assert needs.full_sort and needs.groups_from_sort
    # Tie-aware NDCG: one (distance, value) histogram.
    needs = _engine.Needs.of(_engine.Plan(tie_cutoffs={"ndcg": (3,)}), n)
    assert needs.value_histogram and needs.k_max == 0


def test_plan_rejects_unknown_metrics():
    with pytest.raises(ValueError, match="nope"):
        _engine.Plan(cutoffs={"nope": (1,)})
    with pytest.raises(ValueError, match="acg"):
        _engine.Plan(tie_cutoffs={"acg": (1,)})


def test_a_metric_added_to_the_registry_runs_without_engine_changes(
    monkeypatch,
):
    # Reciprocal rank of the first relevant item within the top k, empty
    # when there is none: declared here only.
    def reciprocal_rank(chunk, ks):
        out = {}
        for k in ks:
            first = np.argmax(chunk.relevant[:, :k], axis=1)
            found = chunk.relevant[:, :k].any(axis=1)
            out[k] = np.where(found, 1.0 / (first + 1), 0.0), ~found
        return out

    spec = _specs.MetricSpec(
        name="mrr",
        graded=False,
        ranked=reciprocal_rank,
        empty_modes=_specs.EMPTY_QUERIES,
    )
    monkeypatch.setitem(_specs.METRICS, "mrr", spec)
    data = arrays()
    inputs = prepare(*data)
    stats = _engine.compute(
        inputs, _engine.Plan(cutoffs={"mrr": (10,)}), num_threads=2
    )
    # Oracle: the stable ranking, query by query.
    q_codes, q_labels, db_codes, db_labels = data
    expected = []
    for q in range(len(q_codes)):
        dist = ((q_codes[q] >= 0) != (db_codes >= 0)).sum(axis=1)
        order = np.argsort(dist, kind="stable")[:10]
        relevant = (db_labels[order] @ q_labels[q]) > 0
        expected.append(1 / (np.argmax(relevant) + 1) if relevant.any() else 0)
    np.testing.assert_allclose(stats[_engine.StatKey("mrr", 10)], expected)
    assert reduce_metric(stats, "mrr", 10, "stable", "zero") == pytest.approx(
        np.mean(expected)
    )

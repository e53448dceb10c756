"""retrieval_examples: the top results of a few queries, for a figure."""

import numpy as np
import pytest

from keras_dhsps.retrieval.codedb import CodeDatabase
from keras_dhsps.retrieval.examples import retrieval_examples
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError


def database(codes, labels, prefix):
    codes = np.asarray(codes)
    return CodeDatabase(
        packed=pack_codes(codes),
        bits=codes.shape[1],
        paths=tuple(f"{prefix}{i}" for i in range(len(codes))),
        labels=None if labels is None else np.asarray(labels, np.uint8),
        relaxed=None,
        metadata={},
    )


ITEMS = [[1, 1, 1, 1], [-1, 1, 1, 1], [1, -1, 1, 1], [-1, -1, -1, -1]]


def test_retrieval_examples_relevance():
    queries = database([[1, 1, 1, 1]], [[1, 0]], "q")
    # d = 0, 1, 1 (tie: index order), 4; labels share, not, share, share.
    items = database(ITEMS, [[1, 1], [0, 1], [1, 0], [1, 0]], "d")
    (example,) = retrieval_examples(
        queries, items, num_queries=3, k=3, backend="numpy"
    )
    assert example["query"] == "q0"
    assert [
        (r["path"], r["distance"], r["relevant"]) for r in example["results"]
    ] == [("d0", 0, True), ("d1", 1, False), ("d2", 1, True)]


def test_a_seeded_choice_of_queries_in_order_without_labels():
    queries = database(ITEMS * 2, None, "q")
    items = database(ITEMS, None, "d")
    examples = retrieval_examples(
        queries, items, num_queries=3, k=10, seed=5, backend="numpy"
    )
    again = retrieval_examples(
        queries, items, num_queries=3, k=10, seed=5, backend="numpy"
    )
    assert examples == again
    chosen = [int(example["query"][1:]) for example in examples]
    assert chosen == sorted(chosen) and len(set(chosen)) == 3
    for example in examples:
        # k above the database size: every item once, nearest first.
        results = example["results"]
        assert sorted(r["path"] for r in results) == ["d0", "d1", "d2", "d3"]
        assert [r["distance"] for r in results] == sorted(
            r["distance"] for r in results
        )
        assert {r["relevant"] for r in results} == {None}


def test_mismatched_or_empty_databases_are_refused():
    items = database(ITEMS, None, "d")
    with pytest.raises(DHSPSError, match="query codes have 8 bits"):
        retrieval_examples(database([[1] * 8], None, "q"), items)
    empty = database(np.zeros((0, 4)), None, "q")
    with pytest.raises(DHSPSError, match="no query or database codes"):
        retrieval_examples(empty, items)

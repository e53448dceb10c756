"""The soft-similarity study: its config parts, its summary, a smoke run."""

import importlib.util
import json
import os

import pytest

from keras_dhsps.experiments.table_config import cell_config
from keras_dhsps.experiments.table_config import cell_key
from keras_dhsps.experiments.table_config import load_table_config
from tests.paths import REPO

ROOT = REPO
CONFIG = os.path.join(ROOT, "reproduce", "configs", "study_soft_similarity.py")
SCRIPT = os.path.join(ROOT, "reproduce", "study_soft_similarity.py")


def _script():
    spec = importlib.util.spec_from_file_location("study_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


study = _script()


@pytest.mark.parametrize(
    "part, dataset",
    [
        ("digits-mosaic", "digits-mosaic"),
        ("voc2012", "label-mosaic:voc2012"),
        ("mirflickr25k", "label-mosaic:mirflickr25k"),
        ("nuswide21", "label-mosaic:nuswide21"),
        ("coco", "label-mosaic:coco"),
    ],
)
def test_dataset_parts_compare_four_losses_at_12_and_48_bits(part, dataset):
    table = load_table_config(f"{CONFIG}:{part}")
    assert table.base.data.name == dataset
    assert [method.loss.name for method in table.methods] == [
        "idhn",
        "idhn_hard_only",
        "idhn_soft_only",
        "dpsh",
    ]
    assert table.bits == (12, 48) and table.seeds == (0, 1, 2)
    assert table.metrics == ("map@all", "ndcg@100", "acg@100", "wap@100")
    # Every method of a dataset gets the same budget.
    configs = [cell_config(table, method, 12, 0) for method in table.methods]
    assert len({config.train.epochs for config in configs}) == 1
    assert all(config.eval.tie_aware for config in configs)


def test_gamma_part_shares_the_default_cell_with_the_dataset_part():
    gamma = load_table_config(f"{CONFIG}:gamma")
    mirflickr = load_table_config(f"{CONFIG}:mirflickr25k")
    weights = [
        method.loss.params.get("soft_weight") for method in gamma.methods
    ]
    assert weights == [0.01, None, 1.0]  # None: the default γ = 0.1
    assert cell_key(gamma, gamma.methods[1], 48, 2) == cell_key(
        mirflickr, mirflickr.methods[0], 48, 2
    )
    assert cell_key(gamma, gamma.methods[0], 48, 2) != cell_key(
        mirflickr, mirflickr.methods[0], 48, 2
    )


def test_unknown_part_is_refused():
    with pytest.raises(ValueError, match="unknown arg 'imagenet'"):
        load_table_config(f"{CONFIG}:imagenet")


def test_budget_is_read_from_the_budgets_file(tmp_path):
    spec = importlib.util.spec_from_file_location("study_config", CONFIG)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    path = tmp_path / "budgets.json"
    assert config.budget("coco", str(path))[0] == config.DEFAULT_EPOCHS
    path.write_text(json.dumps({"budgets": {"coco": {"epochs": 20}}}))
    assert config.budget("coco", str(path)) == (20, "chosen on validation mAP")
    assert config.budget("voc2012", str(path))[0] == config.DEFAULT_EPOCHS


def test_choose_budget_stops_where_validation_map_stops_improving():
    # Best 0.603 at 30 epochs; 20 epochs (0.600) is within 0.005 of it and
    # is the first such checkpoint.
    curve = {10: 0.5, 20: 0.6, 30: 0.603, 40: 0.601}
    assert study.choose_budget(curve) == 20
    assert study.choose_budget({10: 0.7, 20: 0.5}) == 10


def test_difference_in_pooled_standard_deviations():
    # (0.6 − 0.5) / sqrt((0.1² + 0.1²) / 2) = 0.1 / 0.1 = 1.
    first, second = {"mean": 0.6, "std": 0.1}, {"mean": 0.5, "std": 0.1}
    assert study.difference_in_sd(first, second) == pytest.approx(1.0)
    # sqrt((0.3² + 0.1²) / 2) = sqrt(0.05); 0.1 / 0.2236 = 0.4472.
    wide = {"mean": 0.6, "std": 0.3}
    assert study.difference_in_sd(wide, second) == pytest.approx(0.44721, 1e-4)
    assert (
        study.difference_in_sd({"mean": 1, "std": 0}, second | {"std": 0})
        is None
    )


def test_summary_reports_idhn_minus_hard_only_per_dataset_and_bits():
    def row(method, bits, mean):
        return {
            "method": method,
            "bits": bits,
            "metrics": {"map@all": {"mean": mean, "std": 0.02}},
        }

    results = {
        "coco": {"rows": [row("IDHN", 12, 0.52), row("hard-only", 12, 0.5)]},
        "gamma": {"rows": [row("IDHN γ=1", 12, 0.1)]},
    }
    summary = study.summarize_study(results, {"coco": 0.34})
    (only,) = summary["rows"]
    assert (only["dataset"], only["bits"], only["soft_pairs"]) == (
        "coco",
        12,
        0.34,
    )
    diff = only["idhn_minus_hard_only"]["map@all"]
    assert diff["difference"] == pytest.approx(0.02)
    assert diff["in_sd"] == pytest.approx(1.0)
    assert "| coco | 0.340 | 12 | +0.0200 (+1.0 sd) |" in study.study_markdown(
        summary
    )


def test_smoke_study_end_to_end(tmp_path):
    """``run --smoke``: every kind of part, results, summary and figure."""
    out = str(tmp_path / "study")
    summary = study.run_study(out, smoke=True)
    assert [(row["dataset"], row["bits"]) for row in summary["rows"]] == [
        ("digits-mosaic", 12),
        ("mirflickr25k", 12),
    ]
    for name in ("study.json", "study.md", "soft_vs_gain.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    for part in study.SMOKE_PARTS:
        assert os.path.isfile(os.path.join(out, part, "results.md"))
    # 4 + 4 + 3 cells, γ = 0.1 computed once for two tables.
    assert len(os.listdir(os.path.join(out, "cells"))) == 10
    with open(os.path.join(out, "gamma", "results.json")) as handle:
        gamma = json.load(handle)
    assert [row["method"] for row in gamma["rows"]] == [
        "IDHN γ=0.01",
        "IDHN γ=0.1",
        "IDHN γ=1",
    ]
    assert "map@all/tie_mean" in gamma["rows"][0]["metrics"]
    text = open(os.path.join(out, "study.md"), encoding="utf-8").read()
    assert "## Soft similarity study on label-mosaic:mirflickr25k" in text
    assert "## IDHN soft weight γ on label-mosaic:mirflickr25k" in text


def test_smoke_runs_never_write_into_the_committed_results():
    with pytest.raises(SystemExit):
        study.main(["run", "--smoke"])


@pytest.mark.slow
def test_budget_selection_smoke_writes_one_budget_per_dataset(tmp_path):
    result = study.select_budgets(str(tmp_path), smoke=True)
    with open(tmp_path / "budgets.json") as handle:
        assert json.load(handle) == json.loads(json.dumps(result))
    config = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("study_config", CONFIG)
    )
    config.__spec__.loader.exec_module(config)
    assert set(result["budgets"]) == set(config.DATASET_PARTS)
    for part, chosen in result["budgets"].items():
        curve = {int(k): v for k, v in chosen["validation_map"].items()}
        assert set(curve) == {1, 2}
        assert chosen["epochs"] == study.choose_budget(curve)
        assert config.budget(part, str(tmp_path / "budgets.json"))[0] in (1, 2)

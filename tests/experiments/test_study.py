"""The soft-similarity study: its config parts, its summary, a smoke run."""

import importlib.util
import json
import os

import pytest

from keras_dhsps.experiments.table_config import cell_config
from keras_dhsps.experiments.table_config import cell_key
from keras_dhsps.experiments.table_config import load_table_config
from keras_dhsps.utils.errors import DHSPSError
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


def _config():
    spec = importlib.util.spec_from_file_location("study_config", CONFIG)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return config


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
    with pytest.raises(DHSPSError, match="unknown arg 'imagenet'"):
        load_table_config(f"{CONFIG}:imagenet")


def test_budget_is_read_from_the_budgets_file(tmp_path):
    config = _config()
    path = tmp_path / "budgets.json"
    assert config.budget("coco", str(path))[0] == config.DEFAULT_EPOCHS
    path.write_text(json.dumps({"budgets": {"coco": {"epochs": 20}}}))
    assert config.budget("coco", str(path)) == (20, "chosen on validation mAP")
    assert config.budget("voc2012", str(path))[0] == config.DEFAULT_EPOCHS


def _curve(*values):
    """Validation mAP at 10, 20, ... epochs."""
    return {10 * (i + 1): value for i, value in enumerate(values)}


def test_choose_budget_still_rising_curve_has_no_plateau():
    # Every checkpoint is followed by a rise of 0.01 or more within two.
    curve = _curve(0.50, 0.60, 0.65, 0.68, 0.70, 0.71, 0.72)
    assert study.choose_budget(curve) is None
    # The 30-epoch budgets of the first study: 10/20/30 cannot show one.
    assert study.choose_budget(_curve(0.53, 0.60, 0.62)) is None


def test_choose_budget_is_the_first_checkpoint_of_the_plateau():
    # At 40 epochs (0.700) the next two are 0.703 and 0.704: rise 0.004.
    # At 30 (0.690) the one after next is 0.703: rise 0.013, not yet.
    curve = _curve(0.50, 0.65, 0.690, 0.700, 0.703, 0.704, 0.704, 0.705)
    assert study.choose_budget(curve) == 40
    # A rise of exactly 0.005 or more over two checkpoints is not a plateau.
    assert study.choose_budget(_curve(0.7, 0.702, 0.706, 0.7061)) == 20


def test_choose_budget_on_a_noisy_curve():
    # The dip at 30 is not a plateau: 40 epochs is 0.022 above 30.
    # 50 (0.630): next two 0.632, 0.628, the largest rise 0.002.
    curve = _curve(0.50, 0.600, 0.598, 0.620, 0.630, 0.632, 0.628, 0.640)
    assert study.choose_budget(curve) == 50
    # A fall after the best: the best checkpoint is where it stops.
    assert study.choose_budget(_curve(0.7, 0.8, 0.79, 0.78)) == 20
    # The last two checkpoints have no two successors to judge by.
    assert study.choose_budget(_curve(0.5, 0.6)) is None


def _fake_curves(calls):
    """A stand-in for ``validation_curve``: hard-only plateaus at 30
    epochs, IDHN at 50 on coco and at 20 elsewhere; records its calls."""

    def curve(part, loss, *, every, max_epochs, smoke):
        calls.append((part, loss))
        assert (every, max_epochs, smoke) == (1, 3, True)
        idhn = 5 if part == "coco" else 2
        flat = 3 if loss == "idhn_hard_only" else idhn
        return _curve(*(0.1 * min(i, flat) for i in range(1, 13)))

    return curve


def test_budgets_json_keeps_both_curves_and_the_larger_budget(tmp_path):
    calls = []
    result = study.select_budgets(
        str(tmp_path), smoke=True, parts=("coco",), curve=_fake_curves(calls)
    )
    assert calls == [("coco", "idhn"), ("coco", "idhn_hard_only")]
    with open(tmp_path / "budgets.json") as handle:
        written = json.load(handle)
    assert written == json.loads(json.dumps(result))
    assert "the larger of its methods' budgets" in written["procedure"]
    (coco,) = written["budgets"].values()
    assert (coco["epochs"], coco["plateau"]) == (50, True)
    assert set(coco["methods"]) == {"IDHN", "hard-only"}
    idhn, hard = coco["methods"]["IDHN"], coco["methods"]["hard-only"]
    assert (idhn["epochs"], hard["epochs"]) == (50, 30)
    assert sorted(map(int, idhn["validation_map"])) == list(range(10, 121, 10))
    assert hard["validation_map"]["120"] == pytest.approx(0.3)
    assert os.path.getsize(tmp_path / "budgets.png") > 0
    config = _config()
    assert config.budget("coco", str(tmp_path / "budgets.json")) == (
        50,
        "chosen on validation mAP",
    )


def test_budgets_resume_skips_finished_runs(tmp_path):
    calls = []
    curve = _fake_curves(calls)
    study.select_budgets(
        str(tmp_path), smoke=True, parts=("voc2012",), curve=curve
    )
    path = tmp_path / "budgets.json"
    # An interrupted dataset: only IDHN finished; no budget for it yet.
    written = json.loads(path.read_text())
    written["budgets"]["coco"] = {
        "methods": {"IDHN": written["budgets"]["voc2012"]["methods"]["IDHN"]}
    }
    path.write_text(json.dumps(written))
    assert _config().budget("coco", str(path))[0] == 30
    calls.clear()
    result = study.select_budgets(
        str(tmp_path), smoke=True, parts=("voc2012", "coco"), curve=curve
    )
    assert calls == [("coco", "idhn_hard_only")]
    assert result["budgets"]["coco"]["epochs"] == 30
    # A file of another procedure (the first study's) is not resumed from.
    written["procedure"] = "IDHN, 48 bits, seed 0; after each of [10, 20, 30]"
    path.write_text(json.dumps(written))
    calls.clear()
    study.select_budgets(
        str(tmp_path), smoke=True, parts=("coco",), curve=curve
    )
    assert calls == [("coco", "idhn"), ("coco", "idhn_hard_only")]


def test_a_curve_still_rising_at_the_cap_is_flagged(tmp_path):
    def rising(part, loss, **_):
        return _curve(*(0.05 * i for i in range(1, 13)))

    result = study.select_budgets(
        str(tmp_path), smoke=True, parts=("coco",), curve=rising
    )
    coco = result["budgets"]["coco"]
    assert (coco["epochs"], coco["plateau"]) == (120, False)
    assert _config().budget("coco", str(tmp_path / "budgets.json")) == (
        120,
        "the cap: validation mAP still rising",
    )


def test_committed_budgets_follow_the_procedure():
    path = os.path.join(
        ROOT, "reproduce", "results", "study_soft_similarity", "budgets.json"
    )
    with open(path, encoding="utf-8") as handle:
        committed = json.load(handle)
    assert committed["procedure"] == study.budget_procedure(10, 120)
    for entry in committed["budgets"].values():
        for chosen in entry["methods"].values():
            curve = {int(k): v for k, v in chosen["validation_map"].items()}
            assert sorted(curve) == list(range(10, 121, 10))
            assert chosen["epochs"] == (study.choose_budget(curve) or 120)
        if "epochs" in entry:
            assert entry["epochs"] == max(
                chosen["epochs"] for chosen in entry["methods"].values()
            )


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
    cells = [
        json.load(open(os.path.join(out, "cells", name), encoding="utf-8"))
        for name in os.listdir(os.path.join(out, "cells"))
    ]
    assert len(cells) == 10
    # The shared γ = 0.1 cells are counted once.
    assert summary["train_seconds"] == pytest.approx(
        sum(cell["train_seconds"] for cell in cells)
    )
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


def test_budget_selection_smoke_trains_and_reads_each_checkpoint(tmp_path):
    """The real path on tiny splits: one 3-epoch run per method, validation
    mAP at every epoch from each run's history (seconds)."""
    result = study.select_budgets(
        str(tmp_path), smoke=True, parts=("digits-mosaic",)
    )
    entry = result["budgets"]["digits-mosaic"]
    assert set(entry["methods"]) == set(study.BUDGET_METHODS)
    for chosen in entry["methods"].values():
        curve = {int(k): v for k, v in chosen["validation_map"].items()}
        assert set(curve) == {1, 2, 3}
        assert all(0 < value <= 1 for value in curve.values())
        assert chosen["epochs"] == (study.choose_budget(curve) or 3)
    assert (
        _config().budget("digits-mosaic", str(tmp_path / "budgets.json"))[0]
        == entry["epochs"]
    )


def test_compare_reads_finished_parts_from_the_cell_cache(tmp_path):
    # Fake cells for every cell of mirflickr25k at its budget: IDHN scores
    # 0.9 / 0.7 and hard-only 0.8 / 0.75 (mAP@all / NDCG@100) on every seed.
    results = os.path.join(
        ROOT, "reproduce", "results", "study_soft_similarity"
    )
    os.makedirs(tmp_path / "30-epochs")
    with open(os.path.join(results, "30-epochs", "study.json")) as f:
        old = json.load(f)
    (tmp_path / "30-epochs" / "study.json").write_text(json.dumps(old))
    os.makedirs(tmp_path / "cells")
    table = load_table_config(f"{CONFIG}:mirflickr25k")
    scores = {"IDHN": (0.9, 0.7), "hard-only": (0.8, 0.75)}
    for method in table.methods:
        for bits in table.bits:
            for seed in table.seeds:
                m, n = scores.get(method.label, (0.5, 0.5))
                cell = {
                    "metrics": {"map@all": m, "ndcg@100": n},
                    "train_seconds": 1.0,
                }
                key = cell_key(table, method, bits, seed)
                (tmp_path / "cells" / f"{key}.json").write_text(
                    json.dumps(cell)
                )
    text = study.compare_with_30_epochs(str(tmp_path))
    assert (tmp_path / "rerun.md").read_text() == text
    assert "| mirflickr25k | " in text and "| 24 / 24 |" in text
    assert "| voc2012 | " in text and "| 0 / 24 |" in text
    before = {
        (row["bits"], metric): row["idhn_minus_hard_only"][metric]["difference"]
        for row in old["rows"]
        if row["dataset"] == "mirflickr25k"
        for metric in ("map@all", "ndcg@100")
    }
    for bits in (12, 48):
        assert (
            f"| mirflickr25k | {bits} | map@all | +0.1000 | "
            f"{before[(bits, 'map@all')]:+.4f} |"
        ) in text
        assert f"| mirflickr25k | {bits} | ndcg@100 | -0.0500 |" in text
    assert "| voc2012 | 12 |" not in text  # unfinished: no difference row

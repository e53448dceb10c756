"""benchmarks/gpu_check.py runs end to end at a tiny size on the CPU.

The GPU figures themselves come from a GPU machine (benchmarks/README.md,
"GPU check"); these tests check that the one command works: the generated
MIRFlickr-shaped tree reads back as the protocol's splits, a part runs
under JAX and reports its timings, and the overall budget is kept.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.paths import REPO as ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import gpu_check  # noqa: E402

pytest.importorskip("jax")


def _launch(tmp_path, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py")]
        + ["--json", str(tmp_path / "summary.json"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def _run(tmp_path, *args, timeout=240):
    completed = _launch(tmp_path, "--tiny", *args, timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((tmp_path / "summary.json").read_text())


def test_generated_tree_reads_back_as_the_protocol_splits(tmp_path):
    from keras_dhsps.data import load_dataset

    sizes = {"query": 3, "train": 5, "database": 4}
    lists = gpu_check.write_mirflickr_tree(str(tmp_path), sizes)
    dataset = load_dataset(
        "lists", root=str(tmp_path), lists_dir=lists, validation_fraction=0.0
    )
    for name, count in sizes.items():
        split = dataset.split(name)
        assert len(split) == count
        assert split.labels.shape == (count, gpu_check.NUM_LABELS)
        assert split.labels.sum(axis=1).min() >= 1  # every image labelled
    paths = [p for n in sizes for p in dataset.split(n).paths]
    assert len(set(paths)) == 12  # disjoint splits
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == (500, 375)
    pixels = [np.asarray(Image.open(p)).astype(int) for p in paths[:2]]
    assert np.abs(pixels[0] - pixels[1]).mean() > 5  # distinct photos


def test_tiny_cell_reports_its_time_split_and_extrapolates(tmp_path):
    summary = _run(tmp_path, "--parts", "mirflickr_cell")
    cell = summary["parts"]["mirflickr_cell"]
    assert "error" not in cell, cell
    assert cell["device"].startswith("cpu")
    assert cell["versions"]["keras"] and cell["versions"]["jax"]
    assert cell["images"] == gpu_check.TINY_SPLITS
    assert summary["preflight"]["keras_backend"] == "jax"
    assert summary["preflight"]["jax_platform"] == "cpu"
    assert cell["cell"] == "paper_mirflickr25k/IDHN/48bits/seed0"
    seconds = cell["seconds"]
    for key in ("generate_jpegs", "train", "encode", "metrics"):
        assert seconds[key] > 0, key
    assert cell["table_deep_cells"] == 24  # 6 deep methods × 4 code lengths
    # Decoded once, in the decode step: training and encoding read the
    # stores it built (same stored size, same input section).
    assert seconds["decode"] > 0
    assert cell["images_decoded_after_decode_step"] == 0
    per_cell = seconds["train"] + seconds["encode"] + seconds["metrics"]
    expected = seconds["decode"] + 24 * per_cell
    # Each figure is rounded to 0.01 s: 24 × 3 roundings of ≤ 0.005 s.
    assert cell["table_estimate_s"] == pytest.approx(expected, abs=0.4)
    assert 0 <= cell["metrics"]["map@all"] <= 1


def test_budget_spent_leaves_parts_unrun_with_a_reason(tmp_path):
    completed = _launch(tmp_path, "--tiny", "--budget-s", "5", timeout=60)
    assert completed.returncode == 1  # a part that did not run fails
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["parts"]) == set(gpu_check.PARTS)
    for part in summary["parts"].values():
        assert part == {"error": "no time left in budget"}


@pytest.mark.slow
def test_tiny_runs_every_part(tmp_path):
    summary = _run(tmp_path, timeout=600)
    for name in gpu_check.PARTS:
        assert "error" not in summary["parts"][name], summary["parts"][name]
    rows = summary["parts"]["train_step"]["rows"]
    assert rows[0]["input"] == "uint8 from the image store"
    assert rows[0]["images_per_second"] > 0
    assert "| IDHN |" in summary["parts"]["digits_table"]["table_markdown"]


def test_a_full_run_without_a_gpu_stops_before_the_parts(tmp_path):
    # The GPU sizes on a CPU would spend the whole budget (and a GPU
    # session's device time) for nothing: one line, no summary.
    completed = _launch(tmp_path, timeout=120)
    assert completed.returncode != 0
    lines = completed.stderr.strip().splitlines()
    assert lines[-1].startswith("error: JAX sees no GPU (device: cpu)")
    assert not (tmp_path / "summary.json").exists()


def test_preflight_names_the_missing_dependency_keras_hides(tmp_path):
    # Keras reports a missing dependency of optree as "you need to have
    # optree installed"; the preflight imports optree itself first, so the
    # line names the module that is really missing.
    (tmp_path / "optree.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'typing_extensions'\")\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    env["KERAS_BACKEND"] = "jax"
    with pytest.raises(SystemExit) as stopped:
        gpu_check.preflight(env, tiny=True)
    message = str(stopped.value)
    assert message.startswith("error: the parts' environment cannot import")
    assert "No module named 'typing_extensions'" in message


def test_carried_wheels_are_git_ignored():
    # .whl/ travels to the GPU machine by `carry`, never into the repository.
    completed = subprocess.run(
        ["git", "check-ignore", "-q", ".whl/keras-3.15.1-py3-none-any.whl"],
        cwd=ROOT,
    )
    assert completed.returncode == 0


def test_without_keras_or_wheels_it_says_what_to_run(tmp_path, monkeypatch):
    # The GPU machine has no Keras: the carried wheels must be there.
    real_find_spec = gpu_check.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "keras" else real_find_spec(name, *args)

    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", find_spec)
    with pytest.raises(SystemExit, match="fetch_wheels.sh"):
        gpu_check.install_wheels(str(tmp_path))
    # With Keras importable nothing is installed.
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", real_find_spec)
    assert gpu_check.install_wheels(str(tmp_path)) is None


def test_train_step_feeds_uint8_from_the_store(tmp_path):
    import train_step

    images, labels = train_step.image_pool(227, 3)
    assert images.dtype == np.uint8 and images.shape == (3, 227, 227, 3)
    assert images.std() > 10  # decoded photos, not a constant
    assert labels.shape == (3, train_step.NUM_CLASSES)
    assert labels.sum(axis=1).min() >= 1
    batches = train_step.pool_batches(images, labels, 2)
    first, second = next(batches)[0], next(batches)[0]
    assert first.dtype == np.uint8  # what crosses to the device
    np.testing.assert_array_equal(second[0], images[2])  # cycles the pool
    np.testing.assert_array_equal(second[1], images[0])

    output = tmp_path / "rows.json"
    argv = ["--models", "alexnet", "--batch-size", "2", "--steps", "1"]
    argv += ["--warmup", "1", "--pool", "2", "--precisions", "float32"]
    argv += ["--frameworks", "keras", "--output", str(output)]
    (row,) = train_step.main(argv)
    assert row["input"] == "uint8 from the image store"
    assert row["images_per_second"] > 0 and np.isfinite(row["last_loss"])
    # The same compiled step with the run's NaN guard and with a per-step
    # sync (what the GPU check compares).
    assert row["images_per_second_nan_guard"] > 0
    assert row["images_per_second_per_step_sync"] > 0
    assert json.loads(output.read_text()) == [row]


def test_train_step_runs_torch_compile_rows_last():
    # The GPU part may hit its time limit: every model's Keras and eager
    # rows (what the targets compare) come before any torch.compile row.
    pytest.importorskip("torch")
    import train_step

    args = train_step.parse_args(["--models", "alexnet,resnet50"])
    devices = {"keras": "CPU", "torch": "CPU"}
    order = [
        (model, option if framework == "torch" else option["precision"])
        for model, framework, _, option in train_step.scheduled_runs(
            args, devices
        )
    ]
    assert order == [
        ("alexnet", "float32"),
        ("alexnet", "mixed_bfloat16"),
        ("alexnet", "eager"),
        ("alexnet", "eager_bf16"),
        ("resnet50", "float32"),
        ("resnet50", "mixed_bfloat16"),
        ("resnet50", "eager"),
        ("resnet50", "eager_bf16"),
        ("alexnet", "compile_bf16"),
        ("resnet50", "compile_bf16"),
    ]

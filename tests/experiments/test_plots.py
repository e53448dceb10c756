"""Plots: files are written in the requested format and show the data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_dhsps.experiments.plots import plot_pr_curves
from keras_dhsps.experiments.plots import plot_precision_at_n
from keras_dhsps.experiments.plots import plot_precision_recall
from keras_dhsps.experiments.plots import plot_retrieval_examples
from keras_dhsps.metrics import retrieval_report
from keras_dhsps.utils.errors import DHSPSError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF"


@pytest.fixture(scope="module")
def reports():
    rng = np.random.default_rng(0)
    labels_q = rng.integers(0, 2, (20, 4)).astype(np.uint8)
    labels_d = rng.integers(0, 2, (80, 4)).astype(np.uint8)
    good = retrieval_report(
        # Codes that copy the labels (plus noise bits) retrieve well.
        np.hstack([labels_q * 2 - 1.0, rng.normal(size=(20, 12))]),
        labels_q,
        np.hstack([labels_d * 2 - 1.0, rng.normal(size=(80, 12))]),
        labels_d,
    )
    bad = retrieval_report(
        rng.normal(size=(20, 16)), labels_q, rng.normal(size=(80, 16)), labels_d
    )
    return {"label codes": good, "random codes": bad}


def read_head(path, size=8):
    with open(path, "rb") as handle:
        return handle.read(size)


def test_pr_and_precision_at_n_png_and_pdf(reports, tmp_path):
    for extension, magic in (("png", PNG_MAGIC), ("pdf", PDF_MAGIC)):
        pr = tmp_path / f"pr.{extension}"
        pn = tmp_path / f"pn.{extension}"
        plot_pr_curves(reports, str(pr), title="digits")
        plot_precision_at_n(reports, str(pn))
        for path in (pr, pn):
            assert path.stat().st_size > 1000
            assert read_head(path, len(magic)) == magic
    # Two panels side by side (4.2 in each at 120 dpi) vs one 5 in panel.
    assert Image.open(tmp_path / "pr.png").size[0] == int(2 * 4.2 * 120)
    assert Image.open(tmp_path / "pn.png").size[0] == int(5.0 * 120)
    # No temporary files are left behind by the atomic writes.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pn.pdf",
        "pn.png",
        "pr.pdf",
        "pr.png",
    ]


def test_plot_precision_recall_keeps_its_tables_api(reports, tmp_path):
    path = tmp_path / "panels.png"
    panels = {"radius": {"a": reports["label codes"]["curves"]["pr_by_radius"]}}
    plot_precision_recall(panels, str(path), title="t")
    assert Image.open(path).size[0] == int(4.2 * 120)


def test_missing_curve_and_missing_extension_raise(reports, tmp_path):
    with pytest.raises(DHSPSError, match="has no 'precision_at_n' curve"):
        plot_precision_at_n({"x": {"curves": {}}}, str(tmp_path / "a.png"))
    with pytest.raises(DHSPSError, match="extension"):
        plot_pr_curves(reports, str(tmp_path / "noext"))


def count_color(pixels, rgb, tolerance=30):
    return int(
        np.all(
            np.abs(pixels[..., :3].astype(int) - rgb) < tolerance, axis=-1
        ).sum()
    )


def test_retrieval_examples_mark_relevance(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(gray)
    green = (44, 160, 44)  # matplotlib's tab:green
    red = (214, 39, 40)  # tab:red

    def draw(relevance, name):
        examples = [
            {
                "query": str(gray),
                "results": [
                    {"path": str(gray), "distance": d, "relevant": r}
                    for d, r in enumerate(relevance)
                ],
            }
        ]
        path = tmp_path / name
        plot_retrieval_examples(examples, str(path))
        return np.asarray(Image.open(path).convert("RGB"))

    all_relevant = draw([True, True, True], "good.png")
    none_relevant = draw([False, False, False], "bad.png")
    unknown = draw([None, None, None], "unknown.png")
    # 1 query + 3 results = 4 columns of 1.6 in at 120 dpi.
    assert all_relevant.shape[1] == int(4 * 1.6 * 120)
    assert count_color(all_relevant, green) > 100
    assert count_color(all_relevant, red) == 0
    assert count_color(none_relevant, red) > 100
    assert count_color(none_relevant, green) == 0
    assert count_color(unknown, red) == count_color(unknown, green) == 0
    # An unreadable result image becomes a placeholder, not a crash.
    plot_retrieval_examples(
        [{"query": str(tmp_path / "missing.jpg"), "results": []}],
        str(tmp_path / "placeholder.pdf"),
    )
    assert read_head(tmp_path / "placeholder.pdf", 4) == PDF_MAGIC
    with pytest.raises(DHSPSError, match="no retrieval examples"):
        plot_retrieval_examples([], str(tmp_path / "x.png"))


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, laid out and kept."""
    import keras_dhsps.experiments.plots as plots

    figures = []

    def keep(figure, path):
        figure.canvas.draw()
        figures.append(figure)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def extent(artist):
    return artist.get_window_extent(artist.figure.canvas.get_renderer())


def test_long_recipes_are_wrapped_inside_the_figure(reports, drawn):
    plot_pr_curves(reports, "x.png", title="a title " * 12)
    plot_precision_at_n(reports, "y.png", title="a title " * 12)
    for figure in drawn:
        title = extent(figure._suptitle)
        width = figure.bbox.width
        # Unwrapped, the PR recipe is ~250 characters: wider than the figure.
        assert 0 <= title.x0 and title.x1 <= width, (title, width)
        assert title.y1 <= figure.bbox.height
        assert "\n" in figure._suptitle.get_text()


def test_query_names_do_not_run_into_the_next_row(tmp_path, drawn):
    image = tmp_path / "q.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(image)
    long_name = tmp_path / ("a_very_long_query_file_name_" * 3 + ".png")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(long_name)
    examples = [
        {
            "query": str(long_name),
            "results": [
                {"path": str(image), "distance": d, "relevant": None}
                for d in range(3)
            ],
        }
    ] * 3
    plot_retrieval_examples(examples, "x.png")
    (figure,) = drawn
    axes = np.asarray(figure.axes).reshape(3, 4)
    for row in range(2):
        name = extent(axes[row, 0].xaxis.label)
        assert name.width <= extent(axes[row, 0]).width * 1.2
        for column in range(4):
            below = extent(axes[row + 1, column].title)
            assert name.y0 > below.y1, (row, column)  # clear of the titles
    # The name is shortened in the middle, keeping its ending.
    label = axes[0, 0].get_xlabel()
    assert len(label) <= 18 and label.endswith("ame_.png")

"""Shape-function figures: bars per value for indicators, levels and categories; steps otherwise."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from autofm.cli import main
from autofm.core.errors import ValidationError
from autofm.gam import GAMformerClassifier
from autofm.gam.binning import apply_bins, bin_edges, column_ranges
from autofm.gam.plots import _numeric_levels, plot_shape_functions


def _table(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A continuous, a 0/1, a 3-valued integer and a string column; y depends on all four."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(50.0, 15.0, n),
            "smoker": rng.integers(0, 2, n),
            "children": rng.integers(0, 3, n),
            "city": rng.choice(["Berlin", "Oslo", "Paris", "Rome"], n),
        }
    )
    score = 0.08 * (X.income - 50) + 1.5 * X.smoker - 0.7 * X.children
    score += X.city.map({"Berlin": 0.5, "Oslo": 0.0, "Paris": -0.5, "Rome": 1.0})
    return X, pd.Series(score + rng.normal(0.0, 1.0, n), name="y")


@pytest.fixture(scope="module")
def binary_model():
    X, score = _table()
    return GAMformerClassifier().fit(X, (score > 0).astype(int))


@pytest.fixture(scope="module")
def figure(binary_model):
    fig = plot_shape_functions(binary_model)
    yield fig
    plt.close(fig)


def _panel(fig: plt.Figure, name: str) -> plt.Axes:
    """The axes titled with feature `name` (the twin density axes have no title)."""
    (axis,) = [a for a in fig.axes if a.get_title().startswith(f"{name} (")]
    return axis


def _density(fig: plt.Figure, axis: plt.Axes) -> plt.Axes:
    """The twin axes holding `axis`'s grey density bars."""
    (twin,) = [a for a in fig.axes if a is not axis and axis.get_shared_x_axes().joined(a, axis)]
    return twin


def _bar_centres(axis: plt.Axes) -> np.ndarray:
    return np.array([bar.get_x() + bar.get_width() / 2 for bar in axis.patches])


def _step_lines(axis: plt.Axes) -> list:
    return [line for line in axis.lines if line.get_drawstyle() == "steps-post"]


def _tick_labels(axis: plt.Axes) -> list[str]:
    return [label.get_text() for label in axis.get_xticklabels()]


def test_an_indicator_is_two_bars_at_its_values_without_a_step_line(binary_model, figure):
    axis = _panel(figure, "smoker")
    curve = binary_model.explain()["curves"]["smoker"]
    occupied = np.flatnonzero(curve["counts"] > 0)
    assert len(occupied) == 2  # of 33 bins, the others empty
    np.testing.assert_allclose(_bar_centres(axis), [0.0, 1.0])
    assert _tick_labels(axis) == ["0", "1"]
    heights = [bar.get_height() for bar in axis.patches]
    np.testing.assert_allclose(heights, curve["values"][occupied, 0])
    assert _step_lines(axis) == []
    # the only line is the zero line
    assert [tuple(line.get_ydata()) for line in axis.lines] == [(0.0, 0.0)]
    density = [bar.get_height() for bar in _density(figure, axis).patches]
    np.testing.assert_allclose(density, curve["counts"][occupied])
    assert sum(density) == 200


def test_a_three_valued_integer_and_a_category_are_bars_per_value(binary_model, figure):
    curves = binary_model.explain()["curves"]
    children = _panel(figure, "children")
    assert _tick_labels(children) == ["0", "1", "2"]
    occupied = curves["children"]["counts"] > 0
    heights = [bar.get_height() for bar in children.patches]
    np.testing.assert_allclose(heights, curves["children"]["values"][occupied, 0])
    city = _panel(figure, "city")
    assert _tick_labels(city) == ["Berlin", "Oslo", "Paris", "Rome"]
    heights = [bar.get_height() for bar in city.patches]
    np.testing.assert_allclose(heights, curves["city"]["values"][:, 0])
    assert _step_lines(children) == _step_lines(city) == []


def test_a_continuous_feature_is_a_step_line_over_its_occupied_bins(binary_model, figure):
    axis = _panel(figure, "income")
    curve = binary_model.explain()["curves"]["income"]
    (step,) = _step_lines(axis)
    occupied = curve["counts"] > 0
    np.testing.assert_allclose(step.get_ydata()[:-1], curve["values"][occupied, 0])
    assert len(axis.patches) == 0  # no bars: the density is on the twin axes
    assert len(_density(figure, axis).patches) == len(curve["counts"])


def test_one_grid_without_a_title_and_grouped_bars_for_multiclass():
    X, score = _table()
    y = np.digitize(score, np.quantile(score, [0.33, 0.66]))
    model = GAMformerClassifier().fit(X, y)
    fig = plot_shape_functions(model)
    axis = _panel(fig, "smoker")
    centres = _bar_centres(axis)
    assert len(centres) == 6  # two values × three classes
    # each value's three bars sit side by side around it, one colour per class
    np.testing.assert_allclose(np.sort(centres)[:3].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sort(centres)[3:].mean(), 1.0, atol=1e-12)
    assert len({bar.get_facecolor() for bar in axis.patches}) == 3
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["logit(0)", "logit(1)", "logit(2)"]
    assert fig._suptitle is None
    assert len([a for a in fig.axes if a.get_title()]) == 4
    plt.close(fig)


def test_unknown_features_are_refused(binary_model):
    with pytest.raises(ValidationError, match="unknown feature"):
        plot_shape_functions(binary_model, features=["income", "height"])


def _curve(x: np.ndarray, n_bins: int = 32) -> dict:
    """A numeric curve as `explain` gives it, for the values `x` (shape values: bin indices)."""
    edges = bin_edges(x, n_bins)
    counts = np.bincount(apply_bins(x, edges, n_bins), minlength=len(edges) + 1).astype(float)
    return {
        "bin_edges": edges,
        "range": tuple(column_ranges(x[:, None])[0]),
        "counts": counts,
        "values": np.arange(len(edges) + 1, dtype=float)[:, None],
    }


@pytest.mark.parametrize(
    "x, labels, counts",
    [
        (np.repeat([0.0, 1.0], [150, 50]), ["0", "1"], [150, 50]),
        # a standardised indicator: two values, not integers
        (np.repeat([-0.5, 1.5], [100, 100]), ["-0.5", "1.5"], [100, 100]),
        # a rare 3 falls in the bin of 2, a rare 9 in that of 4: their bars say so
        (
            np.repeat([0.0, 1.0, 2.0, 3.0, 4.0, 9.0], [70, 60, 60, 1, 60, 1]),
            ["0", "1", "2–3", "4–9"],
            [70, 60, 61, 61],
        ),
        # fewer than one row in 32 are ones: all edges are 0, one bin holds both values
        (np.repeat([0.0, 1.0], [199, 1]), ["0–1"], [200]),
        (np.full(50, 7.0), ["7"], [50]),
    ],
)
def test_few_valued_numeric_features_have_one_bar_per_occupied_bin(x, labels, counts):
    curve = _curve(x)
    got_labels, values, got_counts = _numeric_levels(curve)
    assert got_labels == labels
    np.testing.assert_array_equal(got_counts, counts)
    # each bar's shape value is that of the bin holding its rows
    bins = apply_bins(x, curve["bin_edges"], 32)
    np.testing.assert_array_equal(values[:, 0], np.unique(bins))


@pytest.mark.parametrize(
    "x",
    [
        np.random.default_rng(0).normal(size=200),
        # integers, but spread over thousands of values (a zero-inflated amount)
        np.where(np.arange(200) < 170, 0.0, np.arange(200) * 37.0),
        # three non-integer values
        np.repeat([0.5, 1.25, 2.0], [70, 70, 60]),
    ],
)
def test_other_numeric_features_are_steps(x):
    assert _numeric_levels(_curve(x)) is None


def test_cli_report_has_one_figure_and_tables_with_named_columns(tmp_path, capsys):
    X, score = _table(n=150)
    for j in range(10):  # 14 features: more than one figure used to hold
        X[f"noise{j}"] = np.random.default_rng(j).normal(size=len(X))
    X.assign(label=(score > 0).astype(int)).to_csv(tmp_path / "train.csv", index=False)
    report = tmp_path / "gam.html"
    code = main(
        ["gam", "fit", str(tmp_path / "train.csv"), "--target", "label"] + ["--report", str(report)]
    )
    assert code == 0
    capsys.readouterr()
    html = report.read_text()
    assert html.count("<img") == 1
    heads = re.findall(r"<thead>(.*?)</thead>", html, re.S)
    headers = [re.findall(r"<th>(.*?)</th>", head) for head in heads]
    assert headers == [["metric", "value"], ["feature", "importance"]]
    assert all(head.count("<tr") == 1 for head in heads)  # no second row naming an index
    bodies = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)
    first_cells = [re.findall(r"<tr>\s*<td>(.*?)</td>", body) for body in bodies]
    assert first_cells[0][:3] == ["task", "n_rows", "n_features"]
    assert sorted(first_cells[1]) == sorted(X.columns)

"""DEOD as in the paper (|mean of the TPR and FPR gaps|) and its worst case `deod_max`."""

import json

import numpy as np
import pytest
from fairlearn.metrics import equalized_odds_difference
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autofm.cli import main
from autofm.core.errors import ValidationError
from autofm.fairness.metrics import (
    DESCRIPTIONS,
    LABELS,
    OBJECTIVES,
    PAPER_OBJECTIVES,
    fairness_objectives,
)
from autofm.fairness.search import ManyFairHPO, check_objectives
from autofm.fairness.select import parse_weights

from .helpers import planted, random_predictions

binary_rows = st.lists(st.tuples(*(st.integers(0, 1),) * 3), min_size=1, max_size=40)


def gaps(y_true, y_pred, group):
    """(TPR gap, FPR gap), unprivileged minus privileged, straight from boolean masks."""

    def rate(a, label):
        rows = (group == a) & (y_true == label)
        return y_pred[rows].mean() if rows.any() else 0.0

    return rate(0, 1) - rate(1, 1), rate(0, 0) - rate(1, 0)


@settings(max_examples=80, deadline=None)
@given(binary_rows)
def test_deod_is_the_absolute_mean_of_the_gaps_and_the_worst_case_their_largest(rows):
    y_true, y_pred, group = (np.array(column) for column in zip(*rows))
    tpr_gap, fpr_gap = gaps(y_true, y_pred, group)
    ours = fairness_objectives(y_true, y_pred, group)
    assert ours["deod"] == pytest.approx(abs(0.5 * (tpr_gap + fpr_gap)), abs=1e-12)
    assert ours["deod_max"] == pytest.approx(max(abs(tpr_gap), abs(fpr_gap)), abs=1e-12)
    assert ours["deod"] <= ours["deod_max"] + 1e-12


def test_opposite_gaps_cancel_in_deod_but_not_in_the_worst_case():
    # unprivileged: TPR 1, FPR 0; privileged: TPR 0.5, FPR 0.5 → gaps +0.5 and −0.5
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_true = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    ours = fairness_objectives(y_true, y_pred, group)
    assert ours["deod"] == 0.0
    assert ours["deod_max"] == pytest.approx(0.5)
    # the same gaps with equal signs do not cancel: both measures see 0.5
    same = fairness_objectives(y_true, np.array([1, 1, 1, 0, 1, 0, 0, 0]), group)
    assert same["deod"] == pytest.approx(0.5) and same["deod_max"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_worst_case_equals_fairlearns_equalized_odds_difference(seed):
    y_true, y_pred, group = random_predictions(seed, group_effect=-0.15)
    expected = equalized_odds_difference(y_true, y_pred, sensitive_features=group)
    assert fairness_objectives(y_true, y_pred, group)["deod_max"] == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(binary_rows)
def test_worst_case_equals_fairlearn_whenever_both_groups_have_both_labels(rows):
    y_true, y_pred, group = (np.array(column) for column in zip(*rows))
    # fairlearn has no rate for an empty (group, label) cell; we count it as 0
    assume(all(((group == a) & (y_true == label)).any() for a in (0, 1) for label in (0, 1)))
    expected = equalized_odds_difference(y_true, y_pred, sensitive_features=group)
    assert fairness_objectives(y_true, y_pred, group)["deod_max"] == pytest.approx(expected)


def test_the_default_objectives_stay_the_papers_five():
    assert PAPER_OBJECTIVES == ("f1", "dsp", "deod", "deop", "invd")
    assert tuple(ManyFairHPO().objectives) == PAPER_OBJECTIVES
    assert set(OBJECTIVES) == set(PAPER_OBJECTIVES) | {"deod_max"}
    assert set(LABELS) == set(DESCRIPTIONS) == set(OBJECTIVES)
    assert set(fairness_objectives([1, 0], [1, 1], [0, 1])) == set(OBJECTIVES)


def test_worst_case_can_be_chosen_by_name_or_alias():
    assert check_objectives(["deod_max", "f1", "deod"]) == ["f1", "deod", "deod_max"]
    assert check_objectives(["f1", "eod_max"]) == ["f1", "deod_max"]
    assert check_objectives(["error", "eod"]) == ["f1", "deod"]
    weights = parse_weights("f1=1,eod-max=3", ["f1", "dsp", "deod_max"])
    assert weights == {"f1": 0.25, "dsp": 0.0, "deod_max": 0.75}
    with pytest.raises(ValidationError, match="not optimised"):
        parse_weights("deod_max=1", PAPER_OBJECTIVES)
    with pytest.raises(ValidationError, match="repeat"):
        check_objectives(["f1", "deod_max", "eod_max"])


def test_a_search_on_the_worst_case_runs_selects_and_reports(tmp_path, capsys):
    planted(240).to_csv(tmp_path / "table.csv", index=False)
    out, html = tmp_path / "run", tmp_path / "report.html"
    args = ["fair", "run", str(tmp_path / "table.csv"), "--label", "label", "--protected", "race"]
    args += ["--privileged", "W", "--model", "logreg", "--trials", "5", "--bi-trials", "3"]
    args += ["--objectives", "f1,dsp,eod_max", "--weights", "f1=0.5,deod_max=0.5"]
    assert main([*args, "--out", str(out), "--report", str(html), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["best_val"]) == {"f1", "dsp", "deod_max"}
    assert set(result["bi_objective_runs"]) == {"dsp", "deod_max"}
    search = ManyFairHPO.load(out)
    assert search.objectives_ == ["f1", "dsp", "deod_max"]
    assert search.study_.metric_names == ["1 − F1", "|DSP|", "DEOD (worst case)"]
    trials = search.trials()
    assert (trials["val_deod_max"] >= trials["val_deod"] - 1e-12).all()
    selection = search.select({"deod_max": 1.0})
    assert selection.val["deod_max"] == pytest.approx(search.pareto_front()["val_deod_max"].min())
    assert "DEOD (worst case)" in html.read_text()


def test_the_command_line_help_names_every_objective(capsys):
    import pytest

    from autofm.cli import main
    from autofm.fairness.metrics import OBJECTIVES

    with pytest.raises(SystemExit):
        main(["fair", "run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in OBJECTIVES)

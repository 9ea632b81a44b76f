import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    false_positive_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from autofm.core.errors import ValidationError
from autofm.fairness.metrics import confusion_counts, fairness_objectives, group_rates

from .helpers import random_predictions


def brute_force_invd(y_true, y_pred, group):
    """The paper's definition: a loop over all ordered pairs, divided by n²."""
    n = len(y_true)
    unfair = 0
    for i in range(n):
        for j in range(n):
            unfair += (group[i] != group[j]) * (y_true[i] == y_true[j]) * (y_pred[i] != y_pred[j])
    return unfair / n**2


binary_rows = st.lists(st.tuples(*(st.integers(0, 1),) * 3), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(binary_rows)
def test_invd_matches_brute_force(rows):
    y_true, y_pred, group = (np.array(column) for column in zip(*rows))
    assert fairness_objectives(y_true, y_pred, group)["invd"] == pytest.approx(
        brute_force_invd(y_true, y_pred, group), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_group_metrics_match_fairlearn(seed):
    y_true, y_pred, group = random_predictions(seed, group_effect=0.1)
    ours = fairness_objectives(y_true, y_pred, group)
    assert ours["f1"] == pytest.approx(1 - f1_score(y_true, y_pred))
    assert ours["dsp"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=group)
    )
    assert ours["deop"] == pytest.approx(
        equal_opportunity_difference(y_true, y_pred, sensitive_features=group)
    )
    frame = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=group,
    ).by_group
    # the mean (aif360 average_odds_difference) version, with signs, unprivileged minus privileged
    expected = 0.5 * (
        (frame.loc[0, "fpr"] - frame.loc[1, "fpr"]) + (frame.loc[0, "tpr"] - frame.loc[1, "tpr"])
    )
    assert ours["deod"] == pytest.approx(abs(expected))


def test_deod_is_the_signed_mean_not_the_worst_case():
    # TPR gap +0.5 and FPR gap -0.5 cancel in the mean version
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_true = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    ours = fairness_objectives(y_true, y_pred, group)
    assert ours["deop"] == pytest.approx(0.5)
    assert ours["deod"] == pytest.approx(0.0)


def test_counts_and_rates_known_answer():
    counts = confusion_counts([1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 1], [1, 1, 1, 1, 0, 0])
    assert counts.sum() == 6 and counts[1, 1, 1] == 1 and counts[0, 0, 1] == 1
    rates = group_rates(counts)
    assert rates["base_rate_priv"] == 0.5 and rates["selection_rate_unpriv"] == 1.0
    assert rates["tpr_priv"] == 0.5 and rates["fpr_unpriv"] == 1.0
    # a constant predictor is perfectly "fair" and has 1 − F1 = 1 when it predicts all negative
    assert fairness_objectives([1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1]) == {
        "f1": 1.0,
        "dsp": 0.0,
        "deod": 0.0,
        "deod_max": 0.0,
        "deop": 0.0,
        "invd": 0.0,
    }


def test_non_binary_inputs_are_refused():
    with pytest.raises(ValidationError, match="only 0 and 1"):
        confusion_counts([0, 2], [0, 1], [0, 1])
    with pytest.raises(ValidationError, match="same length"):
        confusion_counts([0, 1], [0, 1, 1], [0, 1])

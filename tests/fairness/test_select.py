import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.fairness.select import parse_weights, risk_flags, select_model

OBJECTIVES = ["f1", "dsp", "deod", "deop", "invd"]
RATES = {
    "size_priv": 50.0,
    "size_unpriv": 50.0,
    "selection_rate_priv": 0.5,
    "selection_rate_unpriv": 0.5,
    "tpr_priv": 0.8,
    "tpr_unpriv": 0.8,
    "fpr_priv": 0.2,
    "fpr_unpriv": 0.2,
    "precision_priv": 0.8,
    "precision_unpriv": 0.5,
}


def test_parse_weights_normalises_and_resolves_aliases():
    weights = parse_weights("dsp=0.3,deop=0.2,f1=0.5", OBJECTIVES)
    assert weights == pytest.approx({"f1": 0.5, "dsp": 0.3, "deod": 0.0, "deop": 0.2, "invd": 0.0})
    assert parse_weights({"error": 2, "DDSP": 2}, OBJECTIVES)["dsp"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("foo=1", "unknown objective 'foo'"),
        ("dsp=-1", "≥ 0"),
        ("dsp=0", "at least one weight"),
        ("dsp", "name=value"),
        ("dsp=abc", "not a number"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValidationError, match=message):
        parse_weights(weights, OBJECTIVES)


def test_weight_on_an_objective_not_in_the_study_is_refused():
    with pytest.raises(ValidationError, match="not optimised"):
        parse_weights("invd=1", ["f1", "dsp"])


def _front():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"number": np.arange(8), "params_C": rng.random(8)})
    for o in OBJECTIVES:
        frame[f"val_{o}"] = rng.random(8)
        frame[f"test_{o}"] = frame[f"val_{o}"] + 0.01
    for key, value in RATES.items():
        frame[f"rate_{key}"] = value
    return frame


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_all_weight_on_one_objective_picks_its_minimum(objective):
    front = _front()
    base = {"base_rate_priv": 0.5, "base_rate_unpriv": 0.5}
    selection = select_model(front, {objective: 1.0}, OBJECTIVES, base)
    assert selection.trial == int(front.loc[front[f"val_{objective}"].idxmin(), "number"])
    assert selection.params["C"] == pytest.approx(front.loc[selection.trial, "params_C"])


def test_weighted_sum_uses_min_max_normalisation():
    # raw scales differ 100×; normalised, the equal-weight pick is the balanced middle model
    front = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "val_f1": [0.0, 0.4, 1.0],
            "val_dsp": [0.01, 0.004, 0.0],
            "test_f1": [0.0, 0.4, 1.0],
            "test_dsp": [0.01, 0.004, 0.0],
        }
        | {f"rate_{k}": [v] * 3 for k, v in RATES.items()}
    )
    base = {"base_rate_priv": 0.5, "base_rate_unpriv": 0.5}
    assert select_model(front, "f1=1,dsp=1", ["f1", "dsp"], base).trial == 1


def test_self_fulfilling_prophecy_needs_dsp_priority_and_a_base_rate_gap():
    test = {"f1": 0.3}
    gap = {"base_rate_priv": 0.6, "base_rate_unpriv": 0.3}
    no_gap = {"base_rate_priv": 0.45, "base_rate_unpriv": 0.4}
    dsp_first = {"f1": 0.5, "dsp": 0.3, "deop": 0.2}
    deop_first = {"f1": 0.5, "dsp": 0.1, "deop": 0.4}

    def names(weights, base):
        return [r["risk"] for r in risk_flags(weights, RATES, base, test, 0.3)]

    assert "self-fulfilling prophecy" in names(dsp_first, gap)
    assert "self-fulfilling prophecy" not in names(dsp_first, no_gap)
    assert "self-fulfilling prophecy" not in names(deop_first, gap)


def test_other_risks():
    rates = RATES | {"selection_rate_unpriv": 0.2, "tpr_unpriv": 0.5}
    base = {"base_rate_priv": 0.5, "base_rate_unpriv": 0.5}
    flagged = [r["risk"] for r in risk_flags({"f1": 1.0}, rates, base, {"f1": 0.5}, 0.3)]
    assert flagged == ["disparate impact", "unequal opportunity", "accuracy cost"]
    constant = RATES | {"selection_rate_priv": 0.0, "selection_rate_unpriv": 0.0}
    assert "degenerate model" in [
        r["risk"] for r in risk_flags({"f1": 1.0}, constant, base, {"f1": 1.0}, 1.0)
    ]

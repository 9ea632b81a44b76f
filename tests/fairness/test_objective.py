import numpy as np
import optuna
import pytest

from autofm.fairness.data import prepare_data
from autofm.fairness.metrics import fairness_objectives
from autofm.fairness.objective import TrialObjective, evaluate
from autofm.fairness.spaces import build_pipeline

from .helpers import planted

PARAMS = {"C": 1.0, "class_weight": "none"}


@pytest.fixture(scope="module")
def data():
    table = planted(300)
    return prepare_data(table.drop(columns=["label"]), table["label"], "race", privileged="W")


def test_evaluate_means_over_folds_and_uses_the_test_split(data):
    result = evaluate("logreg", PARAMS, data, random_state=0)
    val, test, rates = [], [], []
    for k, (train, valid) in enumerate(data.folds):
        model = build_pipeline("logreg", PARAMS, data.X, k, data.n_features)
        model.fit(data.X.iloc[train], data.y[train])
        predicted = model.predict(data.X.iloc[valid])
        val.append(fairness_objectives(data.y[valid], predicted, data.group[valid])["dsp"])
        predicted_test = model.predict(data.X_test)
        test.append(fairness_objectives(data.y_test, predicted_test, data.group_test)["deop"])
        rates.append(
            np.mean(predicted_test[data.group_test == 1])  # the privileged selection rate
        )
    assert result["val"]["dsp"] == pytest.approx(np.mean(val))
    assert result["test"]["deop"] == pytest.approx(np.mean(test))
    assert result["rates"]["selection_rate_priv"] == pytest.approx(np.mean(rates))
    assert len(data.y_test) == pytest.approx(0.25 * 300, abs=1)
    assert "race" not in data.X.columns


def test_trial_objective_returns_the_validation_values_and_stores_everything(data):
    objective = TrialObjective("logreg", ["f1", "dsp", "invd"], data, random_state=3)
    study = optuna.create_study(directions=["minimize"] * 3)
    trial = study.ask()
    values = objective(trial)
    result = study.trials[0].user_attrs["result"]
    expected = evaluate("logreg", trial.params, data, 3 + trial.number)
    assert values == tuple(result["val"][o] for o in ("f1", "dsp", "invd"))
    assert result["val"] == pytest.approx(expected["val"])
    assert result["test"] == pytest.approx(expected["test"])
    assert result["seconds"] > 0

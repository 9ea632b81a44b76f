"""The anchor: fairlearn's ExponentiatedGradient under a constraint, over a range of bounds.

Each bound gives one model; the models together form a front in (1 − F1, |DSP|) for demographic
parity or (1 − F1, |DEOD|) for equalized odds, which the HPO front is compared against.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from autofm.core.errors import ValidationError
from autofm.fairness.data import FairData
from autofm.fairness.metrics import confusion_counts, objectives_from_counts
from autofm.fairness.spaces import build_pipeline

CONSTRAINTS = {"dp": "dsp", "eo": "deod"}
DEFAULT_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)


def exponentiated_gradient_front(
    data: FairData,
    model: str,
    params: dict[str, Any],
    constraint: str = "dp",
    bounds: Sequence[float] = DEFAULT_BOUNDS,
    max_iter: int = 50,
    random_state: int = 0,
) -> pd.DataFrame:
    """Fit ExponentiatedGradient on train+validation per bound; test objectives of each model.

    `constraint` is 'dp' (DemographicParity) or 'eo' (EqualizedOdds); the base learner is
    `model` with `params` (it must accept sample weights, as rf, gb, mlp and logreg do).
    """
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    if constraint not in CONSTRAINTS:
        raise ValidationError(f"constraint must be one of {list(CONSTRAINTS)}, got {constraint!r}")
    rows = []
    for bound in bounds:
        moment = (
            DemographicParity(difference_bound=bound)
            if constraint == "dp"
            else EqualizedOdds(difference_bound=bound)
        )
        base = build_pipeline(model, params, data.X, random_state, data.n_features)
        reduction = ExponentiatedGradient(
            base, moment, max_iter=max_iter, sample_weight_name="model__sample_weight"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)
            reduction.fit(data.X, data.y, sensitive_features=data.group)
        predicted = reduction.predict(data.X_test, random_state=random_state)
        counts = confusion_counts(data.y_test, predicted, data.group_test)
        rows.append(
            {"constraint": constraint, "bound": bound}
            | {f"test_{k}": v for k, v in objectives_from_counts(counts).items()}
        )
    return pd.DataFrame(rows)

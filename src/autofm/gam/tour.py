"""Tour step: a GAM fitted to scikit-learn's breast cancer data in one forward pass."""

from __future__ import annotations

import time
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autofm.core.report import Report
from autofm.core.runtime import setup_torch
from autofm.core.tour import TourStep
from autofm.data.tables import load_sklearn
from autofm.gam.estimators import GAMformerClassifier
from autofm.gam.metrics import score_classifier


def step(workdir: Path, seed: int) -> TourStep:
    """Fit GAMformer on 75% of breast_cancer, score the rest, plot the shape functions."""
    setup_torch()
    X, y = load_sklearn("breast_cancer")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    started = time.perf_counter()
    gam = GAMformerClassifier(random_state=seed).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    metrics = score_classifier(y_test, gam.predict_proba(X_test), gam.classes_)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(X_train, y_train)
    baseline_auc = score_classifier(y_test, baseline.predict_proba(X_test), baseline.classes_)[
        "roc_auc"
    ]
    importances = gam.feature_importances()
    report = Report("gam: GAMformer on breast_cancer")
    report.text(
        f"{len(X_train)} training rows × {X.shape[1]} features fitted in {fit_seconds:.2f} s by "
        f"one forward pass; test ROC AUC {metrics['roc_auc']:.3f} (logistic regression "
        f"{baseline_auc:.3f})."
    )
    report.table([{"feature": k, "importance": v} for k, v in importances.head(8).items()])
    report.figure(
        gam.plot_shape_functions(max_features=8),
        "the 8 most important shape functions (log-odds of benign) over the data density",
    )
    summary = (
        f"breast_cancer: test AUC {metrics['roc_auc']:.3f} (logistic regression "
        f"{baseline_auc:.3f}), fit {fit_seconds:.2f} s; top feature {importances.index[0]}"
    )
    return TourStep(
        "gam",
        summary,
        {**metrics, "fit_seconds": fit_seconds, "logistic_regression_roc_auc": baseline_auc},
        report,
    )

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score

from autofm.core.errors import ValidationError
from autofm.gam.binning import apply_bins
from autofm.gam.estimators import GAMformerClassifier, GAMformerRegressor, load_gamformer


def _binary(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + np.sin(2 * X[:, 1]) + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_probabilities_equal_a_direct_forward_pass(tiny_checkpoint):
    X, y = _binary()
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint, shrinkage="none").fit(X, y)
    assert np.all(gam.feature_scales_ == 1.0)
    model = load_gamformer(tiny_checkpoint)
    n_bins = model.config.n_bins
    bins = np.stack([apply_bins(X[:, j], gam.bin_edges_[j], n_bins) for j in range(4)], 1)
    with torch.no_grad():
        logits = model(
            torch.as_tensor(bins)[None], torch.as_tensor(y)[None], torch.as_tensor(bins)[None]
        )[0, :, :2]
    expected = torch.softmax(logits.double(), dim=-1).numpy()
    np.testing.assert_allclose(gam.predict_proba(X), expected, atol=1e-5)
    assert set(gam.predict(X)) <= {0, 1}


def test_sklearn_contract(tiny_checkpoint):
    X, y = _binary()
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint, max_context_rows=50)
    scores = cross_val_score(gam, X, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    fitted = gam.fit(pd.DataFrame(X, columns=list("abcd")), np.array(["no", "yes"])[y])
    assert fitted is gam and list(gam.classes_) == ["no", "yes"]
    assert list(gam.feature_names_in_) == list("abcd") and gam.n_features_in_ == 4
    # as in scikit-learn: names only from string column names, checked at predict time
    assert not hasattr(clone(gam).fit(X, y), "feature_names_in_")
    with pytest.raises(ValidationError, match="feature names should match"):
        gam.predict(pd.DataFrame(X, columns=list("dcba")))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(
            gam.predict(X), gam.predict(pd.DataFrame(X, columns=list("abcd")))
        )


def test_explanation_adds_up_to_the_decision_function(tiny_checkpoint):
    X, y = _binary()
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(X, y)
    explanation = gam.explain(X[:10])
    contributions = explanation["contributions"]["logit(1)"].to_numpy()
    np.testing.assert_allclose(
        explanation["intercept"][0] + contributions.sum(axis=1), gam.decision_function(X[:10])
    )
    # each shape function averages to zero over the training rows
    for j, table in enumerate(gam.shape_functions_):
        counts = gam.bin_counts_[j][:-1]
        assert abs((counts * table[:, 0]).sum() / counts.sum()) < 1e-9
        assert len(table) == len(gam.bin_edges_[j]) + 1
    importances = explanation["importances"]
    assert set(importances) == {0, 1, 2, 3} or set(importances) == {"0", "1", "2", "3"}
    assert list(importances.values()) == sorted(importances.values(), reverse=True)


def test_feature_order_does_not_change_predictions(tiny_checkpoint):
    X, y = _binary()
    order = [2, 0, 3, 1]
    a = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(X, y).predict_proba(X)
    b = (
        GAMformerClassifier(checkpoint=tiny_checkpoint)
        .fit(X[:, order], y)
        .predict_proba(X[:, order])
    )
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_subsample_averaging_for_many_rows(tiny_checkpoint):
    X, y = _binary(n=400)
    one_pass = GAMformerClassifier(checkpoint=tiny_checkpoint, max_context_rows=400).fit(X, y)
    averaged = GAMformerClassifier(
        checkpoint=tiny_checkpoint, max_context_rows=100, n_subsamples=6, random_state=3
    ).fit(X, y)
    again = clone(averaged).fit(X, y)
    np.testing.assert_array_equal(averaged.predict_proba(X), again.predict_proba(X))
    # the bins come from all rows either way; the averaged tables differ from a single pass
    for a, b in zip(one_pass.bin_edges_, averaged.bin_edges_):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(one_pass.predict_proba(X), averaged.predict_proba(X))


def test_multiclass_categorical_missing_and_constant_columns(tiny_checkpoint):
    X, y = load_iris(return_X_y=True, as_frame=True)
    X = X.copy()
    X["colour"] = np.where(y == 0, "red", np.where(y == 1, "green", "blue"))
    X["constant"] = 1.0
    X["empty"] = np.nan
    X.iloc[::7, 0] = np.nan
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(X, y)
    probabilities = gam.predict_proba(X)
    assert probabilities.shape == (150, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    curves = gam.explain()["curves"]
    assert curves["colour"]["kind"] == "categorical"
    assert curves["colour"]["categories"] == ["blue", "green", "red"]
    np.testing.assert_array_equal(gam.shape_functions_[5], 0.0)  # constant column
    np.testing.assert_array_equal(gam.shape_functions_[6], 0.0)  # all-missing column
    # an unseen category is treated like a missing value
    unseen = X.iloc[:2].copy()
    unseen["colour"] = "purple"
    missing = X.iloc[:2].copy()
    missing["colour"] = np.nan
    np.testing.assert_allclose(gam.predict_proba(unseen), gam.predict_proba(missing))
    figure = gam.plot_shape_functions()
    assert sum(axis.get_visible() for axis in figure.axes if axis.get_title()) == 7


def test_regressor_predicts_in_target_units(tiny_checkpoint):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    y = 1000.0 + 50.0 * (X[:, 0] + 0.2 * rng.normal(size=150))
    reg = GAMformerRegressor(checkpoint=tiny_checkpoint).fit(X, y)
    prediction = reg.predict(X)
    assert prediction.shape == (150,)
    # centred shape functions: the mean prediction over the training rows is the intercept
    np.testing.assert_allclose(prediction.mean(), reg.intercept_[0], rtol=1e-12)
    # y is standardised for the model, so predictions follow affine changes of y's units
    rescaled = GAMformerRegressor(checkpoint=tiny_checkpoint).fit(X, 3.0 * y - 7.0)
    np.testing.assert_allclose(rescaled.predict(X), 3.0 * prediction - 7.0, rtol=1e-6)
    assert np.isfinite(reg.score(X, y))


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.ones((20, 2)), np.zeros(20), "only one class"),
        (np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 12, "at most 10"),
        (np.array([[1.0, np.inf]] * 10), np.arange(10) % 2, "infinite"),
        (np.ones(10), np.arange(10) % 2, "2-dimensional"),
        (np.ones((10, 0)), np.arange(10) % 2, "0 feature"),
        (sparse.csr_matrix(np.eye(10)), np.arange(10) % 2, "sparse"),
        (np.ones((10, 2)), None, "target y is None"),
        (np.ones((10, 2)), np.linspace(0, 1, 10).reshape(5, 2), "1-dimensional"),
        (np.random.default_rng(0).normal(size=(40, 2)), np.linspace(0, 1, 40), "continuous"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(tiny_checkpoint, X, y, message):
    with pytest.raises(ValidationError, match=message):
        GAMformerClassifier(checkpoint=tiny_checkpoint).fit(X, y)


def test_wrong_column_count_and_memory_limit(tiny_checkpoint):
    X, y = _binary()
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(X, y)
    with pytest.raises(ValidationError, match="is expecting 4 features"):
        gam.predict(X[:, :3])
    wide = np.random.default_rng(0).normal(size=(60, 50))
    with pytest.raises(ValidationError, match="max_cells=1000"):
        GAMformerClassifier(checkpoint=tiny_checkpoint, max_cells=1000).fit(wide, y[:60])


def test_crossfit_shrinkage_scales_each_shape_function(tiny_checkpoint):
    X, y = _binary(n=200)
    plain = GAMformerClassifier(checkpoint=tiny_checkpoint, shrinkage="none").fit(X, y)
    shrunk = GAMformerClassifier(checkpoint=tiny_checkpoint, shrinkage="crossfit").fit(X, y)
    scales = shrunk.feature_scales_
    assert scales.shape == (4,) and np.all((scales >= 0) & (scales <= 3))
    for j in range(4):
        np.testing.assert_allclose(
            shrunk.shape_functions_[j], scales[j] * plain.shape_functions_[j]
        )
    contributions = shrunk.explain(X)["contributions"]["logit(1)"].to_numpy()
    np.testing.assert_allclose(
        shrunk.intercept_[0] + contributions.sum(axis=1), shrunk.decision_function(X)
    )
    regressor = GAMformerRegressor(checkpoint=tiny_checkpoint).fit(X, X[:, 0] + 5.0)
    assert regressor.feature_scales_.shape == (4,)
    with pytest.raises(ValidationError, match="shrinkage"):
        GAMformerClassifier(checkpoint=tiny_checkpoint, shrinkage="lasso").fit(X, y)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_context_rows", 0),
        ("max_context_rows", -5),
        ("n_subsamples", 0),
        ("shrinkage_folds", 1),
    ],
)
def test_settings_that_would_be_ignored_are_refused(tiny_checkpoint, name, value):
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(ValidationError, match=name):
        GAMformerClassifier(checkpoint=tiny_checkpoint, **{name: value}).fit(X, y)

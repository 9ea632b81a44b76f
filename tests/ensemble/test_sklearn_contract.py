"""The scikit-learn estimator contract, as far as it applies to ensemblers.

Every ensembler is a scikit-learn classifier, but its input is P [N samples, M models, C classes]
of probabilities, not a 2-D feature matrix X [n_samples, n_features]. Most of scikit-learn's
estimator checks generate 2-D X (blobs, regression data, sparse matrices, 1-feature and 1-sample
arrays) and would only test that we refuse it. The ensemblers declare their input in
`__sklearn_tags__` (`input_tags.two_d_array=False`, `three_d_array=True`, `positive_only=True`),
and for such estimators `parametrize_with_checks` yields only the data-free cloning check and
skips the rest with a SkipTestWarning.

So this file runs:
* `parametrize_with_checks` (cloning) and every scikit-learn check that needs no data: tags,
  repr, no attributes set in `__init__`, default-constructible parameters, no validation in
  `__init__`/`set_params`, get_params/set_params round trips, mixin order, NotFittedError before
  fit;
* the data-dependent parts of the contract, with 3-D predictions, mirroring scikit-learn's
  check_estimators_fit_returns_self, check_dont_overwrite_parameters,
  check_estimators_overwrite_params, check_fit_check_is_fitted, check_fit_idempotent,
  check_estimators_pickle, check_methods_sample_order_invariance,
  check_methods_subset_invariance and check_requires_y_none;
* model selection on 3-D input: cross_val_score and score == accuracy.

Not applicable, with reasons: n_features_in_/feature names (P has no features: `n_models_` and
`n_classes_` play that part and are checked at predict time); sparse, complex, object-dtype and
string X (P holds probabilities); 1-D X and single-feature X (P is 3-D by definition);
sample_weight and class_weight (no ensembler takes them); a single class in y (allowed with a
warning, since P fixes the number of classes).
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, SkipTestWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_estimators_unfitted,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    estimator_checks_generator,
    parametrize_with_checks,
)
from sklearn.utils.validation import check_is_fitted

from autofm.core.errors import ValidationError
from autofm.ensemble import (
    AkaikeWeights,
    GreedyEnsemble,
    NeuralEnsembler,
    PseudoBMA,
    Quick,
    RandomK,
    SingleBest,
    SoftmaxWeights,
    Stacking,
    TopK,
)
from tests.ensemble.conftest import random_predictions

# every ensembler class, with settings that keep a fit well under a second
ENSEMBLERS = [
    SingleBest(),
    TopK(k=2),
    RandomK(k=2, random_state=0),
    Quick(),
    GreedyEnsemble(n_rounds=10),
    GreedyEnsemble(n_rounds=5, n_bags=3, random_state=0),
    AkaikeWeights(),
    PseudoBMA(n_bootstrap=50, random_state=0),
    SoftmaxWeights(),
    Stacking(),
    NeuralEnsembler(max_epochs=5, random_state=0),
    NeuralEnsembler(mode="stacking", max_epochs=5, random_state=0),
]

DATA_FREE_CHECKS = [
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_do_not_raise_errors_in_init_or_set_params,
    check_get_params_invariance,
    check_set_params,
    check_mixin_order,
    check_estimators_unfitted,
]


def _id(estimator) -> str:
    return repr(estimator).replace("\n", "").replace(" ", "")


with warnings.catch_warnings():
    # the SkipTestWarning for the 2-D checks is asserted in test_two_d_checks_are_skipped
    warnings.simplefilter("ignore", SkipTestWarning)
    sklearn_checks = parametrize_with_checks(ENSEMBLERS)


@sklearn_checks
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_two_d_checks_are_skipped(estimator):
    with pytest.warns(SkipTestWarning, match="requires input"):
        checks = [check for _, check in estimator_checks_generator(estimator)]
    assert [check.func.__name__ for check in checks] == ["check_estimator_cloneable"]


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_data_free_sklearn_checks(estimator, check):
    with warnings.catch_warnings():
        # check_set_params warns about each fuzz value set_params refuses; none is refused, and
        # a refusal would change the parameters, which the check asserts against
        warnings.simplefilter("error")
        check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_fit_returns_self_and_sets_only_trailing_underscore_attributes(estimator):
    P, y = random_predictions(n=60, m=4, c=3, seed=1)
    unfitted = clone(estimator)
    params = joblib.hash(unfitted.get_params())
    before = dict(vars(unfitted))
    assert unfitted.fit(P, y) is unfitted
    added = set(vars(unfitted)) - set(before)
    assert added and all(name.endswith("_") for name in added), sorted(added)
    assert all(vars(unfitted)[name] is value for name, value in before.items())
    assert joblib.hash(unfitted.get_params()) == params


@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_not_fitted_until_fit_and_clone_forgets_the_fit(estimator):
    P, y = random_predictions(n=60, m=4, c=3, seed=2)
    unfitted = clone(estimator)
    with pytest.raises(NotFittedError):
        check_is_fitted(unfitted)
    with pytest.raises(NotFittedError):
        unfitted.weights(P)
    fitted = clone(estimator).fit(P, y)
    check_is_fitted(fitted)
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(fitted))


@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_refit_pickle_and_batches_give_the_same_predictions(estimator):
    P, y = random_predictions(n=60, m=4, c=3, seed=3)
    other, other_labels = random_predictions(n=60, m=4, c=3, seed=4)
    fitted = clone(estimator).fit(P, y)
    proba, weights = fitted.predict_proba(P), fitted.weights(P)
    # fitting again, after a fit on other data, forgets that fit (check_fit_idempotent)
    refitted = clone(estimator).fit(other, other_labels).fit(P, y)
    np.testing.assert_allclose(refitted.predict_proba(P), proba, rtol=1e-7, atol=1e-9)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(P), proba)
    # a sample's prediction depends on that sample only: not on order or batch
    order = np.random.default_rng(0).permutation(len(P))
    np.testing.assert_allclose(fitted.predict_proba(P[order]), proba[order], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fitted.weights(P[order]), weights[order], rtol=1e-6, atol=1e-7)
    halves = np.concatenate([fitted.predict_proba(P[:25]), fitted.predict_proba(P[25:])])
    np.testing.assert_allclose(halves, proba, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("estimator", ENSEMBLERS, ids=_id)
def test_fit_without_labels_says_so(estimator):
    P, _ = random_predictions(n=30, m=3, c=2)
    with pytest.raises(ValidationError, match="requires labels, but y_val is None"):
        clone(estimator).fit(P, None)


@pytest.mark.parametrize(
    "estimator",
    [GreedyEnsemble(n_rounds=5), SoftmaxWeights(), Stacking(), TopK(k=2)],
    ids=_id,
)
def test_model_selection_on_three_d_input(estimator, predictions):
    P, y = predictions
    folds = StratifiedKFold(n_splits=3)
    scores = cross_val_score(clone(estimator), P, y, cv=folds)
    expected = [
        np.mean(clone(estimator).fit(P[train], y[train]).predict(P[test]) == y[test])
        for train, test in folds.split(P, y)
    ]
    np.testing.assert_allclose(scores, expected)
    fitted = clone(estimator).fit(P, y)
    assert fitted.score(P, y) == pytest.approx(np.mean(fitted.predict(P) == y))

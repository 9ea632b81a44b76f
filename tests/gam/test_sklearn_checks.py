"""scikit-learn's own estimator checks, on the shipped checkpoint (what users get).

No check is expected to fail. The deliberate differences from a plain numeric estimator are
declared as tags in `_GAMformerBase.__sklearn_tags__`: NaN is allowed (its own bin), and
string/object/category columns are accepted as categorical features. (The 60-step test
checkpoint of conftest.py passes the contract checks too but predicts too poorly for
`check_regressors_train`'s R² > 0.5, a check of quality, not of the contract.)
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from autofm.gam import GAMformerClassifier, GAMformerRegressor


@parametrize_with_checks([GAMformerClassifier(), GAMformerRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

import numpy as np

from autofm.gam.shrinkage import fit_feature_scales


def test_scales_recover_known_weights_and_drop_a_noise_feature():
    rng = np.random.default_rng(0)
    contributions = rng.normal(size=(6000, 3, 1))
    logit = 0.5 + contributions[:, 0, 0] + 2.0 * contributions[:, 2, 0]
    y = (rng.random(6000) < 1 / (1 + np.exp(-logit))).astype(float)
    scales, offset = fit_feature_scales(contributions, np.zeros((6000, 1)), y, "binary")
    np.testing.assert_allclose(scales, [1.0, 0.0, 2.0], atol=0.12)
    np.testing.assert_allclose(offset, [0.5], atol=0.1)
    # the offset is a correction to the given base score
    shifted, offset = fit_feature_scales(contributions, np.full((6000, 1), 0.5), y, "binary")
    np.testing.assert_allclose(shifted, scales, atol=2e-3)
    assert abs(offset[0]) < 0.1


def test_scales_for_regression_and_multiclass():
    rng = np.random.default_rng(1)
    contributions = rng.normal(size=(3000, 2, 1))
    y = 0.5 * contributions[:, 0, 0] - 1.0 + 0.1 * rng.normal(size=3000)
    scales, offset = fit_feature_scales(contributions, np.zeros((3000, 1)), y, "regression")
    np.testing.assert_allclose(scales, [0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(offset, [-1.0], atol=0.02)
    # a feature pointing the wrong way gets 0, never a negative factor
    scales, _ = fit_feature_scales(-contributions, np.zeros((3000, 1)), y, "regression")
    assert np.all(scales >= 0) and scales[0] == 0.0
    logits = rng.normal(size=(4000, 2, 3))
    labels = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits[:, 0]])
    scales, _ = fit_feature_scales(logits, np.zeros((4000, 3)), labels, "multiclass")
    np.testing.assert_allclose(scales, [1.0, 0.0], atol=0.15)


def test_regression_scales_do_not_depend_on_the_unit_of_y():
    rng = np.random.default_rng(2)
    contributions = rng.normal(size=(2000, 3, 1))
    y = 0.4 * contributions[:, 0, 0] + 0.1 * rng.normal(size=2000) + 3.0
    reference, offset = fit_feature_scales(contributions, np.zeros((2000, 1)), y, "regression")
    np.testing.assert_allclose(reference, [0.4, 0.0, 0.0], atol=0.02)
    for unit in (1e-4, 1e4):  # the same task measured in another unit
        scales, shifted = fit_feature_scales(
            contributions * unit, np.zeros((2000, 1)), y * unit, "regression"
        )
        np.testing.assert_allclose(scales, reference, atol=1e-4)
        np.testing.assert_allclose(shifted, offset * unit, rtol=1e-4)


def test_subsampled_fit_cross_fits_from_its_own_passes(tiny_checkpoint, monkeypatch):
    """Above max_context_rows the subsample passes are the cross-fit: no extra forward passes
    (K-fold shrinkage would add K more rounds of them), and the result is the plain fit with
    each shape function scaled by its factor."""
    from autofm.gam import GAMformerClassifier
    from autofm.gam.model import GAMformer

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
    calls = []
    original = GAMformer.shape_functions
    monkeypatch.setattr(
        GAMformer,
        "shape_functions",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    kwargs = dict(checkpoint=tiny_checkpoint, max_context_rows=100, n_subsamples=5, random_state=0)
    shrunk = GAMformerClassifier(**kwargs).fit(x, y)
    assert len(calls) == 5  # the five subsample passes, nothing more
    plain = GAMformerClassifier(**kwargs, shrinkage="none").fit(x, y)
    ratio = [
        s[np.abs(p[:, 0]) > 1e-9, 0] / p[np.abs(p[:, 0]) > 1e-9, 0]
        for s, p in zip(shrunk.shape_functions_, plain.shape_functions_)
    ]
    for j, r in enumerate(ratio):  # each shape function is the plain one times its factor
        np.testing.assert_allclose(r, shrunk.feature_scales_[j], rtol=1e-6)

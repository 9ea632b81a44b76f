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

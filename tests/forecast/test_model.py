import numpy as np
import pytest
import torch

from autofm.core.errors import CheckpointError, ValidationError
from autofm.forecast.features import N_TIME_FEATURES
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig, forecast_loss, seasonal_anchor
from autofm.forecast.priors import Mamba4CastPrior
from autofm.pfn.prior import TaskBatch

from .helpers import TINY, tiny_model


def inputs(batch=3, n=24, h=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, n, N_TIME_FEATURES, generator=g),
        torch.randn(batch, n, generator=g).cumsum(1),
        torch.randn(batch, h, N_TIME_FEATURES, generator=g),
    )


def test_output_shapes():
    model = tiny_model()
    out = model(*inputs())
    assert out["point"].shape == (3, 6)
    assert out["quantiles"].shape == (3, 6, 3)
    assert out["loc"].shape == out["scale"].shape == (3, 1)


def test_forecast_of_step_k_ignores_later_target_tokens():
    # the network is causal, so the first k forecasts do not depend on the horizon length
    model = tiny_model().eval()
    x, y, xq = inputs(h=8)
    long_point, _ = model.predict(x, y, xq)
    short_point, _ = model.predict(x, y, xq[:, :3])
    assert torch.allclose(long_point[:, :3], short_point, atol=1e-5)


def test_predictions_are_affine_equivariant():
    # min-max scaling: forecasting a + b·y gives a + b·forecast(y) for b > 0
    model = tiny_model().eval()
    x, y, xq = inputs()
    point, quantiles = model.predict(x, y, xq)
    point2, quantiles2 = model.predict(x, 100.0 + 7.0 * y, xq)
    assert torch.allclose(point2, 100.0 + 7.0 * point, rtol=1e-4, atol=1e-3)
    assert torch.allclose(quantiles2, 100.0 + 7.0 * quantiles, rtol=1e-4, atol=1e-3)


def test_quantiles_are_sorted_and_nan_context_is_masked():
    model = tiny_model().eval()
    x, y, xq = inputs()
    y[:, :5] = float("nan")
    y[0, 10] = float("nan")
    point, quantiles = model.predict(x, y, xq)
    assert torch.isfinite(point).all() and torch.isfinite(quantiles).all()
    assert (quantiles.diff(dim=-1) >= 0).all()


def test_loss_decreases_when_fitting_one_batch():
    torch.manual_seed(0)
    model = tiny_model()
    batch = Mamba4CastPrior().sample(8, 32, 10, N_TIME_FEATURES, torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(forecast_loss(model, batch).detach())
    for _ in range(40):
        optimizer.zero_grad()
        loss = forecast_loss(model, batch)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.6 * first


def test_loss_respects_target_mask():
    model = tiny_model()
    x, y, xq = inputs(batch=2, h=4)
    target = torch.randn(2, 4)
    mask = torch.tensor([[False, False, True, True]] * 2)
    output = model(x, y, xq)
    changed = target.clone()
    changed[:, :2] += 100.0
    a = model.loss(output, TaskBatch(x, y, xq, target, {"target_mask": mask}))
    b = model.loss(output, TaskBatch(x, y, xq, changed, {"target_mask": mask}))
    assert torch.allclose(a, b)


def test_config_round_trip_and_presets():
    config = Mamba4CastConfig(**TINY)
    assert Mamba4CastConfig.from_dict(config.to_dict()) == config
    cpu = Mamba4Cast(Mamba4CastConfig.preset("cpu"))
    n_parameters = sum(p.numel() for p in cpu.parameters())
    assert 3e5 < n_parameters < 1.5e6
    assert Mamba4CastConfig.preset("paper").d_model == 1024
    with pytest.raises(ValidationError):
        Mamba4CastConfig.preset("huge")
    with pytest.raises(CheckpointError, match=r"key\(s\) \['width'\]"):
        Mamba4CastConfig.from_dict({"width": 3})
    with pytest.raises(CheckpointError, match="anchor"):
        Mamba4CastConfig.from_dict({"anchor": "mean"})
    with pytest.raises(ValidationError, match="anchor"):
        Mamba4CastConfig(anchor="mean")
    assert Mamba4CastConfig.preset("cpu").anchor == "seasonal"


def test_old_residual_to_last_configs_load_as_anchors():
    old = Mamba4CastConfig(**TINY).to_dict()
    del old["anchor"]
    assert Mamba4CastConfig.from_dict({**old, "residual_to_last": True}).anchor == "last"
    assert Mamba4CastConfig.from_dict({**old, "residual_to_last": False}).anchor == "none"
    assert Mamba4CastConfig.from_dict(old).anchor == "none"


def brute_force_seasonal_naive(row: np.ndarray, m: int, h: int) -> np.ndarray:
    """Seasonal naive of one context row (NaN = missing/padding), in plain numpy loops."""
    observed = np.flatnonzero(~np.isnan(row))
    filled = row.copy()
    for t in range(1, len(row)):
        if np.isnan(filled[t]):
            filled[t] = filled[t - 1]
    last = filled[-1]
    if m <= 1 or len(row) - observed[0] < m:
        return np.full(h, last)
    season = filled[len(row) - m :]
    return np.array([season[k % m] for k in range(h)])


@pytest.mark.parametrize("seed", range(4))
def test_seasonal_anchor_matches_brute_force_seasonal_naive(seed):
    rng = np.random.default_rng(seed)
    batch, n, h = 40, 30, 17
    y = rng.normal(size=(batch, n))
    y[rng.random((batch, n)) < 0.2] = np.nan  # scattered missing values
    padding = rng.integers(0, n - 1, batch)
    for row in range(batch):
        y[row, : padding[row]] = np.nan  # short contexts (left padding)
        y[row, -1 - rng.integers(0, 3)] = rng.normal()  # at least one observed point
    seasons = rng.integers(0, 14, batch)  # includes 0 and 1 (no season) and m > context
    anchor = seasonal_anchor(
        torch.from_numpy(np.nan_to_num(y)), torch.from_numpy(~np.isnan(y)), h,
        torch.from_numpy(seasons),
    )  # fmt: skip
    expected = np.stack([brute_force_seasonal_naive(y[r], seasons[r], h) for r in range(batch)])
    assert np.array_equal(anchor.numpy(), expected)
    naive = seasonal_anchor(torch.from_numpy(np.nan_to_num(y)), torch.from_numpy(~np.isnan(y)), h)
    assert np.array_equal(
        naive.numpy(), np.stack([brute_force_seasonal_naive(y[r], 1, h) for r in range(batch)])
    )


def test_residual_head_starts_as_the_naive_forecast(tmp_path):
    from autofm.core.checkpoint import save_model
    from autofm.forecast.training import initialise_from

    level_model = tiny_model()
    stem = save_model(tmp_path / "level", level_model)
    residual = Mamba4Cast(Mamba4CastConfig(**TINY, anchor="last"))
    initialise_from(residual, stem)
    assert torch.equal(residual.blocks[0].mixer.A_log, level_model.blocks[0].mixer.A_log)
    x, y, xq = inputs()
    y[1, -2:] = float("nan")  # the last *observed* value is the anchor
    point, quantiles = residual.eval().predict(x, y, xq)
    assert torch.allclose(point[0], y[0, -1].expand(6))
    assert torch.allclose(point[1], y[1, -3].expand(6))
    assert torch.allclose(quantiles[2], y[2, -1].expand(6, 3))


def test_warm_start_into_a_seasonal_anchor_zeroes_the_head(tmp_path):
    from autofm.core.checkpoint import save_checkpoint
    from autofm.forecast.training import initialise_from

    source = Mamba4Cast(Mamba4CastConfig(**TINY, anchor="last"))
    config = source.config.to_dict()
    config["residual_to_last"] = config.pop("anchor") == "last"  # as the old checkpoint wrote it
    stem = save_checkpoint(tmp_path / "last", source, kind="mamba4cast", model=config)
    seasonal = Mamba4Cast(Mamba4CastConfig(**TINY, anchor="seasonal"))
    initialise_from(seasonal, stem)
    assert torch.equal(seasonal.input.embed.weight, source.input.embed.weight)
    assert not seasonal.head.weight.any() and not seasonal.head.bias.any()
    x, y, xq = inputs(n=30, h=8)
    point, _ = seasonal.eval().predict(x, y, xq, torch.tensor([7, 1, 40]))
    assert torch.allclose(point[0], y[0, -7:].repeat(2)[:8])
    assert torch.allclose(point[1], y[1, -1].expand(8))
    assert torch.allclose(point[2], y[2, -1].expand(8))  # season longer than the context


def test_warm_start_accepts_a_pretrained_name(tmp_path, monkeypatch):
    from autofm.core.checkpoint import save_model
    from autofm.forecast.training import initialise_from

    source = tiny_model()
    save_model(tmp_path / "my-forecaster", source)
    monkeypatch.setenv("AUTOFM_CHECKPOINTS", str(tmp_path))
    target = Mamba4Cast(Mamba4CastConfig(**TINY))
    initialise_from(target, "my-forecaster")
    assert torch.equal(target.head.weight, source.head.weight)
    assert torch.equal(target.blocks[0].mixer.A_log, source.blocks[0].mixer.A_log)

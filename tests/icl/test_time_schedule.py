import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.icl.train import TrainConfig, train


def test_lr_at_fraction_warms_up_then_anneals_to_the_floor():
    config = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert config.lr_at_fraction(0.05) == pytest.approx(0.5)
    assert config.lr_at_fraction(0.1) == pytest.approx(1.0)
    assert config.lr_at_fraction(0.55) == pytest.approx(0.55)
    assert config.lr_at_fraction(1.0) == pytest.approx(0.1)
    assert config.lr_at_fraction(3.0) == pytest.approx(0.1)
    # the step schedule and the time schedule agree when time is proportional to steps
    for step in (10, 30, 77, 99):
        assert config.lr_at_fraction(step / 100) == pytest.approx(config.lr_at(step))


class _ConstantPrior:
    def sample(self, batch_size, n_context, n_query, n_features, generator):
        from autofm.icl.prior import TaskBatch

        x = torch.randn(batch_size, n_context + n_query, n_features, generator=generator)
        y = x.sum(-1)
        return TaskBatch(x[:, :n_context], y[:, :n_context], x[:, n_context:], y[:, n_context:])


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def forward(self, batch):
        return self.layer(batch.x_query).squeeze(-1)

    def loss(self, output, batch):
        return ((output - batch.y_query) ** 2).mean()


def test_time_schedule_stops_at_max_seconds_with_an_annealed_rate(tmp_path):
    config = TrainConfig(
        steps=10**7,
        batch_size=4,
        n_context=2,
        n_query=2,
        lr=0.1,
        warmup_steps=10**5,
        max_seconds=0.5,
        time_schedule=True,
        threads=1,
        checkpoint_every=10**6,
    )
    result = train(_Linear(), _ConstantPrior(), config, run_dir=tmp_path)
    assert 1 < result.steps_done < 10**7
    import pandas as pd

    lrs = pd.read_csv(tmp_path / "loss.csv")["lr"]
    assert lrs.iloc[-1] < 0.02 * 0.1 + 1e-3  # cosine has (nearly) reached zero
    assert lrs.max() > 0.05


def test_time_schedule_needs_max_seconds():
    with pytest.raises(ValidationError, match="max_seconds"):
        train(_Linear(), _ConstantPrior(), TrainConfig(steps=5, time_schedule=True))

import pandas as pd
import pytest
import torch

from autofm.pfn.prior import TaskBatch
from autofm.pfn.train import PriorTrainConfig, train


def test_step_schedule_warms_up_then_decays_to_the_floor():
    config = PriorTrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert config.lr_at(0) == pytest.approx(0.1)
    assert config.lr_at(9) == pytest.approx(1.0)
    assert config.lr_at(10) == pytest.approx(1.0)
    assert config.lr_at(55) == pytest.approx(0.55)
    assert config.lr_at(100) == pytest.approx(0.1)
    lrs = [config.lr_at(s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_the_schedule_follows_whichever_budget_is_further_along():
    config = PriorTrainConfig(
        steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1, max_seconds=10.0
    )
    # the clock leads: 5.5 s of 10 s is 55% of the run, whatever the step
    assert config.schedule_progress(3, elapsed=5.5) == pytest.approx(0.55)
    assert config.lr_at(3, elapsed=5.5) == pytest.approx(0.55)
    # the steps lead: the clock is not consulted below their fraction
    assert config.lr_at(55, elapsed=1.0) == pytest.approx(config.lr_at(55))
    # the time budget is spent: the schedule is at its end
    assert config.lr_at(20, elapsed=20.0) == pytest.approx(0.1)
    # a time-only run (huge `steps`) warms up over the same fraction of its time
    timed = PriorTrainConfig(steps=10**7, warmup_steps=10**6, lr=1.0, max_seconds=10.0)
    assert timed.lr_at(5, elapsed=0.5) == pytest.approx(0.5, rel=1e-3)
    assert timed.lr_at(5, elapsed=1.0) == pytest.approx(1.0, rel=1e-3)


class _ConstantPrior:
    def sample(self, batch_size, n_context, n_query, n_features, generator):
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


def test_a_time_bounded_run_stops_at_max_seconds_with_an_annealed_rate(tmp_path):
    config = PriorTrainConfig(
        steps=10**7,
        batch_size=4,
        n_context=2,
        n_query=2,
        lr=0.1,
        warmup_steps=10**5,
        max_seconds=0.5,
        threads=1,
        checkpoint_every=10**6,
    )
    result = train(_Linear(), _ConstantPrior(), config, run_dir=tmp_path)
    assert 1 < result.steps_done < 10**7
    lrs = pd.read_csv(tmp_path / "loss.csv")["lr"]
    assert lrs.iloc[-1] < 0.02 * 0.1 + 1e-3  # cosine has (nearly) reached zero
    assert lrs.max() > 0.05

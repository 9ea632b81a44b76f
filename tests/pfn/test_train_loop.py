from pathlib import Path

import pytest
import torch

from autofm.core.checkpoint import load_checkpoint
from autofm.core.errors import CheckpointError
from autofm.pfn.prior import TaskBatch
from autofm.pfn.train import PriorTrainConfig, train

from ..ddp import run_two_ranks


class LinearPrior:
    """y = w·x + noise with a fresh w per task: the least-squares answer is learnable in context."""

    def sample(self, batch_size, n_context, n_query, n_features, generator):
        n = n_context + n_query
        x = torch.randn(batch_size, n, n_features, generator=generator)
        w = torch.randn(batch_size, n_features, 1, generator=generator)
        y = (x @ w).squeeze(-1) + 0.1 * torch.randn(batch_size, n, generator=generator)
        return TaskBatch(
            x[:, :n_context], y[:, :n_context], x[:, n_context:], y[:, n_context:], {"w": w}
        )


class MLPModel(torch.nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, width), torch.nn.GELU(), torch.nn.Linear(width, 1)
        )

    def forward(self, batch):
        slope = (batch.x_context[..., 0] * batch.y_context).mean(1, keepdim=True)
        features = torch.stack(
            [batch.x_query[..., 0], slope.expand_as(batch.x_query[..., 0]) * batch.x_query[..., 0]],
            -1,
        )
        return self.net(features).squeeze(-1)

    def loss(self, output, batch):
        return torch.nn.functional.mse_loss(output, batch.y_query)


def _config(**kw):
    base = dict(
        steps=60,
        batch_size=16,
        n_context=(20, 40),
        n_query=10,
        lr=1e-2,
        warmup_steps=5,
        checkpoint_every=20,
        threads=1,
    )
    base.update(kw)
    return PriorTrainConfig(**base)


def test_training_reduces_loss_and_writes_run_folder(tmp_path):
    torch.manual_seed(0)
    result = train(
        MLPModel(),
        LinearPrior(),
        _config(steps=150),
        run_dir=tmp_path,
        model_kind="mlp",
        model_config={"width": 32},
    )
    first, last = sum(result.losses[:15]) / 15, sum(result.losses[-15:]) / 15
    assert last < 0.5 * first
    assert (tmp_path / "loss.png").exists()
    assert len((tmp_path / "loss.csv").read_text().strip().splitlines()) == 151
    _, meta = load_checkpoint(tmp_path / "last")
    assert meta["training"]["step"] == 150 and meta["model"] == {"width": 32}
    assert meta["kind"] == "mlp" and meta["contents"] == "training-state"
    assert PriorTrainConfig.from_dict(meta["training"]["config"]) == _config(steps=150)


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    torch.manual_seed(1)
    straight = train(MLPModel(), LinearPrior(), _config(), run_dir=tmp_path / "a")
    torch.manual_seed(1)
    train(
        MLPModel(), LinearPrior(), _config(max_seconds=0.0), run_dir=tmp_path / "b"
    )  # stops after 1 step
    torch.manual_seed(99)  # a different init: resuming must overwrite it
    resumed = train(MLPModel(), LinearPrior(), _config(), run_dir=tmp_path / "b")
    assert resumed.steps_done == 60 and len(resumed.losses) == 59
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(CheckpointError, match="different model config"):
        train(
            MLPModel(), LinearPrior(), _config(), run_dir=tmp_path / "b", model_config={"other": 1}
        )


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_keeps_ranks_in_sync(tmp_path):
    proc = run_two_ranks(
        tmp_path / "ddp_train.py",
        f"""
        import sys, torch, torch.distributed as dist
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.pfn.test_train_loop import LinearPrior, MLPModel, _config
        from autofm.pfn.train import train
        torch.manual_seed(dist.get_rank() if dist.is_initialized() else int(os.environ['RANK']))
        result = train(MLPModel(), LinearPrior(), _config(steps=20), run_dir={str(tmp_path / "run")!r})
        flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
        print("rank", dist.get_rank(), "ok", flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("ok") == 2
    assert (tmp_path / "run" / "last.json").exists()

import dataclasses
import textwrap

import numpy as np
import pytest
import torch

from autofm.core.errors import CheckpointError, ValidationError
from autofm.data.text import split_tokens
from autofm.lm import GPT, GPTConfig, TrainConfig, evaluate, train

from ..ddp import run_two_ranks

TINY = GPTConfig(width=32, depth=1, head_size=8, block_size=16, base_width=32)


def test_schedules():
    constant = TrainConfig(warmup_fraction=0.1)
    assert [constant.lr_factor(s, 100) for s in (0, 4, 9, 10, 99)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    wsd = TrainConfig(schedule="wsd", warmup_fraction=0.1, decay_fraction=0.2)
    assert wsd.lr_factor(50, 100) == 1.0
    assert wsd.lr_factor(80, 100) == 1.0 and wsd.lr_factor(90, 100) == pytest.approx(0.5)
    assert wsd.lr_factor(99, 100) == pytest.approx(0.05)
    with pytest.raises(ValidationError, match="schedule"):
        TrainConfig(schedule="cosine")


def test_token_budget():
    assert TrainConfig(tokens=1000).total_tokens(10) == 1000
    assert TrainConfig().total_tokens(10) == 200  # 20 tokens per parameter by default
    assert TrainConfig(tokens_per_parameter=2.5).total_tokens(10) == 25


def test_training_lowers_validation_loss_and_is_reproducible(corpus_tokens):
    train_tokens, valid_tokens = split_tokens(corpus_tokens, 0.1)
    config = TrainConfig(lr=1e-2, batch_size=8, tokens=8 * 16 * 30, eval_every=10, eval_blocks=16)
    first = train(GPT(TINY, seed=0), train_tokens, valid_tokens, config)
    again = train(GPT(TINY, seed=0), train_tokens, valid_tokens, config)
    losses = [row["val_loss"] for row in first.history]
    assert [row["tokens"] for row in first.history] == [0, 1280, 2560, 3840]
    assert losses[-1] < losses[0] - 1.0
    assert first.final_val_loss == again.final_val_loss
    assert first.tokens_to_reach(losses[1]) == 1280 and first.tokens_to_reach(0.0) is None
    assert evaluate(first.model, valid_tokens, 16) == pytest.approx(first.final_val_loss)


def test_mup_learning_rate_multipliers_reach_the_optimizer(corpus_tokens, monkeypatch):
    seen = {}
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.update({g["lr_multiplier"]: g["lr"] for g in self.param_groups})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    model = GPT(TINY.replace(width=128), seed=0)
    config = TrainConfig(lr=1e-3, batch_size=2, tokens=2 * 16, warmup_fraction=0.0)
    train(model, corpus_tokens, None, config)
    assert seen == {0.25: pytest.approx(2.5e-4), 1.0: pytest.approx(1e-3)}


def test_divergence_is_reported_not_raised(corpus_tokens):
    model = GPT(TINY, seed=0)
    with torch.no_grad():
        model.wte.weight.fill_(float("nan"))
    result = train(model, corpus_tokens, corpus_tokens, TrainConfig(tokens=16 * 16 * 3))
    assert result.diverged and np.isnan(result.final_val_loss)


def test_too_short_corpus_is_refused():
    with pytest.raises(ValidationError, match="need more than block_size"):
        train(GPT(TINY, seed=0), np.zeros(10, dtype=np.uint8), None, TrainConfig(tokens=100))


DDP_SCRIPT = textwrap.dedent(
    """
    import torch, torch.distributed as dist
    from autofm.data.text import encode, stdlib_corpus
    from autofm.lm import GPT, GPTConfig, TrainConfig, train
    config = GPTConfig(width=32, depth=1, head_size=8, block_size=16, base_width=32)
    tokens = encode(stdlib_corpus(50_000))
    result = train(GPT(config, seed=dist.get_rank() if dist.is_initialized() else 0), tokens, None,
                   TrainConfig(batch_size=4, tokens=4 * 16 * 2 * 3, threads=1))
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    assert torch.equal(gathered[0], gathered[1]), "ranks disagree"
    assert result.steps == 3, result.steps
    print("ok", dist.get_rank(), flush=True)
    """
)


@pytest.mark.slow
def test_ddp_with_two_gloo_processes(tmp_path):
    done = run_two_ranks(tmp_path / "ddp.py", DDP_SCRIPT, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ok") == 2


def test_train_config_is_a_plain_dataclass():
    assert dataclasses.asdict(TrainConfig())["betas"] == (0.9, 0.95)


def test_a_run_trained_in_pieces_equals_one_trained_in_one_go(corpus_tokens, tmp_path):
    config = TrainConfig(batch_size=4, tokens=4 * 16 * 12, schedule="wsd", eval_every=4)
    straight = train(GPT(TINY, seed=0), corpus_tokens, corpus_tokens, config)
    # the first call runs out of time after one step and leaves a resumable state
    pieces = dict(checkpoint_every=5, max_seconds=0.0)
    first = train(
        GPT(TINY, seed=0),
        corpus_tokens,
        corpus_tokens,
        dataclasses.replace(config, **pieces),
        run_dir=tmp_path,
    )
    assert first.steps_done == 1 and not first.complete and (tmp_path / "last.json").exists()
    resumed = train(
        GPT(TINY, seed=9),  # another init: resuming overwrites it
        corpus_tokens,
        corpus_tokens,
        dataclasses.replace(config, checkpoint_every=5),
        run_dir=tmp_path,
    )
    assert resumed.complete and resumed.steps_done == straight.steps == 12
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)

    def untimed(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert untimed(resumed.history) == untimed(straight.history)
    assert resumed.final_val_loss == straight.final_val_loss


def test_resuming_with_other_settings_is_refused(corpus_tokens, tmp_path):
    config = TrainConfig(batch_size=4, tokens=4 * 16 * 4, max_seconds=0.0)
    train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path)
    other = dataclasses.replace(config, lr=1e-2)
    with pytest.raises(CheckpointError, match="another model or settings"):
        train(GPT(TINY, seed=0), corpus_tokens, None, other, run_dir=tmp_path)


def test_a_run_folder_started_with_another_identity_is_not_resumed(corpus_tokens, tmp_path):
    config = TrainConfig(batch_size=4, tokens=4 * 16 * 4, max_seconds=0.0)
    started = {"corpus": "stdlib", "init": None, "steps": (1, 2)}
    train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path, identity=started)
    for key, value in (("corpus", "other.txt"), ("init", "gpt-parent")):
        with pytest.raises(
            CheckpointError, match=rf"another model or settings \(\['{key}'\]: {key} "
        ):
            other = {**started, key: value}
            train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path, identity=other)
    # the same identity (tuples read back as lists) continues it; so does a caller without one
    result = train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path,
                   identity=started)  # fmt: skip
    assert result.steps_done == 2
    assert train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path).steps_done == 3
    with pytest.raises(CheckpointError, match="corpus"):  # the identity stayed with the run
        train(GPT(TINY, seed=0), corpus_tokens, None, config, run_dir=tmp_path,
              identity={**started, "corpus": "other.txt"})  # fmt: skip


def test_an_evaluation_shows_a_bar_only_when_asked(corpus_tokens, capsys, monkeypatch):
    from autofm.lm import training

    monkeypatch.setattr(training, "is_quiet", lambda: False)  # as on a terminal
    model = GPT(TINY, seed=0)
    plain = evaluate(model, corpus_tokens, n_blocks=16, batch_size=2)
    assert "evaluate" not in capsys.readouterr().err  # training's validations stay silent
    shown = evaluate(model, corpus_tokens, n_blocks=16, batch_size=2, progress_bar=True)
    assert "evaluate" in capsys.readouterr().err
    # the bar changes nothing measured; nor does the batching of the same blocks
    assert shown == plain
    assert plain == pytest.approx(evaluate(model, corpus_tokens, n_blocks=16, batch_size=16))

import math

import pytest

from autofm.core.errors import ValidationError
from autofm.data.text import split_tokens
from autofm.lm import GPTConfig, SweepResult, TrainConfig, coord_check, log_grid, lr_sweep


def test_coord_check_mup_is_flat_and_sp_grows(corpus_tokens):
    widths = (32, 64, 128, 256)
    result = coord_check(
        widths=widths,
        steps=4,
        lr=3e-3,
        n_seeds=3,
        batch_size=4,
        tokens=corpus_tokens,
        base_config=GPTConfig(width=32, head_size=16, block_size=16, base_width=32),
    )
    assert result.ratios["mup"] < 1.5
    assert result.ratios["sp"] > 2
    # SP's growth is monotone in width for the hidden layers after a few steps
    values = result.values("sp", "block1.mlp", 3)
    assert list(values) == sorted(values)
    assert set(result.layers()) >= {"embedding", "block0.attn", "block1.out", "logits"}


def test_coord_check_needs_two_widths():
    with pytest.raises(ValidationError, match="2 widths"):
        coord_check(widths=(64,))


def test_log_grid():
    assert log_grid(1e-4, 3e-2, 6) == [1e-4, 0.000313, 0.000979, 0.00306, 0.00959, 0.03]
    with pytest.raises(ValidationError):
        log_grid(1e-2, 1e-3, 4)


def test_best_lr_treats_divergence_as_worst():
    result = SweepResult(
        learning_rates=[1e-3, 1e-2, 1e-1],
        rows=[
            {"width": 64, "lr": 1e-3, "val_loss": 2.0},
            {"width": 64, "lr": 1e-2, "val_loss": 1.5},
            {"width": 64, "lr": 1e-1, "val_loss": math.nan},
            {"width": 128, "lr": 1e-3, "val_loss": 2.2},
            {"width": 128, "lr": 1e-2, "val_loss": 2.5},
            {"width": 128, "lr": 1e-1, "val_loss": None},
        ],
    )
    assert result.best_lr() == {64: 1e-2, 128: 1e-3}
    assert result.best_index() == {64: 1, 128: 0}


def test_lr_sweep_runs_every_cell_and_picks_the_lowest(corpus_tokens):
    train_tokens, valid_tokens = split_tokens(corpus_tokens, 0.1)
    base = GPTConfig(width=16, depth=1, head_size=8, block_size=16, base_width=16)
    config = TrainConfig(batch_size=4, tokens=4 * 16 * 8, eval_blocks=8)
    result = lr_sweep(train_tokens, valid_tokens, base, [16, 32], [1e-4, 1e-2], config)
    assert [(r["width"], r["lr"]) for r in result.rows] == [
        (16, 1e-4),
        (16, 1e-2),
        (32, 1e-4),
        (32, 1e-2),
    ]
    losses = result.mean_loss()
    for width, best in result.best_lr().items():
        assert losses[width][best] == min(losses[width].values())
    assert result.best_lr() == {16: 1e-2, 32: 1e-2}  # 8 steps at 1e-4 barely move

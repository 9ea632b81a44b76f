"""Super-network training: which sub-networks a step trains, that sandwich training helps the
small sub-networks more than training the parent alone, and that a run resumes exactly."""

import dataclasses

import numpy as np
import pytest
import torch

from autofm.compress import SuperNetwork
from autofm.compress.training import (
    SupernetTrainConfig,
    sub_networks_for_step,
    train_supernet,
)
from autofm.core.errors import ValidationError
from autofm.data.text import encode, split_tokens, stdlib_corpus
from autofm.lm import GPT, GPTConfig, TrainConfig, evaluate

CONFIG = GPTConfig(width=32, depth=2, head_size=8, block_size=16, parametrization="sp")


@pytest.fixture(scope="module")
def tokens():
    return split_tokens(encode(stdlib_corpus(100_000)), 0.1)


def test_each_strategy_trains_its_sub_networks():
    space = SuperNetwork(GPT(CONFIG, seed=0)).space("layerwise")
    rng = np.random.default_rng(0)
    standard = sub_networks_for_step(space, SupernetTrainConfig("standard"), rng)
    assert standard == [None]
    sandwich = sub_networks_for_step(space, SupernetTrainConfig("sandwich", random_samples=3), rng)
    assert sandwich[0] is None and sandwich[1] == space.smallest() and len(sandwich) == 5
    randoms = sub_networks_for_step(space, SupernetTrainConfig("random", random_samples=2), rng)
    assert len(randoms) == 2 and None not in randoms
    with pytest.raises(ValidationError, match="strategy"):
        SupernetTrainConfig("everything")
    with pytest.raises(ValidationError, match="random_samples"):
        SupernetTrainConfig("random", random_samples=0)


def test_sandwich_training_makes_the_smallest_sub_network_better_than_standard(tokens):
    train_tokens, valid_tokens = tokens
    loop = TrainConfig(lr=3e-3, batch_size=8, tokens=8 * 16 * 150, seed=0)
    losses = {}
    for strategy in ("standard", "sandwich"):
        supernet = SuperNetwork(GPT(CONFIG, seed=0))
        train_supernet(supernet, train_tokens, None, SupernetTrainConfig(strategy), loop)
        smallest = supernet.space("layerwise").smallest()
        idx = torch.from_numpy(valid_tokens[: 17 * 32].reshape(32, 17).astype(np.int64))
        with torch.no_grad():
            losses[strategy] = float(supernet(idx[:, :-1], smallest, idx[:, 1:])[1])
        losses[f"{strategy}-full"] = evaluate(supernet.gpt, valid_tokens, 32)
    assert losses["sandwich"] < losses["standard"] - 0.1
    assert losses["sandwich-full"] < losses["standard-full"] + 0.3  # the parent stays usable


def test_super_network_training_resumes_exactly(tokens, tmp_path):
    train_tokens, _ = tokens
    loop = TrainConfig(lr=3e-3, batch_size=4, tokens=4 * 16 * 8, seed=1, checkpoint_every=3)
    config = SupernetTrainConfig("sandwich")  # calibrated sampling, distillation
    straight = SuperNetwork(GPT(CONFIG, seed=0))
    train_supernet(straight, train_tokens, None, config, loop)
    pieces = SuperNetwork(GPT(CONFIG, seed=0))
    cut = dataclasses.replace(loop, max_seconds=0.0)
    first = train_supernet(pieces, train_tokens, None, config, cut, run_dir=tmp_path)
    assert first.steps_done == 1
    resumed = SuperNetwork(GPT(CONFIG, seed=5))
    train_supernet(resumed, train_tokens, None, config, loop, run_dir=tmp_path)
    for a, b in zip(straight.gpt.parameters(), resumed.gpt.parameters()):
        assert torch.equal(a, b)


def test_distillation_is_recorded_only_where_it_applies():
    assert SupernetTrainConfig("sandwich").distill
    assert not SupernetTrainConfig("sandwich", distill=False).distill
    for strategy in ("standard", "random"):  # no largest sub-network in the step to learn from
        assert not SupernetTrainConfig(strategy, distill=True, random_samples=1).distill

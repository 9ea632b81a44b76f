"""Baselines at a matched parameter count: the uniform shrink is the nearest on a brute-force
grid, magnitude ranking keeps the heaviest units, every baseline has the counted parameters and
a finite loss, and recovery fine-tuning lowers the loss."""

import math

import numpy as np
import pytest
import torch

from autofm.compress import SearchSpace, SubNetwork, count_parameters, sub_config
from autofm.compress.baselines import (
    PRUNE_METHODS,
    from_scratch,
    importance_prune,
    magnitude_prune,
    magnitude_scores,
    prune,
    recover,
    shrink_factor_for,
    uniform_shrink,
)
from autofm.compress.importance import importance_order
from autofm.core.errors import ValidationError
from autofm.data.text import encode, split_tokens, stdlib_corpus
from autofm.lm import GPT, GPTConfig, evaluate

PARENT = GPTConfig(width=32, depth=3, head_size=8, block_size=16, base_width=16)
GRID = dict(min_embed=8, embed_step=8, mlp_step=8)


@pytest.fixture(scope="module")
def tokens():
    return split_tokens(encode(stdlib_corpus(40_000)))


def _batches(n=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 16), generator=generator) for _ in range(n)]


@pytest.mark.parametrize(
    "parent",
    [PARENT, PARENT.replace(layer_heads=(2, 4, 3), layer_mlp=(40, 128, 24), tie_embeddings=True)],
)
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.8, 1.0])
def test_the_shrink_factor_is_the_nearest_on_a_brute_force_grid(parent, fraction):
    space = SearchSpace(parent, layer_order=(2, 0, 1), **GRID)
    total = count_parameters(parent, space.largest())
    found = count_parameters(parent, uniform_shrink(space, shrink_factor_for(space, fraction)))
    grid = [count_parameters(parent, uniform_shrink(space, s)) for s in np.linspace(0, 1, 801)]
    assert abs(found - fraction * total) <= min(abs(n - fraction * total) for n in grid)
    assert uniform_shrink(space, 1.0) == space.largest()
    assert uniform_shrink(space, 0.0) == SubNetwork(8, (2,), (1,), (8,))


def test_magnitude_ranks_the_unit_with_heavier_weights_first():
    gpt = GPT(PARENT, seed=0)
    with torch.no_grad():
        gpt.wte.weight[:, 7] *= 10  # embedding channel 7
        gpt.blocks[1].attn.qkv.weight[2 * 8 : 3 * 8] *= 10  # head 2's query rows in block 1
        gpt.blocks[0].mlp.proj.weight[:, 5] *= 10  # neuron 5 of block 0
        for parameter in gpt.blocks[2].parameters():  # block 2 as a whole
            parameter *= 3
    scores, block_scores = magnitude_scores(gpt)
    assert importance_order(scores.embed)[0] == 7
    assert importance_order(scores.heads[1])[0] == 2
    assert importance_order(scores.mlp[0])[0] == 5
    assert importance_order(block_scores)[0] == 2
    model, info = magnitude_prune(gpt, 0.5, **GRID)
    assert info["layer_order"][0] == 2
    torch.testing.assert_close(model.wte.weight[:, 0], gpt.wte.weight[:, 7])


@pytest.mark.parametrize("method", PRUNE_METHODS)
def test_every_pruned_model_has_the_counted_parameters_and_a_finite_loss(method, tokens):
    parent = GPT(PARENT, seed=0)
    before = {name: value.clone() for name, value in parent.state_dict().items()}
    model, info = prune(parent, method, 0.4, batches=_batches(), **GRID)
    sub = SubNetwork.from_dict(info["sub_network"])
    space = SearchSpace(PARENT, layer_order=tuple(info["layer_order"]), **GRID)
    assert sub == uniform_shrink(space, shrink_factor_for(space, 0.4))
    assert model.n_parameters() == info["params"] == count_parameters(PARENT, sub)
    assert info["params"] < parent.n_parameters()
    assert math.isfinite(evaluate(model, tokens[1], n_blocks=8))
    for name, value in parent.state_dict().items():  # the parent is left as it was
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_from_scratch_is_the_architecture_freshly_initialised():
    config = sub_config(PARENT, SubNetwork(16, (0, 2), (2, 1), (24, 40)))
    model, info = from_scratch(config, seed=3)
    again, _ = from_scratch(config, seed=3)
    assert (
        info["params"]
        == model.n_parameters()
        == count_parameters(PARENT, SubNetwork(16, (0, 2), (2, 1), (24, 40)))
    )
    for a, b in zip(model.parameters(), again.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_recovery_fine_tuning_lowers_the_validation_loss(tokens):
    train_tokens, valid_tokens = tokens
    model, _ = from_scratch(PARENT, seed=0)
    untrained = evaluate(model, valid_tokens)
    same, loss_without = recover(model, train_tokens, valid_tokens, tokens=0)
    assert same is model and loss_without == untrained
    _, loss = recover(model, train_tokens, valid_tokens, tokens=30 * 16 * 16, lr=1e-2)
    assert loss < untrained - 0.5


def test_bad_input_says_what_to_do():
    gpt = GPT(PARENT, seed=0)
    for fraction in (0, 1.5, -0.2, float("nan"), "half"):
        with pytest.raises(ValidationError, match=r"params_fraction must be in \(0, 1\]"):
            magnitude_prune(gpt, fraction)
    with pytest.raises(ValidationError, match="pruning method"):
        prune(gpt, "random", 0.5)
    with pytest.raises(ValidationError, match="calibration batches"):
        prune(gpt, "importance", 0.5)
    with pytest.raises(ValidationError, match="no calibration batches"):
        importance_prune(gpt, [], 0.5)
    with pytest.raises(ValidationError, match="tokens"):
        recover(gpt, np.zeros(100, np.uint8), np.zeros(100, np.uint8), tokens=-1)

"""Importance sorting: a reference forward gives the same scores, permuting keeps the function
and sorts the scores, known dead units rank last, and a sorted slice beats an unsorted one."""

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autofm.compress import SubNetwork, SuperNetwork
from autofm.compress.importance import (
    AGGREGATIONS,
    UnitScores,
    block_importance,
    calibration_batches,
    importance_order,
    permute_by_importance,
    sort_parent,
    unit_importance,
)
from autofm.core.errors import ValidationError
from autofm.data.text import encode, split_tokens, stdlib_corpus
from autofm.lm import GPT, GPTConfig, TrainConfig, train

VARIANTS = {
    f"{param}-{norm}-{'tied' if tied else 'untied'}-{'bias' if bias else 'nobias'}": dict(
        parametrization=param, norm=norm, tie_embeddings=tied, bias=bias
    )
    for param, norm, tied, bias in itertools.product(
        ("sp", "mup"), ("layernorm", "rmsnorm"), (False, True), (True, False)
    )
}
VARIANTS["per-layer-shapes"] = dict(layer_heads=(2, 3), layer_mlp=(40, 24))


def _gpt(depth=2, seed=0, **options):
    config = GPTConfig(width=32, depth=depth, head_size=8, block_size=16, base_width=16, **options)
    model = GPT(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial gains and biases, so permuting them is tested too
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def _batches(n=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 16), generator=generator) for _ in range(n)]


def _reference_mean_scores(gpt, batches):
    """Mean |activation| scores and block influence from a forward written out by hand."""
    config = gpt.config
    embed = np.zeros(config.width)
    heads = [np.zeros(b.attn.n_head) for b in gpt.blocks]
    mlp = [np.zeros(b.mlp.fc.out_features) for b in gpt.blocks]
    influence = np.zeros(config.depth)
    tokens = sum(idx.numel() for idx in batches)
    with torch.no_grad():
        for idx in batches:
            x = gpt.wte(idx) + gpt.wpe.weight[: idx.shape[1]]
            for layer, block in enumerate(gpt.blocks):
                h = block.norm1(x)
                embed += h.abs().sum((0, 1)).double().numpy()
                q, k, v = block.attn.qkv(h).chunk(3, dim=-1)
                q, k, v = (
                    t.unflatten(-1, (-1, config.head_size)).transpose(1, 2) for t in (q, k, v)
                )
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=block.attn.scale)
                heads[layer] += y.norm(dim=-1).sum((0, 2)).double().numpy()
                out = x + block.attn.proj(y.transpose(1, 2).flatten(2))
                h = block.norm2(out)
                embed += h.abs().sum((0, 1)).double().numpy()
                hidden = F.gelu(block.mlp.fc(h))
                mlp[layer] += hidden.abs().sum((0, 1)).double().numpy()
                out = out + block.mlp.proj(hidden)
                influence[layer] += float((1 - F.cosine_similarity(x, out, dim=-1)).sum())
                x = out
            embed += gpt.norm_f(x).abs().sum((0, 1)).double().numpy()
    return (
        embed / tokens,
        [h / tokens for h in heads],
        [m / tokens for m in mlp],
        influence / tokens,
    )


@pytest.mark.parametrize("name", ["sp-layernorm-untied-bias", "per-layer-shapes"])
def test_scores_equal_a_forward_written_out_by_hand(name):
    gpt, batches = _gpt(**VARIANTS[name]), _batches()
    embed, heads, mlp, influence = _reference_mean_scores(gpt, batches)
    scores = unit_importance(gpt, batches, "mean")
    np.testing.assert_allclose(scores.embed, embed, rtol=1e-5)
    for found, expected in zip(scores.heads + scores.mlp, heads + mlp):
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(block_importance(gpt, batches), influence, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sorting_keeps_the_logits_and_sorts_the_scores(name):
    gpt, batches = _gpt(**VARIANTS[name]), _batches()
    idx = _batches(1, seed=7)[0]
    before = gpt(idx)[0]
    original = unit_importance(gpt, batches)
    assert not np.array_equal(importance_order(original.embed), np.arange(32))
    sorted_gpt, layer_order, scores = sort_parent(gpt, batches)
    assert sorted_gpt is gpt and sorted(layer_order) == [0, 1]
    torch.testing.assert_close(gpt(idx)[0], before, rtol=0, atol=1e-5)
    measured = unit_importance(gpt, batches)  # the sorted model's own scores, in its order
    for found, returned in zip(
        (measured.embed, *measured.heads, *measured.mlp), (scores.embed, *scores.heads, *scores.mlp)
    ):
        np.testing.assert_allclose(found, returned, rtol=1e-4, atol=1e-6)
        assert np.all(np.diff(found) <= 1e-5 * found.max())


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_every_aggregation_sorts_its_own_scores(aggregation):
    gpt, batches = _gpt(), _batches()
    permute_by_importance(gpt, unit_importance(gpt, batches, aggregation))
    measured = unit_importance(gpt, batches, aggregation)
    for found in (measured.embed, *measured.heads, *measured.mlp):
        assert np.all(np.diff(found) <= 1e-5 * found.max())


def test_a_block_that_writes_nothing_has_zero_influence_and_ranks_last():
    gpt, batches = _gpt(depth=3), _batches()
    with torch.no_grad():
        for linear in (gpt.blocks[1].attn.proj, gpt.blocks[1].mlp.proj):
            linear.weight.zero_()
            linear.bias.zero_()
    influence = block_importance(gpt, batches)
    assert influence[1] < 1e-6 and min(influence[0], influence[2]) > 1e-3
    assert sort_parent(gpt, batches)[1][-1] == 1


def test_a_head_with_zero_values_ranks_last():
    gpt, batches = _gpt(), _batches()
    attn, head_size = gpt.blocks[0].attn, 8
    v_rows = slice(2 * 32 + 1 * head_size, 2 * 32 + 2 * head_size)  # head 1's value rows
    with torch.no_grad():
        attn.qkv.weight[v_rows] = 0
        attn.qkv.bias[v_rows] = 0
    scores = unit_importance(gpt, batches)
    assert scores.heads[0][1] == 0 and importance_order(scores.heads[0])[-1] == 1
    sort_parent(gpt, batches)
    last_head = slice(2 * 32 + 3 * head_size, 2 * 32 + 4 * head_size)
    assert torch.all(attn.qkv.weight[last_head] == 0)


def test_mean_and_l2_rank_a_rare_large_neuron_differently():
    """Neuron 0 is a constant gelu(1.5) ≈ 1.40; neuron 1 is 4 on a quarter of the tokens and
    ~0 elsewhere: mean |a| ≈ 1 puts neuron 0 first, the root mean square ≈ 2 neuron 1."""
    gpt = _gpt(depth=1, parametrization="sp")
    block = gpt.blocks[0]
    with torch.no_grad():
        for linear in (block.attn.proj, block.mlp.fc):
            linear.weight.zero_()
            linear.bias.zero_()
        gpt.wpe.weight.zero_()
        pattern = torch.randn(32, generator=torch.Generator().manual_seed(3))
        gpt.wte.weight[0], gpt.wte.weight[1] = pattern, -pattern
        block.norm2.bias.zero_()
        z = block.norm2(-pattern)  # the normalised input of token 1; token 0's is -z
        block.mlp.fc.weight[1] = 4 * z / z.dot(z)
        block.mlp.fc.bias[0] = 1.5
        block.mlp.fc.bias[2:] = -10.0  # the other neurons stay silent
    idx = torch.zeros(4, 16, dtype=torch.long)
    idx[0] = 1
    mean, l2 = (unit_importance(gpt, idx, a).mlp[0] for a in ("mean", "l2"))
    np.testing.assert_allclose(mean[:2], [1.3998, 1.0], atol=1e-3)
    np.testing.assert_allclose(l2[:2], [1.3998, 2.0], atol=1e-3)
    assert list(importance_order(mean)[:2]) == [0, 1]
    assert list(importance_order(l2)[:2]) == [1, 0]


def test_bad_input_says_what_to_do():
    gpt = _gpt()
    with pytest.raises(ValidationError, match="no calibration batches"):
        unit_importance(gpt, [])
    with pytest.raises(ValidationError, match="integer token ids"):
        unit_importance(gpt, torch.zeros(2, 16))
    with pytest.raises(ValidationError, match="integer token ids"):
        block_importance(gpt, torch.zeros(2, 17, dtype=torch.long))
    with pytest.raises(ValidationError, match="aggregation"):
        unit_importance(gpt, _batches(), "median")
    wrong = UnitScores(np.zeros(16), (np.zeros(4),) * 2, (np.zeros(128),) * 2)
    with pytest.raises(ValidationError, match="do not fit"):
        permute_by_importance(gpt, wrong)


@pytest.fixture(scope="module")
def trained():
    """A small GPT trained for 300 steps on standard-library source (~4 s on one thread)."""
    torch.set_num_threads(1)
    train_tokens, valid_tokens = split_tokens(encode(stdlib_corpus(200_000)))
    model = GPT(GPTConfig(width=64, depth=2, head_size=16, block_size=32), seed=0)
    config = TrainConfig(tokens=300 * 16 * 32, batch_size=16, lr=1e-2, seed=0)
    train(model, train_tokens, valid_tokens, config)
    return model.eval(), train_tokens, valid_tokens


@pytest.mark.parametrize("aggregation", ["mean", "l2"])
def test_a_sorted_slice_loses_less_than_the_same_unsorted_slice(trained, aggregation):
    model, train_tokens, valid_tokens = trained
    calibration = calibration_batches(train_tokens, 32, n_batches=4, batch_size=16, seed=1)
    held_out = calibration_batches(valid_tokens, 32, n_batches=4, batch_size=16, seed=2)
    sorted_model, layer_order, _ = sort_parent(copy.deepcopy(model), calibration, aggregation)
    half = SubNetwork(embed=32, layers=(0, 1), heads=(2, 2), mlp=(128, 128))

    def kl_and_loss(supernet):
        kl = loss = 0.0
        with torch.no_grad():
            for idx in held_out:
                parent = F.log_softmax(model(idx)[0], -1)
                logits, _ = supernet(idx, half)
                kl += float((parent.exp() * (parent - F.log_softmax(logits, -1))).sum(-1).mean())
                targets = torch.roll(idx, -1, dims=1)[:, :-1]
                loss += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten()))
        return kl / len(held_out), loss / len(held_out)

    sorted_kl, sorted_loss = kl_and_loss(SuperNetwork(sorted_model, layer_order))
    unsorted_kl, unsorted_loss = kl_and_loss(SuperNetwork(model))
    assert sorted_kl < 0.9 * unsorted_kl
    assert sorted_loss < unsorted_loss

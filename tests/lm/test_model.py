import math

import pytest
import torch

from autofm.core.errors import CheckpointError, ValidationError
from autofm.lm import GPT, GPTConfig, grow
from autofm.lm.parametrization import init_std, lr_multiplier, parameter_kind

TINY = GPTConfig(width=32, depth=2, head_size=8, block_size=16, base_width=32)


def test_config_rejects_width_not_divisible_by_head_size():
    with pytest.raises(ValidationError, match="not divisible by head_size"):
        GPTConfig(width=40, head_size=16)
    with pytest.raises(ValidationError, match="parametrization"):
        GPTConfig(parametrization="ntk")
    with pytest.raises(CheckpointError, match=r"GPTConfig key\(s\) \['heads'\]"):
        GPTConfig.from_dict({"width": 32, "heads": 2})


def test_forward_shapes_and_uniform_loss_with_zero_readout():
    model = GPT(TINY.replace(zero_readout=True), seed=0)
    idx = torch.randint(0, 256, (3, 16))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 16, 256)
    assert torch.count_nonzero(logits) == 0
    assert loss.item() == pytest.approx(math.log(256), abs=1e-6)


def test_attention_is_causal():
    model = GPT(TINY, seed=1)
    idx = torch.randint(0, 256, (1, 16))
    changed = idx.clone()
    changed[0, 10] = (changed[0, 10] + 1) % 256
    before, after = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_sp_and_mup_coincide_at_base_width_when_scales_match():
    # at width == base_width μP differs from SP only in attention scale 1/d vs 1/√d
    sp = GPT(TINY.replace(parametrization="sp"), seed=3)
    mup = GPT(TINY.replace(parametrization="mup", attn_mult=math.sqrt(TINY.head_size)), seed=3)
    idx = torch.randint(0, 256, (2, 16))
    torch.testing.assert_close(sp(idx)[0], mup(idx)[0])
    # at twice the width, the logit multiplier and readout init differ
    wide = dict(width=64, attn_mult=1.0)
    sp_wide = GPT(TINY.replace(parametrization="sp", **wide), seed=3)
    mup_wide = GPT(TINY.replace(parametrization="mup", **wide), seed=3)
    assert not torch.allclose(sp_wide(idx)[0], mup_wide(idx)[0])


@pytest.mark.parametrize("parametrization", ["sp", "mup"])
def test_init_std_follows_the_parametrisation(parametrization):
    config = GPTConfig(
        width=256,
        depth=1,
        head_size=32,
        block_size=8,
        base_width=64,
        parametrization=parametrization,
    )
    model = GPT(config, seed=0)
    sigma = config.init_std
    hidden = model.blocks[0].mlp.fc.weight.std().item()
    assert hidden == pytest.approx(sigma / 2, rel=0.02)  # σ/√(width/base) = σ/2
    assert model.wte.weight.std().item() == pytest.approx(sigma, rel=0.02)
    readout = model.lm_head.weight.std().item()
    assert readout == pytest.approx(sigma if parametrization == "mup" else sigma / 2, rel=0.03)
    assert torch.all(model.blocks[0].norm1.weight == 1) and torch.all(
        model.blocks[0].attn.qkv.bias == 0
    )


def test_lr_multipliers_cover_every_parameter_once():
    for parametrization, hidden_multiplier in (("mup", 0.25), ("sp", 1.0)):
        model = GPT(TINY.replace(width=128, parametrization=parametrization), seed=0)
        groups = model.parameter_groups(weight_decay=0.1)
        seen = [id(p) for g in groups for p in g["params"]]
        assert sorted(seen) == sorted(id(p) for p in model.parameters())
        for name, parameter in model.named_parameters():
            kind = parameter_kind(name, parameter)
            group = next(g for g in groups if any(p is parameter for p in g["params"]))
            expected = hidden_multiplier if kind == "hidden" else 1.0
            assert group["lr_multiplier"] == expected, name
            decay = 0.0 if kind == "vector" else 0.1 / expected
            assert group["weight_decay"] == pytest.approx(decay)
    assert lr_multiplier(TINY.replace(width=128), "readout") == 1.0
    assert init_std(TINY.replace(zero_readout=True), "readout") == 0.0


def test_tied_embeddings_share_the_input_matrix():
    model = GPT(TINY.replace(tie_embeddings=True), seed=0)
    untied = GPT(TINY, seed=0)
    assert model.lm_head is None
    assert untied.n_parameters() - model.n_parameters() == 256 * 32
    model.zero_grad()
    model(torch.randint(0, 256, (1, 8)), torch.randint(0, 256, (1, 8)))[1].backward()
    assert model.wte.weight.grad.abs().sum() > 0


def test_zero_query_and_generate():
    model = GPT(TINY.replace(zero_query=True), seed=0)
    assert torch.count_nonzero(model.blocks[0].attn.qkv.weight[:32]) == 0
    assert torch.count_nonzero(model.blocks[0].attn.qkv.weight[32:]) > 0
    out = model.generate(
        torch.zeros(1, 3, dtype=torch.long), 20, generator=torch.Generator().manual_seed(0)
    )
    assert out.shape == (1, 23)
    with pytest.raises(ValidationError, match="longer than block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_mup_multipliers_match_microsofts_mup():
    """microsoft/mup as an oracle: MuAdam's per-parameter LR and weight decay, MuReadout's logits."""
    mup = pytest.importorskip("mup")
    config = TINY.replace(width=128, parametrization="mup")
    model = GPT(config, seed=0)
    base, delta = GPT(TINY, seed=0), GPT(TINY.replace(width=64), seed=0)
    # our readout is a plain matrix with an explicit multiplier, hence no MuReadout assertion
    mup.set_base_shapes(model, base, delta=delta, rescale_params=False, do_assert=False)
    oracle = mup.MuAdam(model.parameters(), impl=torch.optim.AdamW, lr=1e-3, weight_decay=0.1)
    ours = torch.optim.AdamW(model.parameter_groups(weight_decay=0.1), lr=1e-3)
    for group in ours.param_groups:
        group["lr"] = 1e-3 * group["lr_multiplier"]

    def settings(optimizer):
        return {
            id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]
        }

    expected, got = settings(oracle), settings(ours)
    for name, parameter in model.named_parameters():
        assert got[id(parameter)][0] == pytest.approx(expected[id(parameter)][0]), name
        if parameter.ndim == 2:  # mup also decays vectors; we do not
            assert got[id(parameter)][1] == pytest.approx(expected[id(parameter)][1]), name

    readout = mup.MuReadout(128, 256, bias=False)
    readout.weight.data.copy_(model.lm_head.weight.data)
    readout.weight.infshape = model.lm_head.weight.infshape
    hidden = {}
    model.norm_f.register_forward_hook(lambda module, inputs, output: hidden.update(x=output))
    idx = torch.randint(0, 256, (2, 16))
    torch.testing.assert_close(model(idx)[0], readout(hidden["x"]))


def test_per_layer_shapes_build_a_non_uniform_model():
    config = GPTConfig(
        width=40, depth=2, head_size=8, block_size=16, layer_heads=(3, 1), layer_mlp=(24, 7)
    )
    model = GPT(config, seed=0)
    assert model.blocks[0].attn.qkv.weight.shape == (3 * 3 * 8, 40)
    assert model.blocks[1].attn.proj.weight.shape == (40, 8)
    assert model.blocks[1].mlp.fc.weight.shape == (7, 40)
    logits, _ = model(torch.randint(0, 256, (2, 16)))
    assert logits.shape == (2, 16, 256) and torch.isfinite(logits).all()
    assert GPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValidationError, match="one positive integer per layer"):
        GPTConfig(width=32, depth=2, head_size=8, layer_heads=(1,))
    with pytest.raises(ValidationError, match="uniform"):
        grow(model, 80)

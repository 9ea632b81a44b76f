import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.lm import GPT, GPTConfig, grow
from autofm.lm.growth import zero_pad

SMALL = GPTConfig(width=32, depth=2, head_size=8, block_size=16, base_width=32)


def _trained_like(config: GPTConfig, seed: int = 1) -> GPT:
    """A model whose gains and biases are not at their init (as after training)."""
    model = GPT(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("parametrization", ["mup", "sp"])
def test_shrink_zero_equals_training_from_scratch(parametrization):
    small = _trained_like(SMALL.replace(parametrization=parametrization))
    grown = grow(small, 64, shrink=0.0, perturb=1.0, seed=7)
    scratch = GPT(small.config.replace(width=64), seed=7)
    for (name, a), (_, b) in zip(grown.state_dict().items(), scratch.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "changes",
    [
        {"parametrization": "mup"},
        {"parametrization": "sp"},
        {"parametrization": "sp", "tie_embeddings": True},
        {"parametrization": "mup", "bias": False},
    ],
)
def test_pad_without_perturbation_preserves_the_function(changes):
    # RMSNorm: zero coordinates scale the mean square by w/W, undone by the gain rescale
    # (exact up to the norm's ε, hence a tiny ε here)
    small = _trained_like(SMALL.replace(norm="rmsnorm", norm_eps=1e-12, **changes))
    grown = grow(small, 96, shrink=1.0, perturb=0.0)
    assert grown.config.n_head == 12
    idx = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(grown(idx)[0], small(idx)[0], atol=2e-5, rtol=1e-4)


def test_layernorm_padding_is_only_approximate_and_plain_padding_is_not_preserving():
    small = _trained_like(SMALL.replace(norm="rmsnorm", norm_eps=1e-12))
    idx = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    plain = grow(small, 64, shrink=1.0, perturb=0.0, preserve_function=False)
    assert (plain(idx)[0] - small(idx)[0]).abs().max() > 1e-2
    layernorm = _trained_like(SMALL.replace(norm_eps=1e-12))
    grown = grow(layernorm, 64, shrink=1.0, perturb=0.0)
    assert (grown(idx)[0] - layernorm(idx)[0]).abs().max() > 1e-3  # documented: mean shift


def test_old_heads_keep_their_weights_and_new_units_start_at_zero():
    small = _trained_like(SMALL)
    grown = grow(small, 64, shrink=1.0, perturb=0.0)
    small_qkv = small.blocks[0].attn.qkv.weight.detach().reshape(3, 4, 8, 32)
    grown_qkv = grown.blocks[0].attn.qkv.weight.detach().reshape(3, 8, 8, 64)
    torch.testing.assert_close(grown_qkv[:, :4, :, :32], small_qkv)
    assert (
        torch.count_nonzero(grown_qkv[:, 4:]) == 0 and torch.count_nonzero(grown_qkv[..., 32:]) == 0
    )
    fc = grown.blocks[1].mlp.fc.weight.detach()
    torch.testing.assert_close(fc[:128, :32], small.blocks[1].mlp.fc.weight.detach())
    assert torch.count_nonzero(fc[128:]) == 0


def test_shrink_perturb_mixes_linearly():
    small = _trained_like(SMALL)
    full = grow(small, 64, shrink=1.0, perturb=0.0, seed=3)
    init = grow(small, 64, shrink=0.0, perturb=1.0, seed=3)
    mixed = grow(small, 64, shrink=0.6, perturb=0.5, seed=3)
    expected = 0.6 * full.blocks[0].mlp.proj.weight + 0.5 * init.blocks[0].mlp.proj.weight
    torch.testing.assert_close(mixed.blocks[0].mlp.proj.weight, expected)
    # norm gains interpolate towards their init 1 instead of being perturbed
    gain = 0.6 * full.norm_f.weight + 0.4 * torch.ones(64)
    torch.testing.assert_close(mixed.norm_f.weight, gain)


def test_zero_pad():
    out = zero_pad(torch.ones(2, 3), (4, 5))
    assert out.sum() == 6 and out[:2, :3].eq(1).all()


def test_grow_rejects_bad_targets():
    small = GPT(SMALL, seed=0)
    with pytest.raises(ValidationError, match="smaller than the source"):
        grow(small, 16)
    with pytest.raises(ValidationError, match="not divisible"):
        grow(small, 60)
    with pytest.raises(ValidationError, match="cannot grow a model trained in SP into μP"):
        grow(GPT(SMALL.replace(parametrization="sp"), seed=0), SMALL.replace(width=64))
    with pytest.raises(ValidationError, match="depth"):
        grow(small, SMALL.replace(width=64, depth=3))

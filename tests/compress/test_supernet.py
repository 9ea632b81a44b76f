"""Sub-networks as slices: the full slice is the parent, an extracted model equals its slice,
parameter counts are exact, training a slice trains only the parent weights it uses."""

import numpy as np
import optuna
import pytest
import torch

from autofm.compress import (
    SearchSpace,
    SubNetwork,
    SuperNetwork,
    count_flops,
    count_parameters,
    extract,
)
from autofm.core.errors import ValidationError
from autofm.lm import GPT, GPTConfig

PARENTS = {
    "sp-layernorm": GPTConfig(width=48, depth=3, head_size=8, block_size=16, parametrization="sp"),
    "mup-rmsnorm-tied": GPTConfig(
        width=32,
        depth=3,
        head_size=8,
        block_size=16,
        norm="rmsnorm",
        tie_embeddings=True,
        base_width=16,
        output_mult=2.0,
    ),
    "no-bias": GPTConfig(width=32, depth=2, head_size=8, block_size=16, bias=False),
}


def _parent(name, seed=0):
    torch.manual_seed(seed)
    model = GPT(PARENTS[name], seed=seed)
    with torch.no_grad():  # non-trivial gains and biases, so slicing them is tested too
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def _tokens(n=2, seed=1):
    return torch.randint(0, 256, (n, 16), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(PARENTS))
def test_the_full_sub_network_is_the_parent(name):
    parent = _parent(name)
    supernet = SuperNetwork(parent)
    idx = _tokens()
    sliced, _ = supernet(idx, SubNetwork.full(parent.config))
    torch.testing.assert_close(sliced, parent(idx)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PARENTS))
@pytest.mark.parametrize("kind", ["uniform", "layerwise"])
def test_an_extracted_model_equals_its_slice_and_has_the_counted_parameters(name, kind):
    parent = _parent(name)
    supernet = SuperNetwork(parent, layer_order=list(range(parent.config.depth))[::-1])
    space = supernet.space(kind, min_embed=8, embed_step=8, mlp_step=8)
    rng = np.random.default_rng(0)
    idx = _tokens()
    for _ in range(6):
        sub = space.sample(rng)
        dense = extract(supernet, sub).eval()
        torch.testing.assert_close(dense(idx)[0], supernet(idx, sub)[0], rtol=0, atol=1e-5)
        assert dense.n_parameters() == count_parameters(parent.config, sub)
    assert count_parameters(parent.config, SubNetwork.full(parent.config)) == parent.n_parameters()


def test_training_a_slice_changes_only_the_weights_it_uses():
    parent = _parent("sp-layernorm").train()
    supernet = SuperNetwork(parent)
    sub = SubNetwork(embed=24, layers=(0, 2), heads=(2, 3), mlp=(40, 10))
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    idx = _tokens()
    _, loss = supernet(idx, sub, targets=idx)
    loss.backward()
    torch.optim.SGD(parent.parameters(), lr=0.1).step()
    after = parent.state_dict()
    assert torch.equal(after["blocks.1.mlp.fc.weight"], before["blocks.1.mlp.fc.weight"])
    fc = after["blocks.2.mlp.fc.weight"] - before["blocks.2.mlp.fc.weight"]
    assert fc[:10, :24].abs().sum() > 0 and not fc[10:].any() and not fc[:, 24:].any()
    qkv = after["blocks.0.attn.qkv.weight"] - before["blocks.0.attn.qkv.weight"]
    used = torch.zeros(3 * 48, dtype=torch.bool)
    for part in range(3):
        used[part * 48 : part * 48 + 16] = True  # 2 heads of 8 in q, k and v
    assert qkv[used][:, :24].abs().sum() > 0 and not qkv[~used].any()


def test_sub_networks_outside_the_parent_are_refused():
    config = PARENTS["sp-layernorm"]
    with pytest.raises(ValidationError, match="7 heads, the parent has 6"):
        SubNetwork(48, (0,), (7,), (10,)).check(config)
    with pytest.raises(ValidationError, match="keeps no layer"):
        SubNetwork(48, (), (), ()).check(config)
    with pytest.raises(ValidationError, match="ascending"):
        SubNetwork(48, (2, 0), (1, 1), (8, 8)).check(config)
    with pytest.raises(ValidationError, match="embed 64"):
        SubNetwork(64, (0,), (1,), (8,)).check(config)


def test_fewer_layers_keep_the_most_important_ones_in_order():
    space = SearchSpace(PARENTS["sp-layernorm"], layer_order=(2, 0, 1))
    assert space.layers_for(1) == (2,) and space.layers_for(2) == (0, 2)
    with pytest.raises(ValidationError, match="permutation"):
        SearchSpace(PARENTS["sp-layernorm"], layer_order=(0, 0, 1))


def test_flops_and_parameters_grow_with_the_sub_network():
    config = PARENTS["sp-layernorm"]
    space = SearchSpace(config)
    small, large = space.smallest(), space.largest()
    assert count_parameters(config, small) < count_parameters(config, large)
    assert count_flops(config, small) < count_flops(config, large)
    # one more head adds its q, k, v and output weights: 4 · 8 · embed, plus 3 · 8 biases
    one, two = space.build(32, 1, 1, 16), space.build(32, 1, 2, 16)
    assert count_parameters(config, two) - count_parameters(config, one) == 4 * 8 * 32 + 24


def test_calibrated_sampling_fills_parameter_bins_evenly():
    space = SearchSpace(PARENTS["sp-layernorm"], kind="layerwise", min_embed=8, embed_step=8)
    sampler, rng = space.calibrated_sampler(n_bins=5), np.random.default_rng(0)
    bins = np.bincount([sampler.bin_of(sampler.sample(rng)) for _ in range(100)], minlength=5)
    uniform = np.bincount(
        [sampler.bin_of(space.sample(np.random.default_rng(i))) for i in range(100)], minlength=5
    )
    assert bins.min() >= 12 and bins.max() <= 28  # about 20 each (binomial, sd 4)
    assert uniform.max() - uniform.min() > bins.max() - bins.min()


@pytest.mark.parametrize("kind", ["uniform", "layerwise"])
def test_an_optuna_trial_proposes_a_valid_sub_network(kind):
    space = SearchSpace(PARENTS["sp-layernorm"], kind=kind, layer_order=(1, 2, 0))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        sub = space.suggest(trial)
        assert sub.layers == space.layers_for(trial.params["n_layers"])
        study.tell(trial, 0.0)

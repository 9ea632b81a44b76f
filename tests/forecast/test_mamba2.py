import math

import pytest
import torch

from autofm.forecast import mamba2
from autofm.forecast.mamba2 import Mamba2, Mamba2Config, segment_sum, sequential_scan, ssd_scan


def random_scan_inputs(seed, batch=2, length=37, heads=3, headdim=4, state=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, headdim, generator=g, dtype=torch.float64)
    log_decay = -torch.rand(batch, length, heads, generator=g, dtype=torch.float64) * 2
    B = torch.randn(batch, length, heads, state, generator=g, dtype=torch.float64)
    C = torch.randn(batch, length, heads, state, generator=g, dtype=torch.float64)
    return x, log_decay, B, C


@pytest.mark.parametrize("chunk_size", [1, 4, 8, 37, 64])
def test_ssd_scan_matches_sequential_recurrence(chunk_size):
    x, a, B, C = random_scan_inputs(chunk_size)
    expected = sequential_scan(x, a, B, C)
    assert torch.allclose(ssd_scan(x, a, B, C, chunk_size), expected, atol=1e-10)


def test_ssd_scan_shares_grouped_b_and_c_across_heads():
    x, a, B, C = random_scan_inputs(3, heads=6)
    B, C = B[:, :, :2], C[:, :, :2]  # 2 groups of 3 heads: head i reads group i // 3
    expected = sequential_scan(x, a, B.repeat_interleave(3, 2), C.repeat_interleave(3, 2))
    assert torch.allclose(ssd_scan(x, a, B, C, 8), expected, atol=1e-10)
    assert torch.allclose(sequential_scan(x, a, B, C), expected)
    with pytest.raises(ValueError, match="groups"):
        ssd_scan(x, a, B[:, :, :1].expand(-1, -1, 4, -1), C[:, :, :1].expand(-1, -1, 4, -1), 8)


def test_sequential_scan_known_answer():
    # one head, one channel, one state: y_t = Σ_s decay^(t-s) x_s with B = C = 1
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(1, 3, 1, 1)
    a = torch.full((1, 3, 1), math.log(0.5), dtype=torch.float64)
    ones = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    y = sequential_scan(x, a, ones, ones).flatten()
    assert torch.allclose(y, torch.tensor([1.0, 2.5, 4.25], dtype=torch.float64))
    assert torch.allclose(ssd_scan(x, a, ones, ones, 2).flatten(), y)


def test_segment_sum_known_answer():
    values = torch.tensor([1.0, 2.0, 3.0])
    out = segment_sum(values)
    assert out[2, 0] == 5.0 and out[2, 1] == 3.0 and out[1, 1] == 0.0
    assert torch.isinf(out[0, 1]) and out[0, 1] < 0


def small_layer(chunk_size=8):
    torch.manual_seed(0)
    return Mamba2(Mamba2Config(d_model=16, d_state=8, headdim=8, chunk_size=chunk_size)).double()


def test_layer_is_causal():
    layer = small_layer()
    u = torch.randn(2, 20, 16, dtype=torch.float64)
    changed = u.clone()
    changed[:, 12:] += torch.randn(2, 8, 16, dtype=torch.float64)
    assert torch.allclose(layer(u)[:, :12], layer(changed)[:, :12], atol=1e-12)
    assert not torch.allclose(layer(u)[:, 12:], layer(changed)[:, 12:])


def test_layer_chunk_size_does_not_change_output():
    small, large = small_layer(4), small_layer(64)
    large.load_state_dict(small.state_dict())
    u = torch.randn(3, 29, 16, dtype=torch.float64)
    assert torch.allclose(small(u), large(u), atol=1e-10)


def test_layer_equals_sequential_reference(monkeypatch):
    layer = small_layer()
    u = torch.randn(2, 13, 16, dtype=torch.float64)
    chunked = layer(u)
    monkeypatch.setattr(mamba2, "ssd_scan", lambda x, a, B, C, chunk: sequential_scan(x, a, B, C))
    assert torch.allclose(layer(u), chunked, atol=1e-10)


def test_parameter_names_and_shapes_match_mamba_ssm():
    config = Mamba2Config(d_model=32, d_state=16, headdim=16, expand=2, d_conv=4)
    layer = Mamba2(config)
    d_inner, nheads = 64, 4
    conv_dim = d_inner + 2 * config.d_state
    shapes = {name: tuple(p.shape) for name, p in layer.state_dict().items()}
    assert shapes == {
        "dt_bias": (nheads,),
        "A_log": (nheads,),
        "D": (nheads,),
        "in_proj.weight": (2 * d_inner + 2 * config.d_state + nheads, 32),
        "conv1d.weight": (conv_dim, 1, 4),
        "conv1d.bias": (conv_dim,),
        "norm.weight": (d_inner,),
        "out_proj.weight": (32, d_inner),
    }
    dt = torch.nn.functional.softplus(layer.dt_bias)
    assert (dt >= config.dt_min * 0.99).all() and (dt <= config.dt_max * 1.01).all()
    A = torch.exp(layer.A_log)
    assert (A >= 1).all() and (A <= 16).all()


def test_headdim_must_divide_inner_width():
    with pytest.raises(ValueError, match="headdim"):
        Mamba2(Mamba2Config(d_model=10, headdim=8))

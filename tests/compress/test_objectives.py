"""Search objectives against references: KL against torch.distributions on the extracted model's
logits, validation loss against autofm.lm.evaluate, latency's thread and no-grad settings."""

import numpy as np
import pytest
import torch
from torch import nn

from autofm.compress import SubNetwork, SuperNetwork, count_parameters, extract
from autofm.compress.objectives import (
    Calibration,
    Evaluator,
    kl_to_parent,
    measure_latency,
    validation_loss,
)
from autofm.core.errors import ValidationError
from autofm.lm import GPT, GPTConfig, evaluate

CONFIG = GPTConfig(width=32, depth=2, head_size=8, block_size=16)
SUB = SubNetwork(embed=16, layers=(1,), heads=(2,), mlp=(48,))


@pytest.fixture(scope="module")
def supernet():
    gpt = GPT(CONFIG, seed=0)
    with torch.no_grad():  # a less uniform parent than a fresh init, so KLs are clearly > 0
        gpt.wte.weight.mul_(20)
    return SuperNetwork(gpt.eval())


@pytest.fixture(scope="module")
def tokens():
    return np.random.default_rng(0).integers(0, 256, 500).astype(np.uint8)


def test_calibration_holds_the_parent_log_probs(supernet, tokens):
    calibration = Calibration.from_tokens(supernet, tokens, n_blocks=6, batch_size=4)
    assert [tuple(b.shape) for b in calibration.batches] == [(4, 16), (2, 16)]
    for batch, log_probs in zip(calibration.batches, calibration.parent_log_probs):
        expected = torch.log_softmax(supernet.gpt(batch)[0], -1)
        torch.testing.assert_close(log_probs, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValidationError, match="need more than block_size"):
        Calibration.from_tokens(supernet, tokens[:16])


def test_kl_to_parent_matches_torch_distributions(supernet, tokens):
    calibration = Calibration.from_tokens(supernet, tokens, n_blocks=6, batch_size=4)
    assert kl_to_parent(supernet, SubNetwork.full(CONFIG), calibration) == 0.0
    dense = extract(supernet, SUB)
    with torch.no_grad():
        expected = torch.cat(
            [
                torch.distributions.kl_divergence(
                    torch.distributions.Categorical(logits=supernet.gpt(b)[0]),
                    torch.distributions.Categorical(logits=dense(b)[0]),
                ).reshape(-1)
                for b in calibration.batches
            ]
        ).mean()
    kl = kl_to_parent(supernet, SUB, calibration)
    assert kl > 1e-3 and kl == pytest.approx(float(expected), rel=1e-4)
    assert kl_to_parent(supernet, SUB, list(calibration.batches)) == pytest.approx(kl, rel=1e-6)


def test_kl_runs_only_the_sub_network_once_per_batch(supernet, tokens):
    calibration = Calibration.from_tokens(supernet, tokens, n_blocks=6, batch_size=4)
    calls = []
    handle = supernet.register_forward_hook(lambda *_: calls.append(1))
    try:
        kl_to_parent(supernet, SUB, calibration)
    finally:
        handle.remove()
    assert len(calls) == len(calibration.batches)  # the parent's side is cached


def test_validation_loss_matches_lm_evaluate(supernet, tokens):
    full = validation_loss(supernet, SubNetwork.full(CONFIG), tokens, n_blocks=10, batch_size=4)
    assert full == pytest.approx(evaluate(supernet.gpt, tokens, n_blocks=10), rel=1e-5)
    sub = validation_loss(supernet, SUB, tokens, n_blocks=10)
    assert sub == pytest.approx(evaluate(extract(supernet, SUB), tokens, n_blocks=10), rel=1e-5)


class _Probe(nn.Module):
    """Records the thread count and grad mode of every forward pass."""

    def __init__(self):
        super().__init__()
        self.config = CONFIG
        self.linear = nn.Linear(1, 1)
        self.seen = []

    def forward(self, idx):
        self.seen.append((torch.get_num_threads(), torch.is_grad_enabled(), tuple(idx.shape)))
        return idx


def test_measure_latency_warms_up_times_and_restores_settings():
    probe = _Probe().train()
    threads = torch.get_num_threads()
    ms = measure_latency(probe, batch_size=3, repeats=5, warmup=2, threads=threads + 1)
    assert ms >= 0 and len(probe.seen) == 7
    assert set(probe.seen) == {(threads + 1, False, (3, 16))}
    assert torch.get_num_threads() == threads and probe.training
    with pytest.raises(ValidationError, match="repeats ≥ 1"):
        measure_latency(probe, repeats=0)


def test_latency_grows_with_the_model():
    small = GPT(GPTConfig(width=16, depth=1, head_size=8, block_size=64), seed=0)
    large = GPT(GPTConfig(width=128, depth=4, head_size=32, block_size=64), seed=0)
    options = dict(batch_size=4, repeats=5, warmup=1)
    assert measure_latency(large, **options) > 2 * measure_latency(small, **options)


def test_evaluator_computes_each_value_once(supernet, tokens):
    calibration = Calibration.from_tokens(supernet, tokens, n_blocks=4)
    evaluator = Evaluator(supernet, calibration, latency={"repeats": 1, "warmup": 0})
    assert evaluator.available == ("kl", "params", "flops", "latency_ms")
    values = evaluator.values(SUB, ["kl", "params", "latency_ms"])
    assert (
        values["params"] == count_parameters(CONFIG, SUB) == extract(supernet, SUB).n_parameters()
    )
    assert values["kl"] == kl_to_parent(supernet, SUB, calibration)
    calls = []
    handle = supernet.register_forward_hook(lambda *_: calls.append(1))
    try:
        assert evaluator.values(SUB, ["kl", "latency_ms"]) == {
            k: values[k] for k in ("kl", "latency_ms")
        }
    finally:
        handle.remove()
    assert calls == []
    with pytest.raises(ValidationError, match="pass validation tokens"):
        evaluator.value(SUB, "val_loss")
    with pytest.raises(ValidationError, match="unknown latency option"):
        Evaluator(supernet, latency={"runs": 3})

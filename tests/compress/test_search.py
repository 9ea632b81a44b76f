"""Pareto fronts against brute force; the search: every method's front, the parent's KL of 0,
reproducible seeds, resume after a stop and after SIGKILL, bad storage URLs."""

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import optuna
import pytest
import torch

from autofm.compress import SubNetwork, SuperNetwork
from autofm.compress.objectives import Calibration
from autofm.compress.subnet_search import METHODS, load_result, search
from autofm.core.errors import ValidationError
from autofm.core.pareto import best_under, hypervolume_2d, pareto_mask
from autofm.lm import GPT, GPTConfig

# ---- Pareto fronts -----------------------------------------------------------------------------


def _dominates(a, b):
    return bool(np.all(a <= b) and np.any(a < b))


def _area_by_cells(points, reference):
    """The dominated area summed over the cells of the grid through every coordinate."""
    xs = np.unique(np.append(points[:, 0], reference[0]))
    ys = np.unique(np.append(points[:, 1], reference[1]))
    area = 0.0
    for x0, x1 in itertools.pairwise(xs[xs <= reference[0]]):
        for y0, y1 in itertools.pairwise(ys[ys <= reference[1]]):
            if np.any((points[:, 0] <= x0) & (points[:, 1] <= y0)):
                area += (x1 - x0) * (y1 - y0)
    return area


@pytest.mark.parametrize("seed", range(5))
def test_pareto_helpers_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 8, (30, 2)).astype(float)  # ties and duplicates included
    brute = [not any(_dominates(q, p) for q in points) for p in points]
    assert pareto_mask(points).tolist() == brute
    cube = rng.random((25, 3))
    assert pareto_mask(cube).tolist() == [not any(_dominates(q, p) for q in cube) for p in cube]
    reference = np.array([6.5, 7.0])  # some points lie outside
    assert hypervolume_2d(points, reference) == pytest.approx(_area_by_cells(points, reference))
    assert hypervolume_2d(points[pareto_mask(points)], reference) == pytest.approx(
        hypervolume_2d(points, reference)
    )
    for budget in (-1, 0, 3, 7.5):
        fits = [i for i, p in enumerate(points) if p[1] <= budget]
        index = best_under(points, budget)
        if not fits:
            assert index is None
        else:
            assert tuple(points[index]) == min(tuple(points[i]) for i in fits)
            assert pareto_mask(points)[index]  # the best under a budget is on the front


def test_pareto_helpers_refuse_bad_points():
    assert hypervolume_2d(np.empty((0, 2)), (1, 1)) == 0.0
    with pytest.raises(ValidationError, match="NaN"):
        pareto_mask([[0.0, np.nan]])
    with pytest.raises(ValidationError, match="n×2"):
        hypervolume_2d([[1.0, 2.0, 3.0]], (4, 4))


# ---- the search --------------------------------------------------------------------------------

CONFIG = GPTConfig(width=32, depth=2, head_size=8, block_size=16)


def _supernet():
    gpt = GPT(CONFIG, seed=0)
    with torch.no_grad():
        gpt.wte.weight.mul_(20)  # a peakier parent than a fresh init: KLs clearly above 0
    return SuperNetwork(gpt.eval())


@pytest.fixture(scope="module")
def setup():
    supernet = _supernet()
    tokens = np.random.default_rng(0).integers(0, 256, 400).astype(np.uint8)
    return supernet, Calibration.from_tokens(supernet, tokens, n_blocks=4), tokens


def _run(setup, run_dir, **kwargs):
    supernet, calibration, _ = setup
    options = dict(method="random", n_trials=6, seed=0, population_size=4)
    return search(supernet, calibration=calibration, run_dir=run_dir, **options | kwargs)


def _trials(result):
    return [(c.number, c.sub, c.values) for c in result.trials]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finds_a_non_dominated_front(setup, tmp_path, method):
    supernet, _, _ = setup
    result = _run(setup, tmp_path, method=method, n_trials=10, space=supernet.space("layerwise"))
    assert len(result.trials) == 10 and result.front
    points = np.array([[c.values["kl"], c.values["params"]] for c in result.front])
    assert pareto_mask(points).all()
    assert list(points[:, 1]) == sorted(points[:, 1])
    everything = np.array([[c.values["kl"], c.values["params"]] for c in result.trials])
    front_of_all = {tuple(p) for p in everything[pareto_mask(everything)]}
    assert {tuple(p) for p in points} == front_of_all
    largest = result.trials[0]  # every method starts with the parent itself
    assert largest.sub == supernet.space().largest() and largest.values["kl"] == 0.0
    assert set(largest.values) == {"kl", "params", "flops"}
    assert result.hypervolume == pytest.approx(hypervolume_2d(points, result.reference))
    assert result.hypervolume > 0
    assert load_result(tmp_path, result.study_name) == result
    summary = json.loads(json.dumps(result.to_dict()))
    assert [p["objective"] for p in summary["front"]] == list(points[:, 0])
    assert [SubNetwork.from_dict(p["sub_network"]) for p in summary["front"]] == [
        c.sub for c in result.front
    ]


def test_local_search_never_evaluates_a_sub_network_twice(setup, tmp_path):
    result = _run(setup, tmp_path, method="local", n_trials=12)
    assert len({c.sub for c in result.trials}) == 12


@pytest.mark.parametrize("method", ["random", "nsga2"])
def test_the_same_seed_gives_the_same_trials(setup, tmp_path, method):
    first = _run(setup, tmp_path / "a", method=method)
    assert _trials(_run(setup, tmp_path / "b", method=method)) == _trials(first)
    other = _run(setup, tmp_path / "c", method=method, seed=1)
    assert [c.sub for c in other.trials] != [c.sub for c in first.trials]


@pytest.mark.parametrize("method", ["nsga2", "local"])
def test_a_stopped_search_resumes_with_every_trial_kept(setup, tmp_path, method):
    before = _trials(_run(setup, tmp_path, method=method, n_trials=4))
    after = _run(setup, tmp_path, method=method, n_trials=8)
    assert len(after.trials) == 8 and _trials(after)[:4] == before
    with pytest.raises(ValidationError, match="another seed"):
        _run(setup, tmp_path, method=method, seed=5, study_name=after.study_name)


def test_quality_and_size_objectives_and_budgets(setup, tmp_path):
    supernet, calibration, tokens = setup
    result = search(
        supernet,
        objectives=("val_loss", "latency_ms"),
        method="random",
        n_trials=4,
        calibration=calibration,
        validation_tokens=tokens,
        n_blocks=4,
        latency={"repeats": 1, "warmup": 0},
        run_dir=tmp_path,
    )
    assert all(
        set(c.values) == {"kl", "val_loss", "params", "flops", "latency_ms"} for c in result.trials
    )
    best = result.best_under(params=result.trials[0].values["params"] - 1)
    fits = [c for c in result.trials if c.values["params"] < result.trials[0].values["params"]]
    assert best.values["val_loss"] == min(c.values["val_loss"] for c in fits)
    assert result.best_under(latency_ms=1e9).values["val_loss"] == min(
        c.values["val_loss"] for c in result.trials
    )
    with pytest.raises(ValidationError, match="no searched sub-network has params ≤ 10"):
        result.best_under(params=10)
    with pytest.raises(ValidationError, match="exactly one budget"):
        result.best_under(params=1e6, latency_ms=5)
    kl_only = _run(setup, tmp_path, n_trials=2)
    with pytest.raises(ValidationError, match="did not measure latency_ms"):
        kl_only.best_under(latency_ms=5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"storage": "nosuchdialect://host/db"},
        {"storage": "sqlite:////no/such/folder/study.db"},
        {"method": "cmaes"},
        {"objectives": ("params", "kl")},
        {"objectives": ("val_loss", "params")},  # no validation tokens
        {"n_trials": 0},
    ],
)
def test_bad_arguments_are_one_line_validation_errors(setup, tmp_path, kwargs):
    with pytest.raises(ValidationError) as caught:
        _run(setup, tmp_path, **kwargs)
    assert "\n" not in str(caught.value)


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np, torch
    torch.set_num_threads(1)
    from compress.test_search import _supernet
    from autofm.compress.objectives import Calibration
    from autofm.compress.subnet_search import search
    supernet = _supernet()
    tokens = np.random.default_rng(0).integers(0, 256, 400).astype(np.uint8)
    calibration = Calibration.from_tokens(supernet, tokens, n_blocks=4)
    search(supernet, method={method!r}, n_trials={trials}, calibration=calibration,
           storage={url!r}, study_name="s", population_size=4)
    """
)


def _complete(url):
    study = optuna.load_study(study_name="s", storage=url)
    return {
        t.number: t.values for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nsga2", "local"])
def test_a_killed_search_resumes_with_no_finished_trial_lost(setup, tmp_path, method):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tests = os.path.dirname(os.path.dirname(__file__))
    script = WORKER.format(tests=tests, method=method, trials=10_000, url=url)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            time.sleep(0.3)
            try:
                if len(_complete(url)) >= 5:
                    break
            except Exception:  # the storage or the study may not exist yet
                continue
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _complete(url)
    assert len(before) >= 5
    supernet, calibration, _ = setup
    result = search(
        supernet,
        method=method,
        n_trials=len(before) + 3,
        calibration=calibration,
        storage=url,
        study_name="s",
        population_size=4,
    )
    after = _complete(url)
    assert len(after) == len(result.trials) == len(before) + 3
    assert all(after[n] == values for n, values in before.items())


def test_a_search_leaves_optuna_logging_and_warning_filters_alone(setup, tmp_path):
    verbosity = optuna.logging.get_verbosity()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        for method in METHODS:
            _run(setup, tmp_path, method=method, n_trials=3)
        assert warnings.filters == filters
    assert optuna.logging.get_verbosity() == verbosity
    assert [str(w.message) for w in caught] == []


@pytest.mark.slow  # importing transformers takes seconds
def test_a_llama_super_network_is_searched_by_latency(tmp_path):
    transformers = pytest.importorskip("transformers")
    from autofm.compress.hf_supernet import LlamaSuperNetwork

    config = transformers.LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    supernet = LlamaSuperNetwork(transformers.LlamaForCausalLM(config).eval())
    tokens = np.random.default_rng(0).integers(0, 256, 300)
    result = search(
        supernet,
        objectives=("kl", "latency_ms"),
        method="local",
        n_trials=4,
        calibration=Calibration.from_tokens(supernet, tokens, n_blocks=4),
        latency={"repeats": 2, "warmup": 1},
        run_dir=tmp_path,
    )
    assert result.trials[0].values["kl"] == 0.0 and result.front
    assert all(c.values["latency_ms"] > 0 for c in result.trials)
    assert result.trials[0].values["params"] == supernet.model.num_parameters()

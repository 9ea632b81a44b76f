import json

import pytest
import torch

from autofm.cli import main
from autofm.core.checkpoint import load_checkpoint as load_checkpoint_tensors
from autofm.core.checkpoint import save_model
from autofm.core.report import Report
from autofm.icl.experiments import agreement, compare, counting, steps_on_linear
from autofm.icl.pretrained import RECIPES, build_pfn, build_pfn_from_config
from autofm.icl.priors import CountingPrior, GPPrior, StepPrior


def test_agreement_of_the_exact_ppd_with_itself_is_zero():
    prior = GPPrior()
    batch = prior.sample(4, 6, 5, 1, torch.Generator().manual_seed(0))
    exact = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    numbers = agreement(exact, exact, batch.y_query)
    assert numbers["nll_gap"] == 0 and numbers["mean_mse"] == 0
    assert numbers["max_abs_mean_diff"] == 0


def test_compare_reports_every_context_size_and_an_untrained_pfn_is_worse():
    model = build_pfn(RECIPES["gp"])
    result = compare(model, GPPrior(), n_tasks=4, n_query=5, context_sizes=(0, 3, 60), seed=1)
    assert [row["n_context"] for row in result["by_context"]] == [0, 3]  # 60 > max_context
    assert result["nll_gap"] > 0.1
    again = compare(model, GPPrior(), n_tasks=4, n_query=5, context_sizes=(0, 3, 60), seed=1)
    assert again["nll_gap"] == result["nll_gap"]


def test_counting_experiment_exact_ppd_follows_laplace():
    model = build_pfn(RECIPES["counting"])
    result = counting(model, CountingPrior(), max_ones=8)
    assert len(result["by_k"]) == 8
    assert result["exact_vs_laplace_max_abs"] < 2e-3
    assert result["nll_gap"] >= 0  # a KL divergence


def test_steps_on_linear_exact_ppd_is_a_smooth_curve():
    model = build_pfn(RECIPES["steps"])
    report = Report("t")
    result = steps_on_linear(model, StepPrior(), n_datasets=2, report=report)
    # a single step of the prior would jump by ≥ 0.1; the PPD averages many steps
    assert result["max_jump_exact"] < 0.08
    assert "<img" in report.to_html()


@pytest.fixture
def untrained_checkpoints(tmp_path):
    """Untrained PFNs saved in a folder of the test's own, loaded by path (a shipped name in
    $AUTOFM_CHECKPOINTS would be refused: its files differ from the shipped ones)."""
    for name in ("counting", "gp"):
        recipe = RECIPES[name]
        model = build_pfn(recipe)
        save_model(tmp_path / f"icl-{name}", model, training={"prior": name})
    return tmp_path


def test_cli_compare_prints_one_json_object(untrained_checkpoints, capsys):
    checkpoint = str(untrained_checkpoints / "icl-gp")
    args = ["--prior", "gp", "--checkpoint", checkpoint, "--json", "--n-tasks", "2", "--seed", "3"]
    assert main(["icl", "compare", *args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"nll_gap", "mean_mse", "max_abs_mean_diff"} <= set(result)
    assert result["seed"] == 3 and result["prior"] == "gp"


def test_cli_bad_input_exits_2(untrained_checkpoints, capsys):
    assert main(["icl", "compare", "--prior", "counting", "--n-tasks", "0"]) == 2
    assert "--n-tasks" in capsys.readouterr().err
    assert main(["icl", "compare", "--prior", "gp", "--checkpoint", "/nonexistent/x"]) == 2


def test_checkpoint_rebuild_refuses_mismatched_weights(untrained_checkpoints):
    from autofm.core.checkpoint import load_model, load_state_into
    from autofm.core.errors import CheckpointError

    _, meta = load_model(untrained_checkpoints / "icl-gp", kind="pfn", build=build_pfn_from_config)
    narrower = build_pfn_from_config({**meta["model"], "d_model": 32}, "test")
    tensors, _ = load_checkpoint_tensors(untrained_checkpoints / "icl-gp")
    with pytest.raises(CheckpointError, match="shape"):
        load_state_into(narrower, tensors)


def test_bucket_floor_is_near_zero_with_fine_buckets_and_grows_with_coarse_ones():
    from autofm.icl.experiments import bucket_floor
    from autofm.icl.pretrained import prior_borders
    from autofm.icl.priors import GPPrior
    from autofm.pfn.bar_distribution import BarDistribution

    prior = GPPrior()
    floors = {
        k: bucket_floor(
            prior,
            BarDistribution(prior_borders(prior, k, 50)),
            n_tasks=32,
            context_sizes=(0, 10, 50),
            seed=1,
        )["floor"]
        for k in (20, 100, 1000)
    }
    # discretising the exact predictive loses information: more buckets, less loss
    assert floors[20] > floors[100] > floors[1000]
    assert abs(floors[1000]) < 0.01
    assert floors[100] > 0.02  # why a 100-bucket GP PFN cannot reach a 0.02-nat gap


def test_cli_train_with_a_bucket_count_writes_a_loadable_pfn(tmp_path, capsys):
    from autofm.icl.pretrained import load_pfn

    out = tmp_path / "run"
    args = ["icl", "train", "--prior", "gp", "--run-dir", str(out), "--steps", "2"]
    args += ["--buckets", "40"]
    assert main([*args, "--json", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    model, meta = load_pfn(out / "model")
    assert model.config.n_outputs == 40 and model.distribution.n_buckets == 40
    assert meta["training"]["prior"] == "gp"
    bad = ["icl", "train", "--prior", "counting", "--run-dir", str(tmp_path / "c")]
    bad += ["--buckets", "40"]
    assert main(bad) == 2
    assert "regression prior" in capsys.readouterr().err

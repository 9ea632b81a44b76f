"""Leave-one-task-out simulation: regret by hand on a tiny meta-dataset, invariants of every
trajectory, reproducibility, the left-out task never seen by the surrogates."""

import numpy as np
import pandas as pd
import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.finetune import lodo
from autofm.finetune.lodo import evaluate_steps, portfolio_order, run_lodo, summarise
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.simulated import simulated_metadataset
from autofm.finetune.space import sample_configs

FAST = {"performance": {"n_iterations": 40, "max_conditioning": 300}, "cost": {"n_iterations": 60}}


def tiny(curves, zero_shot=0.3):
    """A hand-made meta-dataset: one row of curves per task, every epoch one second."""
    curves = np.asarray(curves, dtype=float)
    tasks = [f"task{i}" for i in range(len(curves))]
    meta = pd.DataFrame({"n_train": 100.0}, index=pd.Index(tasks, name="task"))
    info = {t: {"zero_shot_val": zero_shot, "zero_shot_test": zero_shot - 0.05} for t in tasks}
    return MetaDataset(
        tasks,
        sample_configs(curves.shape[1]),
        meta,
        curves,
        np.ones_like(curves),
        curves.max(axis=2) - 0.01,
        info,
    )


@pytest.fixture(scope="module")
def frame():
    torch.set_num_threads(1)
    md = simulated_metadataset(n_tasks=5, n_configs=12, max_epochs=4, seed=1, missing_fraction=0.2)
    return run_lodo(
        md, seeds=(0, 1), surrogate_kwargs=FAST, optimizer_kwargs={"refit_iterations": 2}
    )


def test_regret_by_hand():
    md = tiny([[[0.2, 0.4], [0.6, 0.8]]])
    steps = [(0, 1), (0, 2), (1, 1), (1, 2)]
    result = evaluate_steps(md, "task0", steps, [0.5, 1, 2, 3, 4, 10])
    # best 0.8, worst 0.2; before a better epoch the incumbent is the zero-shot model (0.3)
    expected = [0.5 / 0.6, 0.5 / 0.6, 0.4 / 0.6, 0.2 / 0.6, 0.0, 0.0]
    np.testing.assert_allclose(result["regret"], expected)
    assert list(result["incumbent_config"]) == [-1, -1, 0, 1, 1, 1]
    assert list(result["epochs_trained"]) == [0, 1, 2, 3, 4, 4]
    np.testing.assert_allclose(result["incumbent_test"], [0.25, 0.25, 0.39, 0.79, 0.79, 0.79])


def test_an_oracle_has_zero_regret_and_steps_are_drawn_lazily():
    md = simulated_metadataset(n_tasks=2, n_configs=8, max_epochs=4, seed=0)
    t = 1
    config_id, epoch = np.unravel_index(np.nanargmax(md.curves[t]), md.curves[t].shape)
    oracle = [(int(config_id), e) for e in range(1, epoch + 2)]
    cost = md.costs[t, config_id, : epoch + 1].sum()
    drawn = []

    def steps():
        for step in [*oracle, (0, 1), (0, 2)]:
            drawn.append(step)
            yield step

    result = evaluate_steps(md, md.tasks[t], steps(), [cost])
    assert result["regret"].iloc[0] == 0.0
    assert len(drawn) == len(oracle) + 1  # the step past the budget, and no more


def test_every_trajectory_has_regret_in_unit_interval_and_never_rising(frame):
    assert set(frame["strategy"]) == set(lodo.STRATEGIES)
    assert len(frame) == 5 * len(lodo.STRATEGIES) * 2 * 3
    assert frame["regret"].between(0, 1).all()
    for _, trajectory in frame.groupby(["task", "strategy", "seed"]):
        regret = trajectory.sort_values("budget_multiple")["regret"].to_numpy()
        assert (np.diff(regret) <= 1e-12).all()
    zero_shot = frame[frame["strategy"] == "zero_shot"]
    assert (zero_shot["incumbent_config"] == -1).all() and (zero_shot["epochs_trained"] == 0).all()
    default = frame[frame["strategy"] == "default"]
    assert set(default["incumbent_config"]) <= {-1, 0}


def test_meta_learned_search_beats_random_search(frame):
    summary = summarise(frame).set_index(["strategy", "budget_multiple"])["regret_mean"]
    assert summary[("ours", 3)] < summary[("random", 3)]
    assert summary[("ours", 10)] <= summary[("zero_shot", 10)]


def test_random_search_is_reproducible_by_seed():
    md = simulated_metadataset(n_tasks=3, n_configs=10, max_epochs=3, seed=2)
    first, again, other = (run_lodo(md, ["random"], seeds=[s]) for s in (3, 3, 4))
    pd.testing.assert_frame_equal(first, again)
    assert not first["incumbent_config"].equals(other["incumbent_config"])


def test_surrogates_never_see_the_left_out_task(monkeypatch):
    seen = []

    class Recording(lodo.PerformanceSurrogate):
        def fit(self, metadataset, seed=None, n_iterations=None):
            seen.append(list(metadataset.tasks))
            return super().fit(metadataset, seed, n_iterations)

    monkeypatch.setattr(lodo, "PerformanceSurrogate", Recording)
    md = simulated_metadataset(n_tasks=3, n_configs=6, max_epochs=3, seed=0)
    frame = run_lodo(md, ["ours"], seeds=(0, 1), budgets_multiples=(1,), surrogate_kwargs=FAST)
    assert seen == [[t for t in md.tasks if t != left_out] for left_out in md.tasks]
    assert len(frame) == 3 * 2


def test_portfolio_order_by_mean_rank():
    md = tiny([[[0.1, 0.5], [0.2, 0.9], [0.3, 0.7]], [[0.1, 0.8], [0.2, 0.6], [0.3, np.nan]]])
    # final scores: task0 ranks 3,1,2; task1 ranks 1,2,(missing) → means 2, 1.5, 2
    assert list(portfolio_order(md, np.arange(3))) == [1, 0, 2]
    assert list(portfolio_order(md, np.array([0, 2]))) == [2, 0]  # ranks among the pool


def test_summarise_averages_seeds_then_tasks():
    frame = pd.DataFrame(
        {
            "task": ["a", "a", "b", "b"],
            "strategy": "s",
            "seed": [0, 1, 0, 1],
            "budget_multiple": 1,
            "regret": [0.2, 0.4, 0.5, 0.5],
            "incumbent_test": [0.7, 0.7, 0.6, 0.6],
        }
    )
    row = summarise(frame).iloc[0]
    assert row["regret_mean"] == pytest.approx(0.4)
    assert row["regret_ci95"] == pytest.approx(1.96 * np.std([0.3, 0.5], ddof=1) / np.sqrt(2))
    assert (row["n_tasks"], row["n_seeds"]) == (2, 2)


def test_refuses_what_it_cannot_simulate():
    md = tiny([[[0.2, 0.4]], [[0.3, 0.5]]])
    with pytest.raises(ValidationError, match="unknown strategies"):
        run_lodo(md, ["grid"])
    md.task_info["task0"] = {}
    with pytest.raises(ValidationError, match="zero_shot_val"):
        run_lodo(md, ["default"])

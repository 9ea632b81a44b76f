"""Folds fitted in parallel processes give exactly the values of folds fitted one after another."""

import multiprocessing
import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from autofm.cli import main
from autofm.core.errors import ValidationError
from autofm.core.study import WORKER, _machine
from autofm.fairness import objective as objective_module
from autofm.fairness.data import prepare_data
from autofm.fairness.objective import (
    TrialObjective,
    default_jobs,
    evaluate,
    local_workers,
)
from autofm.fairness.search import ManyFairHPO

from .helpers import planted

PARAMS = {
    "rf": {
        "max_depth": 6,
        "min_samples_split": 4,
        "min_samples_leaf": 2,
        "max_features": 0.7,
        "n_estimators": 20,
    },
    "gb": {
        "learning_rate": 0.1,
        "max_depth": 4,
        "max_features": 0.8,
        "l2_regularization": 1.0,
        "max_iter": 20,
    },
    "mlp": {
        "depth": 2,
        "width": 32,
        "batch_size": 32,
        "alpha": 1e-4,
        "learning_rate_init": 1e-2,
        "n_iter_no_change": 3,
    },
    "logreg": {"C": 1.0, "class_weight": "balanced"},
}


@pytest.fixture(scope="module")
def data():
    table = planted(300)
    return prepare_data(table.drop(columns=["label"]), table["label"], "race", privileged="W")


@pytest.mark.parametrize("model", list(PARAMS))
def test_parallel_folds_give_the_sequential_values_exactly(data, model):
    sequential = evaluate(model, PARAMS[model], data, random_state=4, max_epochs=20, n_jobs=1)
    # two processes for three folds; every test here uses two, so loky's pool is reused
    parallel = evaluate(model, PARAMS[model], data, random_state=4, max_epochs=20, n_jobs=2)
    assert parallel == sequential


def test_a_search_with_parallel_folds_repeats_the_sequential_search(tmp_path):
    table = planted(200)
    X, y = table.drop(columns=["label"]), table["label"]
    values = []
    for n_jobs in (1, 2):
        search = ManyFairHPO(
            model="rf",
            bi_objective_trials=0,
            population_size=4,
            n_jobs=n_jobs,
            workdir=tmp_path / str(n_jobs),
        ).run(X, y, "race", n_trials=6, privileged="W")
        trials = search.trials()
        values.append(trials[[c for c in trials if c.startswith(("val_", "test_", "rate_"))]])
    assert values[0].equals(values[1])


def test_trial_objective_decides_its_processes_at_each_trial(data, monkeypatch):
    chosen = []
    monkeypatch.setattr(
        objective_module, "evaluate", lambda *args: chosen.append(args[-1]) or evaluate(*args)
    )
    study = optuna.create_study(directions=["minimize"] * 2)
    TrialObjective("logreg", ["f1", "dsp"], data, 0, n_jobs=2)(study.ask())
    monkeypatch.setenv("AUTOFM_THREADS", "1")
    TrialObjective("logreg", ["f1", "dsp"], data, 0)(study.ask())
    assert chosen == [2, 1]


@pytest.mark.skipif(_machine() is None, reason="telling live processes needs Linux's /proc")
def test_default_shares_this_hosts_cores_among_the_studys_live_workers_here(monkeypatch):
    monkeypatch.delenv("AUTOFM_THREADS", raising=False)
    monkeypatch.setattr(objective_module.joblib, "cpu_count", lambda: 4)
    study = optuna.create_study()
    assert local_workers(study) == 1 and default_jobs(study) == 4
    host, machine = socket.gethostname(), _machine()
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    this = {"host": host, "pid": os.getpid(), "machine": machine, "started": _started(os.getpid())}
    records = [
        this,
        {"host": host, "pid": exited.pid, "machine": machine, "started": 1},  # gone
        {"host": "elsewhere", "pid": 13, "machine": "other", "started": 1},  # another host
    ]
    for record in records:
        trial = study.ask()
        trial.set_user_attr(WORKER, record)
        study.tell(trial, 1.0)  # finished trials count too: the process may be between trials
    assert local_workers(study) == 1 and default_jobs(study) == 4
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as sleeper:
        study.ask().set_user_attr(
            WORKER,
            {
                "host": host,
                "pid": sleeper.pid,
                "machine": machine,
                "started": _started(sleeper.pid),
            },
        )
        assert local_workers(study) == 2 and default_jobs(study) == 2
        monkeypatch.setattr(objective_module.joblib, "cpu_count", lambda: 1)
        assert default_jobs(study) == 1
        monkeypatch.setenv("AUTOFM_THREADS", "3")
        assert default_jobs(study) == 3
        sleeper.kill()


def _started(pid: int) -> int:
    """A process's start time in clock ticks since boot, as `record_worker` records it."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[19])


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_autofm_threads_is_refused_before_the_search(monkeypatch, tmp_path, value):
    monkeypatch.setenv("AUTOFM_THREADS", value)
    with pytest.raises(ValidationError, match="AUTOFM_THREADS"):
        default_jobs()
    table = planted(120)
    with pytest.raises(ValidationError, match="AUTOFM_THREADS"):
        ManyFairHPO(model="logreg", workdir=tmp_path).run(
            table.drop(columns=["label"]), table["label"], "race", n_trials=1, privileged="W"
        )
    assert not (tmp_path / "study.db").exists()


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_bad_n_jobs_is_refused(tmp_path, n_jobs):
    table = planted(120)
    with pytest.raises(ValidationError, match="n_jobs"):
        ManyFairHPO(model="logreg", n_jobs=n_jobs, workdir=tmp_path).run(
            table.drop(columns=["label"]), table["label"], "race", n_trials=1, privileged="W"
        )
    assert not (tmp_path / "study.db").exists()


def test_cli_threads_flag(tmp_path, capsys):
    planted(160).to_csv(tmp_path / "table.csv", index=False)
    args = ["fair", "run", str(tmp_path / "table.csv"), "--label", "label", "--protected", "race"]
    args += ["--privileged", "W", "--model", "logreg", "--trials", "2", "--bi-trials", "0"]
    with pytest.raises(SystemExit) as refused:
        main([*args, "--threads", "0", "--out", str(tmp_path / "bad")])
    assert refused.value.code == 2 and "--threads" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main([*args, "--threads", "2", "--out", str(tmp_path / "run"), "--json"]) == 0


def _search_in_child(folder) -> None:
    table = planted(160)
    ManyFairHPO(model="logreg", bi_objective_trials=0, n_jobs=2, workdir=folder).run(
        table.drop(columns=["label"]), table["label"], "race", n_trials=2, privileged="W"
    )


@pytest.mark.slow
def test_a_search_in_a_multiprocessing_child_exits_when_done(tmp_path):
    # joblib keeps idle fold processes for 300 s, and a multiprocessing child waits for them
    child = multiprocessing.get_context("spawn").Process(target=_search_in_child, args=(tmp_path,))
    child.start()
    child.join(timeout=120)
    alive = child.is_alive()
    if alive:
        child.terminate()
    assert not alive and child.exitcode == 0
    assert len(ManyFairHPO.load(tmp_path).trials()) == 2

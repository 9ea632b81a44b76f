import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.pareto import pareto_mask
from autofm.fairness.data import prepare_data
from autofm.fairness.search import FORMAT_VERSION, ManyFairHPO

from .helpers import planted


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    table = planted(300)
    folder = tmp_path_factory.mktemp("fair")
    search = ManyFairHPO(
        model="logreg", bi_objective_trials=3, workdir=folder, population_size=4
    ).run(table.drop(columns=["label"]), table["label"], "race", n_trials=8, privileged="W")
    return search, folder, table


def test_every_trial_stores_all_objectives_on_val_and_test(finished):
    search, _, _ = finished
    trials = search.trials()
    assert len(trials) == 8
    for o in ("f1", "dsp", "deod", "deop", "invd"):
        assert trials[f"val_{o}"].between(0, 1).all() and trials[f"test_{o}"].between(0, 1).all()
    assert {len(f) for f in search.bi_objective_runs().values()} == {3}
    assert set(search.bi_objective_runs()) == {"dsp", "deod", "deop", "invd"}
    study_values = np.array(
        [t.values for t in search.study_.get_trials(states=(TrialState.COMPLETE,))]
    )
    assert np.allclose(study_values, trials[[f"val_{o}" for o in search.objectives_]].to_numpy())


def test_pareto_front_is_non_dominated_and_complete(finished):
    search, _, _ = finished
    trials, front = search.trials(), search.pareto_front()
    columns = [f"val_{o}" for o in search.objectives_]
    assert pareto_mask(front[columns].to_numpy()).all()
    assert len(front) == pareto_mask(trials[columns].to_numpy()).sum()


def test_load_gives_the_same_results(finished):
    search, folder, _ = finished
    loaded = ManyFairHPO.load(folder)
    assert loaded.model == "logreg" and loaded.objectives_ == search.objectives_
    pd.testing.assert_frame_equal(loaded.pareto_front(), search.pareto_front())
    conflicts = loaded.conflicts()
    assert conflicts["contrast"].shape == (4, 4)
    assert np.allclose(np.diag(conflicts["contrast"].to_numpy()), 0)
    selection = loaded.select("f1=1")
    assert selection.val["f1"] == pytest.approx(search.pareto_front()["val_f1"].min())


def test_resume_with_different_data_is_refused(finished):
    _, folder, table = finished
    other = planted(300, seed=5)
    with pytest.raises(ValidationError, match="data_sha256"):
        ManyFairHPO(model="logreg", workdir=folder).run(
            other.drop(columns=["label"]), other["label"], "race", n_trials=11, privileged="W"
        )


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from fairness.helpers import planted
    from autofm.fairness.search import ManyFairHPO
    table = planted(300)
    ManyFairHPO(model="logreg", bi_objective_trials=0, population_size=4).run(
        table.drop(columns=["label"]), table["label"], "race", n_trials={trials},
        storage={url!r}, privileged="W",
    )
    """
)


def _complete(url):
    study = optuna.load_study(study_name="fair", storage=url)
    return {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}


@pytest.mark.slow
def test_killed_run_resumes_with_no_finished_trial_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tests = os.path.dirname(os.path.dirname(__file__))
    script = WORKER.format(tests=tests, trials=500, url=url)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            if (tmp_path / "study.db").exists():
                try:
                    if len(_complete(url)) >= 3:
                        break
                except Exception:  # the study may not exist yet
                    continue
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _complete(url)
    assert len(before) >= 3
    table = planted(300)
    ManyFairHPO(model="logreg", bi_objective_trials=0, population_size=4).run(
        table.drop(columns=["label"]),
        table["label"],
        "race",
        n_trials=len(before) + 2,
        storage=url,
        privileged="W",
    )
    after = _complete(url)
    assert len(after) == len(before) + 2
    assert all(after[n] == values for n, values in before.items())


@pytest.mark.slow
def test_two_workers_share_one_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tests = os.path.dirname(os.path.dirname(__file__))
    script = WORKER.format(tests=tests, trials=4, url=url)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    # each worker stops once the study holds 4 finished trials; the other may finish one in flight
    assert 4 <= len(_complete(url)) <= 5


def _table_parts(table):
    return table.drop(columns=["label"]), table["label"]


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda t: t.assign(race="W"), {"privileged": "W"}, "one group"),
        (lambda t: t.assign(label=np.arange(len(t)) % 3), {"privileged": "W"}, "binary"),
        (lambda t: t, {"privileged": "Z"}, "does not occur"),
        (lambda t: t, {}, "say which one is privileged"),
        (
            lambda t: t.assign(x1=np.where(np.arange(len(t)) == 3, np.nan, t["x1"])),
            {"privileged": "W"},
            "NaN",
        ),
        (
            lambda t: t.assign(label=np.where(t["label"] == 1, "yes", "no")),
            {"privileged": "W"},
            "positive",
        ),
    ],
)
def test_bad_input_is_refused(tmp_path, change, kwargs, message):
    X, y = _table_parts(change(planted(120)))
    with pytest.raises(ValidationError, match=message):
        ManyFairHPO(model="logreg", workdir=tmp_path).run(X, y, "race", n_trials=1, **kwargs)


def test_more_than_two_groups_are_privileged_versus_the_rest(tmp_path):
    table = planted(200)
    table["race"] = np.where(table["race"] == "W", "W", np.where(np.arange(200) % 2, "B", "A"))
    data = prepare_data(table.drop(columns=["label"]), table["label"], "race", privileged="W")
    assert data.info["unprivileged_values"] == ["A", "B"]
    assert set(np.unique(data.group)) == {0, 1}


def test_unknown_objective_model_and_sampler(tmp_path):
    X, y = _table_parts(planted(120))
    for kwargs, message in (
        ({"objectives": ["f1", "fairness"]}, "unknown objective"),
        ({"objectives": ["dsp"]}, "include 'f1'"),
        ({"model": "svm"}, "unknown model"),
        ({"sampler": "cmaes"}, "unknown sampler"),
    ):
        with pytest.raises(ValidationError, match=message):
            ManyFairHPO(workdir=tmp_path, **kwargs).run(X, y, "race", n_trials=1, privileged="W")


def test_foreign_and_newer_study_files_are_refused(tmp_path, finished):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("just text, not SQLite")
    with pytest.raises(ValidationError, match="not a study file written by autofm"):
        ManyFairHPO.load(not_a_db)
    other_program = tmp_path / "other.db"
    connection = sqlite3.connect(other_program)
    connection.execute("create table things (id integer)")
    connection.commit()
    connection.close()
    before = other_program.read_bytes()
    with pytest.raises(ValidationError, match="not a study file written by autofm"):
        ManyFairHPO.load(other_program)
    assert other_program.read_bytes() == before  # no Optuna tables written into it
    plain_optuna = tmp_path / "plain.db"
    optuna.create_study(study_name="fair", storage=f"sqlite:///{plain_optuna}")
    with pytest.raises(ValidationError, match="not written by autofm.fairness"):
        ManyFairHPO.load(plain_optuna)
    with pytest.raises(DataNotFoundError):
        ManyFairHPO.load(tmp_path / "missing.db")
    _, folder, _ = finished
    newer = tmp_path / "newer.db"
    newer.write_bytes((folder / "study.db").read_bytes())
    study = optuna.load_study(study_name="fair", storage=f"sqlite:///{newer}")
    study.set_user_attr(
        "autofm", study.user_attrs["autofm"] | {"format_version": FORMAT_VERSION + 1}
    )
    with pytest.raises(ValidationError, match="newer than this autofm supports"):
        ManyFairHPO.load(newer)

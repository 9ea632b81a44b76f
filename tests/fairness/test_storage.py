import importlib
import sys
import warnings

import optuna
import pytest

import autofm
from autofm.core.errors import DataNotFoundError
from autofm.fairness.search import ManyFairHPO
from autofm.fairness.storage import experimental_features, make_sampler, storage_url

from .helpers import planted


def test_storage_url_forms(tmp_path):
    assert storage_url("postgresql://host/db") == "postgresql://host/db"
    assert (
        storage_url(tmp_path / "run", create=True) == f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    )
    assert (tmp_path / "run").is_dir()  # created, so that SQLite can write the file
    optuna.create_study(storage=storage_url(tmp_path / "run", create=True))
    assert storage_url(tmp_path / "run") == storage_url(tmp_path / "run" / "study.db")
    with pytest.raises(DataNotFoundError, match="no study storage"):
        storage_url(tmp_path / "missing.db")


@pytest.mark.parametrize(
    ("name", "n_objectives", "expected"),
    [
        ("auto", 2, optuna.samplers.NSGAIISampler),
        ("auto", 5, optuna.samplers.NSGAIIISampler),
        ("nsga3", 2, optuna.samplers.NSGAIIISampler),
        ("random", 5, optuna.samplers.RandomSampler),
        ("tpe", 2, optuna.samplers.TPESampler),
    ],
)
def test_make_sampler(name, n_objectives, expected):
    assert type(make_sampler(name, n_objectives, seed=0, population_size=10)) is expected


def test_experimental_warnings_are_silenced_inside_the_block_only():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with experimental_features():
            optuna.samplers.NSGAIIISampler(population_size=10, seed=0)
        assert caught == []
        optuna.samplers.NSGAIIISampler(population_size=10, seed=0)
    assert [w.category for w in caught] == [optuna.exceptions.ExperimentalWarning]


def test_importing_autofm_fairness_leaves_optuna_logging_and_warning_filters_alone(monkeypatch):
    # import autofm.fairness afresh, as a user's process does; monkeypatch puts the modules back
    for name in [n for n in sys.modules if n.split(".")[:2] == ["autofm", "fairness"]]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(autofm, "fairness")
    verbosity, filters = optuna.logging.get_verbosity(), list(warnings.filters)
    fairness = importlib.import_module("autofm.fairness")
    assert fairness.ManyFairHPO is not ManyFairHPO  # really imported again
    assert optuna.logging.get_verbosity() == verbosity
    assert warnings.filters == filters


def test_a_search_leaves_optuna_logging_and_warning_filters_alone(tmp_path):
    table = planted(120)
    verbosity = optuna.logging.get_verbosity()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        # five objectives: NSGA-III, metric names and heartbeats, Optuna's experimental features
        ManyFairHPO(model="logreg", bi_objective_trials=0, workdir=tmp_path).run(
            table.drop(columns=["label"]), table["label"], "race", n_trials=2, privileged="W"
        )
        assert warnings.filters == filters
    assert optuna.logging.get_verbosity() == verbosity
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]

"""The shared Optuna study plumbing: storage URLs and errors, samplers, study headers."""

import ast
import contextlib
import time
from pathlib import Path

import optuna
import pytest

import autofm.core.study as study_module
from autofm.core.errors import ValidationError
from autofm.core.study import (
    complete_trials,
    default_population_size,
    make_sampler,
    open_storage,
    open_study,
    quiet_logging,
    storage_url,
)

HEADER = {"program": "autofm.test", "format_version": 2, "model": "a", "seed": 1, "grid": (1, 2)}


def test_core_study_imports_no_system():
    tree = ast.parse(Path(study_module.__file__).read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    autofm = [m for m in modules if m and m.startswith("autofm")]
    assert autofm and all(m.startswith("autofm.core.") for m in autofm)


@pytest.mark.parametrize(
    "url", ["nosuchdialect://host/db", "sqlite:////no/such/folder/study.db", "sqlite"]
)
def test_a_storage_that_cannot_be_opened_is_a_one_line_validation_error(url):
    start = time.perf_counter()
    with pytest.raises(ValidationError) as caught:
        open_storage(url)
    assert "\n" not in str(caught.value) and url in str(caught.value)
    assert time.perf_counter() - start < 1  # no retries for a URL that can never work


def test_a_run_folder_that_cannot_be_created_is_a_validation_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValidationError, match="cannot create the run folder"):
        storage_url(tmp_path / "file" / "run", create=True)


def test_make_sampler_names():
    assert type(make_sampler("nsga2", 2, seed=0)) is optuna.samplers.NSGAIISampler
    assert type(make_sampler("random", 2, seed=0)) is optuna.samplers.RandomSampler
    with pytest.raises(ValidationError, match="unknown sampler 'cmaes'"):
        make_sampler("cmaes", 2, seed=0)
    assert [default_population_size(n) for n in (5, 100, 1000)] == [10, 20, 50]


def test_tpe_samples_two_objectives_reproducibly():
    def run():
        study = optuna.create_study(
            directions=["minimize", "minimize"], sampler=make_sampler("tpe", 2, seed=3)
        )
        with quiet_logging():
            study.optimize(
                lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1)), 12
            )
        return [t.params for t in complete_trials(study)]

    first = run()
    assert len(first) == 12 and first == run()


def test_quiet_logging_restores_the_verbosity():
    before = optuna.logging.get_verbosity()
    with quiet_logging():
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    assert optuna.logging.get_verbosity() == before


def test_open_study_writes_then_checks_the_header(tmp_path):
    storage = open_storage(storage_url(tmp_path, create=True))
    with quiet_logging():
        study = open_study(storage, "s", ["minimize"], HEADER, match=("model", "grid"))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert study.user_attrs["autofm"]["grid"] == [1, 2]  # stored as JSON
        again = open_study(storage, "s", ["minimize"], HEADER | {"seed": 2}, match=("grid",))
        assert len(complete_trials(again)) == 2  # resumed: the unmatched seed may differ
        with pytest.raises(ValidationError, match="another model"):
            open_study(storage, "s", ["minimize"], HEADER | {"model": "b"}, match=("model",))
        with pytest.raises(ValidationError, match="not written by autofm.other"):
            open_study(storage, "s", ["minimize"], HEADER | {"program": "autofm.other"})
        with pytest.raises(ValidationError, match="newer than this autofm supports"):
            open_study(storage, "s", ["minimize"], HEADER | {"format_version": 1})
        plain = optuna.create_study(storage=storage, study_name="plain")
        plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        with pytest.raises(ValidationError, match="exists in this storage but was not written"):
            open_study(storage, "plain", ["minimize"], HEADER)


def test_a_header_set_by_another_worker_after_the_first_read_is_found():
    import optuna

    from autofm.core.study import stored_header

    study = optuna.create_study()

    class Racing:  # the first read of the header predates the other worker's write
        reads = 0

        def __getattr__(self, name):
            return getattr(study, name)

        @property
        def user_attrs(self):
            Racing.reads += 1
            return {} if Racing.reads == 1 else {"autofm": {"program": "x"}}

    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert stored_header(Racing(), "autofm") == ({"program": "x"}, True)
    assert stored_header(optuna.create_study(), "autofm") == (None, False)


def test_reading_a_file_that_is_not_a_study_refuses_it_and_leaves_it_untouched(tmp_path):
    import sqlite3

    from autofm.core.errors import ValidationError

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
    for path in (empty, other):
        before = path.read_bytes()
        for location in (path, f"sqlite:///{path}"):
            with pytest.raises(ValidationError, match="not a study file"):
                storage_url(location)
        assert path.read_bytes() == before
    study = tmp_path / "study.db"
    optuna.create_study(storage=storage_url(study, create=True))
    assert storage_url(study) == f"sqlite:///{study.resolve()}"


def test_a_study_of_other_settings_names_the_entries_that_differ(tmp_path):
    from autofm.core.study import open_storage, open_study, storage_url

    storage = open_storage(storage_url(tmp_path / "s.db", create=True))
    parent = {"width": 64, "depth": 3, "heads": 4, "block_size": 128, "vocab_size": 512}
    header = {"program": "test", "format_version": 1, "parent": parent}
    open_study(storage, "s", ["minimize"], header, match=["parent"])
    other = {**header, "parent": {**parent, "block_size": 64}}
    with pytest.raises(ValidationError, match=r"another parent \(block_size 128, not 64\)"):
        open_study(storage, "s", ["minimize"], other, match=["parent"])

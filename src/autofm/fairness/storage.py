"""Where a search lives and how it draws: the storage URL, opening the storage, the sampler.

All runs of a search share one Optuna storage (SQLite in the run folder by default; any RDB URL,
e.g. PostgreSQL, works the same), so a killed run resumes and several workers can share a study.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna

from autofm.core.errors import DataNotFoundError, ValidationError

SAMPLERS = ("auto", "nsga2", "nsga3", "random", "tpe")


@contextlib.contextmanager
def experimental_features() -> Iterator[None]:
    """Use Optuna features still marked experimental (heartbeats, NSGA-III, metric names) without
    their ExperimentalWarning, inside this block only: the process's warning filters stay as
    they were, so a user's own Optuna code still gets its warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def storage_url(location: str | os.PathLike, create: bool = False) -> str:
    """A storage URL from a URL, a run folder (its study.db) or a .db file."""
    text = str(location)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir() or (create and not path.suffix):
        path = path / "study.db"
    if not create and not path.is_file():
        raise DataNotFoundError(
            f"no study storage at {path}; pass a run folder, a .db file or a URL"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, so trials of a killed worker are marked failed."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None

    def connect() -> optuna.storages.RDBStorage:
        with experimental_features():
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=30, grace_period=120
            )

    try:
        for delay in (0.5, 1.0, 2.0):
            try:
                return connect()
            except (IntegrityError, OperationalError):
                time.sleep(delay)  # workers starting together race to create the schema
        return connect()
    except Exception as err:  # SQLAlchemy and Optuna raise many types for a foreign file
        raise ValidationError(
            f"{url} is not an Optuna storage this version can open ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]})"
        ) from err


def make_sampler(
    name: str, n_objectives: int, seed: int, population_size: int
) -> optuna.samplers.BaseSampler:
    """The sampler `name` (one of SAMPLERS); 'auto' is NSGA-II for 2 objectives, else NSGA-III."""
    if name == "auto":
        name = "nsga2" if n_objectives == 2 else "nsga3"
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
    if name == "nsga3":
        with experimental_features():
            return optuna.samplers.NSGAIIISampler(population_size=population_size, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)

"""Optuna studies for every system: where a study lives, opening its storage, samplers, headers.

A search keeps its trials in one Optuna storage: SQLite in the run folder by default (`study.db`),
or any RDB URL (e.g. PostgreSQL) that several workers share. Each trial records the process that
runs it, so a search that resumes at once marks failed the RUNNING trials of a killed worker on
this machine; storages are opened with heartbeats, so those of a worker elsewhere are marked failed
once its heartbeat is older than the grace period. No finished trial is lost. Each study carries a header (user attribute `autofm`) naming the program that wrote it,
so that a study is only resumed by the same program with the same settings.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autofm.core.config import as_json, describe_difference
from autofm.core.errors import DataNotFoundError, ValidationError

SAMPLERS = ("auto", "nsga2", "nsga3", "random", "tpe")
HEADER = "autofm"  # the study user attribute that holds the header
WORKER = "worker"  # the trial user attribute that names the process running the trial


@contextlib.contextmanager
def experimental_features() -> Iterator[None]:
    """Use Optuna features still marked experimental (heartbeats, NSGA-III, metric names) without
    their ExperimentalWarning, inside this block only: the process's warning filters stay as
    they were, so a user's own Optuna code still gets its warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Optuna logs warnings only inside this block (a progress bar replaces its per-trial log)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def storage_url(location: str | os.PathLike, create: bool = False) -> str:
    """A storage URL from a URL, a run folder (its study.db) or a .db file.

    Without `create` (commands that only read a study), a local SQLite file must already be an
    Optuna study store: anything else is refused before it is opened, since opening a storage
    writes Optuna's tables into the file."""
    text = str(location)
    if "://" in text:
        if text.startswith("sqlite:///"):
            _check_existing(Path(text[len("sqlite:///") :]), create)
        return text
    path = Path(text)
    if path.is_dir() or (create and not path.suffix):
        path = path / "study.db"
    _check_existing(path, create)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValidationError(
            f"cannot create the run folder {path.parent} ({err.strerror}); pick a writable folder"
        ) from err
    return f"sqlite:///{path.resolve()}"


def _check_existing(path: Path, create: bool) -> None:
    """A study file must exist unless `create`; an existing non-empty file must be a study store
    either way (a search must not write Optuna's tables into another program's database)."""
    if not path.is_file():
        if not create:
            raise DataNotFoundError(
                f"no study storage at {path}; pass a run folder, a .db file or a URL"
            )
        return
    if not create or path.stat().st_size > 0:
        _check_study_file(path)


def _check_study_file(path: Path) -> None:
    """Refuse (without writing to it) a file that is not an SQLite database with Optuna's tables."""
    import sqlite3

    not_a_study = (
        f"{path} is not a study file written by autofm (an Optuna SQLite store); pass the run "
        "folder or study.db of a search"
    )
    if not path.is_file():
        raise DataNotFoundError(
            f"no study storage at {path}; pass a run folder, a .db file or a URL"
        )
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise ValidationError(not_a_study)
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as err:
        raise ValidationError(not_a_study) from err
    if not {"studies", "trials"} <= tables:
        raise ValidationError(not_a_study)


def _check_sqlite_folder(url: str) -> None:
    """A SQLite URL whose folder is missing fails at once (instead of after the retries)."""
    if not url.startswith("sqlite:///"):
        return
    path = url[len("sqlite:///") :].split("?")[0]
    if path and path != ":memory:" and not Path(path).parent.is_dir():
        raise ValidationError(
            f"{url} cannot be opened: the folder {Path(path).parent} does not exist"
        )


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, so trials of a killed worker are marked failed.

    Raises ValidationError (one line) when `url` cannot be opened as an Optuna storage."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    _check_sqlite_folder(url)
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
            except (IntegrityError, OperationalError, ProgrammingError):
                # workers starting together race to create the schema (PostgreSQL: a duplicate
                # enum type is a ProgrammingError)
                time.sleep(delay)
        return connect()
    except Exception as err:  # SQLAlchemy and Optuna raise many types for a foreign file
        raise ValidationError(
            f"{url} is not an Optuna storage this version can open ({type(err).__name__}: "
            f"{(str(err).splitlines() or [''])[0][:200]})"
        ) from err


@functools.cache
def _machine() -> str | None:
    """This kernel boot and PID namespace: processes with the same value see each other's pids.
    None where /proc does not tell (not Linux): then only heartbeats find a killed worker."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def _process_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process; None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[19])


def record_worker(trial: optuna.Trial) -> None:
    """Record on `trial` which process runs it, so that `fail_orphaned_trials` can tell when
    that process has exited."""
    stat = _process_stat(os.getpid())
    trial.set_user_attr(
        WORKER,
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "machine": _machine(),
            "started": stat[1] if stat else None,
        },
    )


def recording_worker(objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
    """`objective`, recording first on each trial which process runs it (`record_worker`)."""

    def run(trial: optuna.Trial) -> Any:
        record_worker(trial)
        return objective(trial)

    return run


def _has_exited(worker: Any) -> bool:
    """Whether the process in a `record_worker` record has certainly exited. Only a process of
    this machine (same boot and PID namespace) can be checked: it has exited when its pid is
    gone, is a zombie, or now belongs to a process started at another time (a reused pid).
    Anything unreadable or from elsewhere counts as alive."""
    if not isinstance(worker, dict) or _machine() is None or worker.get("machine") != _machine():
        return False
    pid, started = worker.get("pid"), worker.get("started")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(started, int):
        return False  # os.kill(0 or -1, ...) would address process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    stat = _process_stat(pid)
    return stat is not None and (stat[0] == "Z" or stat[1] != started)


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark failed the RUNNING trials whose worker is gone, so that a resumed search redoes them
    now: those whose recorded process on this machine has exited, and (Optuna's rule) those whose
    heartbeat is older than the storage's grace period. A live worker's trial is never failed by
    the first rule: a process that runs cannot have exited. The numbers of the trials failed by
    the first rule."""
    with experimental_features():
        optuna.storages.fail_stale_trials(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _has_exited(trial.user_attrs.get(WORKER)):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another resuming process failed it first
        failed.append(trial.number)
    return failed


def make_sampler(
    name: str, n_objectives: int, seed: int | None, population_size: int = 50
) -> optuna.samplers.BaseSampler:
    """The sampler `name` (one of SAMPLERS); 'auto' is NSGA-II for 2 objectives, else NSGA-III.
    TPE handles several objectives (MOTPE); the genetic samplers use `population_size`."""
    if name not in SAMPLERS:
        raise ValidationError(f"unknown sampler {name!r}; choose one of {SAMPLERS}")
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


def default_population_size(n_trials: int) -> int:
    """Population of a genetic sampler for a budget of `n_trials`: a fifth, within [10, 50]."""
    return int(min(max(n_trials // 5, 10), 50))


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's finished trials, in the order they were created."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def check_header(header: Any, name: str, program: str, format_version: int) -> None:
    """Raise ValidationError unless `header` was written by `program` at a version we read."""
    if not isinstance(header, dict) or header.get("program") != program:
        raise ValidationError(f"study {name!r} was not written by {program}")
    if int(header.get("format_version", 0)) > format_version:
        raise ValidationError(
            f"study {name!r} has format version {header['format_version']}, newer than this "
            f"autofm supports ({format_version}); upgrade autofm"
        )


def stored_header(study: optuna.Study, key: str = HEADER) -> tuple[Any, bool]:
    """(the study's header or None, whether it holds trials). A worker that creates a study sets
    its header before any trial, but another worker's first read of the header may predate it
    while its read of the trials does not: so the header is read again when trials exist."""
    header = study.user_attrs.get(key)
    has_trials = bool(study.get_trials(deepcopy=False))
    if header is None and has_trials:
        header = study.user_attrs.get(key)
    return header, has_trials


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    directions: Sequence[str],
    header: Mapping[str, Any],
    *,
    match: Sequence[str] = (),
    metric_names: Sequence[str] | None = None,
) -> optuna.Study:
    """Create the study, or load it to resume: a new study gets `header` (which must hold
    'program' and 'format_version'); an existing one must have been written by the same program
    with equal values for the `match` keys, else ValidationError says which one differs."""
    program, version = header["program"], int(header["format_version"])
    study = optuna.create_study(
        storage=storage, study_name=study_name, directions=list(directions), load_if_exists=True
    )
    existing, has_trials = stored_header(study)
    if existing is None:
        if has_trials:
            raise ValidationError(
                f"study {study_name!r} exists in this storage but was not written by {program}; "
                "use another study name or storage"
            )
        if metric_names is not None:
            with experimental_features():
                study.set_metric_names(list(metric_names))
        study.set_user_attr(HEADER, as_json(dict(header)))
        return study
    check_header(existing, study_name, program, version)
    for key in match:
        before, now = existing.get(key), as_json(header.get(key))
        if before != now:
            raise ValidationError(
                f"study {study_name!r} already holds a run with another {key} "
                f"({describe_difference(before, now)}); resume with the same settings, or use another "
                "study name or storage (on the command line: another --run-dir or --storage)"
            )
    return study

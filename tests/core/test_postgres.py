"""Searches on a real PostgreSQL server, as Optuna users scale out: several worker processes on
one study, one killed with SIGKILL, the search resumed. A throwaway server is started on
127.0.0.1 for the session (Debian's `postgresql` package); without one the tests are skipped."""

import functools
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autofm.core.study import (
    WORKER,
    _machine,
    _process_stat,
    fail_orphaned_trials,
    open_storage,
    record_worker,
)
from autofm.fairness.metrics import LABELS
from autofm.fairness.search import ManyFairHPO
from autofm.finetune.builder import STUDY_NAME, build_metadataset, metadataset_from_study

from ..fairness.helpers import planted

pytestmark = pytest.mark.slow
psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is missing: pip install -e '.[dev]'")

USER = "autofm"
INSTALL_VARIABLE = "AUTOFM_TEST_INSTALL_POSTGRES"


def _server_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on the PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    folders = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda f: [int(p) for p in Path(f).parent.name.split(".") if p.isdigit()],
    )
    return Path(folders[-1]) if folders else None


def _installed_server_bin() -> Path:
    """`_server_bin`, installing Debian's package first where it is missing, we are root and
    $AUTOFM_TEST_INSTALL_POSTGRES=1 allows it; else the test is skipped with the reason."""
    if _server_bin() is None and os.environ.get(INSTALL_VARIABLE) == "1":
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "postgresql"],
                capture_output=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    folder = _server_bin()
    if folder is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql "
            f"package, or set {INSTALL_VARIABLE}=1 to let the tests install it as root"
        )
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway server on 127.0.0.1 with password authentication, stopped and deleted at the
    end; yields (port, password). initdb refuses root, so as root the server runs as the
    `postgres` user (or `nobody`) in a temporary folder that user owns."""
    folder_bin = _installed_server_bin()
    base = Path(tempfile.mkdtemp(prefix="autofm-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = "postgres" if "postgres" in {p.pw_name for p in pwd.getpwall()} else "nobody"
        entry = pwd.getpwnam(account)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", account, "--"]
    password = secrets.token_hex(16)
    password_file = base / "password"
    password_file.write_text(password)
    if as_user:
        os.chown(password_file, entry.pw_uid, entry.pw_gid)
    data, log = base / "data", base / "server.log"
    initdb = subprocess.run(
        [*as_user, folder_bin / "initdb", "-D", data, "-U", USER, f"--pwfile={password_file}"]
        + ["-A", "scram-sha-256", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
    )
    if initdb.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb could not create a PostgreSQL cluster: {initdb.stderr.strip()[-300:]}")
    pg_ctl = [*as_user, folder_bin / "pg_ctl", "-D", data, "-w", "-t", "30"]
    started, port = False, 0
    for _ in range(3):  # a free port may be taken between the probe and the server's bind
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {base} -F -c max_connections=60"
        result = subprocess.run([*pg_ctl, "-l", log, "-o", options, "start"], capture_output=True)
        if result.returncode == 0:
            started = True
            break
    if not started:
        tail = log.read_text()[-300:] if log.exists() else result.stderr.decode()[-300:]
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {tail.strip()}")
    try:
        yield port, password
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh database on the session's server, as a SQLAlchemy URL for Optuna."""
    port, password = postgres_server
    name = "test_" + request.node.name.split("[")[0][-40:].lower()
    connection = psycopg2.connect(
        host="127.0.0.1", port=port, user=USER, password=password, dbname="postgres"
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"postgresql+psycopg2://{USER}:{password}@127.0.0.1:{port}/{name}"


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from fairness.helpers import planted
    from autofm.fairness.search import ManyFairHPO
    table = planted(300)
    import os, pathlib, time
    pathlib.Path({barrier!r}, str(os.getpid())).touch()  # imported and ready
    while not pathlib.Path({barrier!r}, "go").exists():
        time.sleep(0.01)
    ManyFairHPO(model="logreg", bi_objective_trials=0, population_size=4).run(
        table.drop(columns=["label"]), table["label"], "race", n_trials={trials},
        storage={url!r}, privileged="W",
    )
    """
)


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    """One storage per database for the test's own reads, opened like a worker's (retrying while
    the workers race to create the schema)."""
    return open_storage(url)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="fair", storage=_storage(url)).get_trials()


def _running_trials_of(url: str, pid: int) -> list[int]:
    try:
        trials = _trials(url)
    except KeyError:  # the study does not exist yet
        return []
    return [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING and t.user_attrs.get(WORKER, {}).get("pid") == pid
    ]


def _complete(url: str) -> dict[int, list[float]]:
    return {t.number: t.values for t in _trials(url) if t.state == TrialState.COMPLETE}


def _kill_inside_a_trial(worker: subprocess.Popen, url: str, timeout: float) -> list[int]:
    """SIGKILL `worker` while it runs a trial, once the study holds 3 finished trials; the
    numbers of its RUNNING trials. Once a trial of it is seen running, SIGSTOP freezes it while
    its trials are read again, so that a trial seen running is still running when it is killed."""
    deadline = time.time() + timeout
    while time.time() < deadline and worker.poll() is None:
        time.sleep(0.05)
        if not _running_trials_of(url, worker.pid) or len(_complete(url)) < 3:
            continue
        worker.send_signal(signal.SIGSTOP)
        running = _running_trials_of(url, worker.pid)
        if running:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            return running
        worker.send_signal(signal.SIGCONT)
    raise AssertionError("the worker never ran a trial after the study held 3 finished trials")


def test_three_workers_one_killed_the_search_resumes(postgres_url, tmp_path):
    n_trials = 24
    tests = str(Path(__file__).parents[1])
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = WORKER_SCRIPT.format(
        tests=tests, trials=n_trials, url=postgres_url, barrier=str(barrier)
    )
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(3)]  # noqa: SIM115

    # the workers wait at a barrier after their imports, so that they start searching together:
    # otherwise a slow importer (the victim) could find the study finished before its first trial
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stderr=log, stdout=log) for log in logs
    ]
    victim, live = workers[0], workers[1:]
    try:
        deadline = time.time() + 120
        while len(list(barrier.iterdir())) < len(workers) and time.time() < deadline:
            assert all(w.poll() is None for w in workers), "a worker exited before the barrier"
            time.sleep(0.05)
        (barrier / "go").touch()
        killed_running = _kill_inside_a_trial(victim, postgres_url, timeout=60)
        before = _complete(postgres_url)
        table = planted(300)
        ManyFairHPO(model="logreg", bi_objective_trials=0, population_size=4).run(
            table.drop(columns=["label"]),
            table["label"],
            "race",
            n_trials=n_trials,
            storage=postgres_url,
            privileged="W",
        )
        # the resumed search failed the killed worker's trial at once, not after the grace period
        states = {t.number: t.state for t in _trials(postgres_url)}
        assert {states[n] for n in killed_running} == {TrialState.FAIL}
        exits = [w.wait(timeout=60) for w in live]
        assert exits == [0, 0], [(tmp_path / f"worker{i}.log").read_text() for i in (1, 2)]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()
    trials = _trials(postgres_url)
    after = _complete(postgres_url)
    assert all(after[n] == values for n, values in before.items())  # every finished trial kept
    # each worker stops once the study holds n_trials; the two others may finish one in flight
    assert n_trials <= len(after) <= n_trials + 2
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert {t.user_attrs[WORKER]["pid"] for t in failed} == {victim.pid}  # no live worker's
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.user_attrs[WORKER]["pid"] for t in trials} >= {w.pid for w in workers}
    study = optuna.load_study(study_name="fair", storage=postgres_url)
    assert study.metric_names == [LABELS[o] for o in ("f1", "dsp", "deod", "deop", "invd")]


def test_workers_racing_to_create_the_schema_all_open_the_storage(postgres_url, monkeypatch):
    # PostgreSQL reports the loser of the race as a duplicate enum type, a ProgrammingError
    from sqlalchemy.exc import ProgrammingError

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ProgrammingError("CREATE TYPE studydirection", {}, Exception("DuplicateObject"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    assert isinstance(open_storage(postgres_url), real) and len(calls) == 2


EXITING_WORKER = textwrap.dedent(
    """
    import optuna
    from autofm.core.study import record_worker
    study = optuna.load_study(study_name="orphans", storage={url!r})
    record_worker(study.ask())
    """
)


def test_only_trials_of_exited_processes_of_this_machine_are_failed(postgres_url):
    # a storage without heartbeats, which Optuna expects only inside study.optimize
    study = optuna.create_study(study_name="orphans", storage=postgres_url)
    subprocess.run([sys.executable, "-c", EXITING_WORKER.format(url=postgres_url)], check=True)
    exited = study.get_trials()[0].number
    live = study.ask()
    record_worker(live)  # this process: alive
    started = _process_stat(os.getpid())[1]
    records = {
        "reused pid": {"machine": _machine(), "pid": os.getpid(), "started": started + 1},
        "other machine": {"machine": "another/boot", "pid": 999_999, "started": 1},
        "process group": {"machine": _machine(), "pid": 0, "started": 1},
        "all processes": {"machine": _machine(), "pid": -1, "started": 1},
    }
    numbers = {}
    for label, record in records.items():
        trial = study.ask()
        trial.set_user_attr(WORKER, record)
        numbers[label] = trial.number
    unrecorded = study.ask().number

    failed = fail_orphaned_trials(study)
    assert sorted(failed) == sorted([exited, numbers["reused pid"]])
    states = {t.number: t.state for t in study.get_trials()}
    alive = [numbers[k] for k in ("other machine", "process group", "all processes")]
    assert {states[n] for n in [live.number, unrecorded, *alive]} == {TrialState.RUNNING}
    assert fail_orphaned_trials(study) == []  # a second resume finds nothing more


def test_two_workers_build_the_finetune_metadataset(postgres_url, tiny_build_spec):
    spec = tiny_build_spec
    build_metadataset(postgres_url, spec, workers=2)
    study = optuna.load_study(study_name=STUDY_NAME, storage=postgres_url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    keys = [(t.params["task"], t.params["config_id"]) for t in complete]
    assert sorted(keys) == sorted((n, c) for n in ("qa_dates", "toy_cls") for c in range(3))
    # nothing failed or left over; a worker that found the queue empty pruned an empty trial
    others = [t for t in study.get_trials() if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.PRUNED and not t.params for t in others), others
    metadataset = metadataset_from_study(postgres_url)
    assert metadataset.complete().all()
    assert np.isfinite(metadataset.curves).all() and (metadataset.costs > 0).all()

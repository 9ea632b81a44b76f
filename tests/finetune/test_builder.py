"""Building the meta-dataset: every run once, resumable, both layouts written and read back,
and refusal of inconsistent meta-datasets."""

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.ensemble.ftc import read_ftc
from autofm.finetune.builder import (
    STUDY_NAME,
    BuildSpec,
    build_metadataset,
    metadataset_from_study,
    work,
)
from autofm.finetune.metadataset import MetaDataset


@pytest.fixture
def spec(tiny_build_spec):
    return tiny_build_spec


def test_build_resume_and_export(tmp_path, spec):
    storage = tmp_path / "build"
    build_metadataset(storage, spec, max_seconds=0)  # set up only: tasks described, runs queued
    url = f"sqlite:///{(storage / 'study.db').resolve()}"
    study = optuna.load_study(study_name=STUDY_NAME, storage=url)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 6
    # a worker killed mid-run leaves a failed trial: the next build redoes that run
    trial = study.ask()
    trial.suggest_categorical("task", ["qa_dates", "toy_cls"])
    study.tell(trial, state=TrialState.FAIL)
    work(url, spec, show_progress=False)
    build_metadataset(storage, spec)  # resuming a finished build runs nothing more
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    keys = {(t.params["task"], t.params["config_id"]) for t in complete}
    assert len(complete) == len(keys) == 6

    metadataset = metadataset_from_study(storage)
    assert metadataset.complete().all()
    assert metadataset.curves.shape == (2, 3, 2)
    assert ((metadataset.curves >= 0) & (metadataset.curves <= 1)).all()
    assert (metadataset.costs > 0).all()
    assert metadataset.task_info["toy_cls"]["kind"] == "classification"
    assert metadataset.meta.loc["qa_dates", "is_qa"] == 1.0

    folder = metadataset.save(tmp_path / "metadataset")
    loaded = MetaDataset.load(folder)
    np.testing.assert_allclose(loaded.curves, metadataset.curves)
    np.testing.assert_allclose(loaded.costs, metadataset.costs)
    assert loaded.configs == metadataset.configs
    pd.testing.assert_frame_equal(loaded.meta, metadataset.meta, check_dtype=False)
    pool = read_ftc(folder / "ftc" / "toy_cls")  # the ensemble system reads the pools
    assert pool.n_models == 3
    best = metadataset.predictions["toy_cls"][0]["val"]
    np.testing.assert_allclose(pool.val_predictions[:, 0, :], best, atol=1e-4)
    # each run's best-epoch validation predictions score its curve's best value
    for config_id, arrays in metadataset.predictions["toy_cls"].items():
        accuracy = np.mean(arrays["val"].argmax(1) == arrays["val_labels"])
        assert accuracy == pytest.approx(np.nanmax(metadataset.curves[1, config_id]))


def test_a_changed_build_is_refused(tmp_path, spec):
    storage = tmp_path / "build"
    build_metadataset(storage, spec, max_seconds=0)
    changed = BuildSpec.from_dict({**spec.to_dict(), "max_epochs": 3})
    with pytest.raises(ValidationError, match="another build"):
        build_metadataset(storage, changed, max_seconds=0)


def _write_layout(tmp_path, spec):
    storage = tmp_path / "build"
    build_metadataset(storage, spec)
    return metadataset_from_study(storage).save(tmp_path / "md")


def test_inconsistent_layouts_are_refused(tmp_path, spec):
    folder = _write_layout(tmp_path, spec)
    curve = pd.read_csv(folder / "curve.csv")
    curve.iloc[0, 1] = np.nan
    curve.to_csv(folder / "curve.csv", index=False)
    with pytest.raises(ValidationError, match="missing epochs"):
        MetaDataset.load(folder)
    curve.iloc[0, 1] = 0.5
    curve.drop(index=0).to_csv(folder / "curve.csv", index=False)
    with pytest.raises(ValidationError, match="different numbers of runs"):
        MetaDataset.load(folder)
    curve.to_csv(folder / "curve.csv", index=False)
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[0, "config_id"] = 99
    runs.to_csv(folder / "runs.csv", index=False)
    with pytest.raises(ValidationError, match="config ids"):
        MetaDataset.load(folder)
    (folder / "meta.csv").unlink()
    with pytest.raises(DataNotFoundError, match="meta.csv"):
        MetaDataset.load(folder)


def test_a_run_that_raises_is_recorded_once_not_retried(tmp_path, spec, monkeypatch):
    from autofm.finetune import builder

    original = builder.LoraRun.step

    def step(self):
        if self.config == builder.sample_configs(3)[1]:
            raise RuntimeError("out of memory")
        return original(self)

    monkeypatch.setattr(builder.LoraRun, "step", step)
    build_metadataset(tmp_path / "b", spec)
    build_metadataset(tmp_path / "b", spec)  # resuming does not retry the failed runs
    url = f"sqlite:///{(tmp_path / 'b' / 'study.db').resolve()}"
    study = optuna.load_study(study_name=STUDY_NAME, storage=url)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(pruned) == 2 and all("out of memory" in t.user_attrs["error"] for t in pruned)
    metadataset = metadataset_from_study(tmp_path / "b")
    assert metadataset.complete().sum() == 4 and not metadataset.complete()[:, 1].any()
    loaded = MetaDataset.load(metadataset.save(tmp_path / "md"))
    pd.testing.assert_frame_equal(loaded.meta, metadataset.meta, check_dtype=False)

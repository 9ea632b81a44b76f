import numpy as np
import pytest

from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.model import Mamba4CastConfig
from autofm.forecast.training import export, train_config, train_forecaster

from .helpers import TINY


def test_train_resume_and_export(tmp_path):
    run = tmp_path / "run"
    kwargs = dict(
        model_config=Mamba4CastConfig(**TINY), batch_size=4, n_context=(16, 24), n_query=10,
        warmup_steps=1, checkpoint_every=2, threads=1,
    )  # fmt: skip
    first = train_forecaster("cpu", run, steps=3, **kwargs)
    assert first.steps_done == 3 and all(np.isfinite(first.losses))
    resumed = train_forecaster("cpu", run, steps=5, **kwargs)
    assert len(resumed.losses) == 2  # continued from step 3
    stem = export(run, tmp_path / "model")
    forecaster = Mamba4CastForecaster.from_pretrained(stem)
    assert forecaster.checkpoint_meta_["training"]["steps"] == 5
    assert forecaster.context_length == 24  # the longest context it was trained on
    assert np.isfinite(forecaster.predict(np.arange(30.0), 4)).all()


def test_a_preset_run_anneals_by_its_step_budget():
    config = train_config("cpu")
    assert config.lr_at(config.steps) == pytest.approx(config.min_lr_ratio * config.lr)

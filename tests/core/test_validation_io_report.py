import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.core.io import atomic_path, atomic_write_json
from autofm.core.output import emit
from autofm.core.report import Report
from autofm.core.runtime import seed_everything
from autofm.core.validation import (
    check_array,
    check_columns,
    check_consistent_length,
    check_positive_int,
)


def test_check_array_rejects_nan_inf_shape_empty_and_strings():
    with pytest.raises(ValidationError, match="NaN"):
        check_array([[1.0, np.nan]], "X")
    with pytest.raises(ValidationError, match="infinite"):
        check_array([[1.0, np.inf]], "X", allow_nan=True)
    with pytest.raises(ValidationError, match="dimensions"):
        check_array([1.0, 2.0], "X", ndim=2)
    with pytest.raises(ValidationError, match="0 rows"):
        check_array(np.zeros((0, 3)), "X", ndim=2)
    with pytest.raises(ValidationError, match="numeric"):
        check_array([["a", "b"]], "X")
    assert check_array([[1.0, np.nan]], "X", allow_nan=True).shape == (1, 2)


def test_consistency_columns_and_ints():
    with pytest.raises(ValidationError, match="X has 3, y has 2"):
        check_consistent_length(X=np.zeros(3), y=np.zeros(2))
    with pytest.raises(ValidationError, match=r"\['label'\]"):
        check_columns(pd.DataFrame({"a": [1]}), ["label"])
    with pytest.raises(ValidationError):
        check_positive_int(0, "n")
    assert check_positive_int(3, "n") == 3


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_report_embeds_figures_and_escapes_text(tmp_path):
    fig, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    path = (
        Report("t <1>")
        .text("a & b")
        .table([{"x": 1.23456, "y": "z"}])
        .figure(fig, "cap")
        .save(tmp_path / "r.html")
    )
    html = path.read_text()
    assert "data:image/png;base64," in html
    assert "t &lt;1&gt;" in html and "a &amp; b" in html and "1.235" in html


def test_emit_json_is_one_object_and_nan_becomes_null(capsys):
    emit({"a": float("nan"), "b": np.float32(1.5), "c": np.arange(2)}, as_json=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"a": None, "b": 1.5, "c": [0, 1]}


def test_seed_everything_reproduces():
    a = seed_everything(3).normal(size=3)
    b = seed_everything(3).normal(size=3)
    assert np.array_equal(a, b)


def test_an_unwritable_output_is_refused_before_any_work(tmp_path):
    import os

    from autofm.core.errors import ValidationError
    from autofm.core.io import check_writable

    assert check_writable(tmp_path / "new" / "model") == tmp_path / "new" / "model"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValidationError, match="cannot write the checkpoint"):
        check_writable(blocker / "model", "checkpoint")  # a file where a folder should be
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValidationError, match="writable"):
            check_writable(locked / "model")
    assert not list(tmp_path.glob("**/.autofm-write-check*"))


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    import os

    from autofm.core.io import atomic_write_text

    previous = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.html", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777) == "0o644"


def test_a_checkpoint_whose_json_cannot_be_written_leaves_no_weights(tmp_path):
    import torch

    from autofm.core.checkpoint import save_checkpoint

    (tmp_path / "m.json").mkdir()  # a folder where the JSON half should go
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "m", torch.nn.Linear(2, 2), kind="test", model={})
    assert not (tmp_path / "m.safetensors").exists()

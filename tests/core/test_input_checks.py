"""The shared checks every command uses on its inputs and outputs: what they refuse, and that
they create and change nothing."""

import json
import sqlite3

import numpy as np
import pytest

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import check_writable, read_json
from autofm.core.study import storage_url
from autofm.core.validation import check_number


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_check_writable_refuses_the_wrong_kind_and_creates_nothing(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    before = _files(tmp_path)
    check_writable(tmp_path / "new" / "deeper" / "out.csv")  # missing folders are fine
    check_writable(tmp_path / "new_folder", kind="folder")
    check_writable(tmp_path / "model", kind="checkpoint")
    with pytest.raises(ValidationError, match="a_folder"):
        check_writable(tmp_path / "a_folder", kind="file")
    with pytest.raises(ValidationError, match="a_file"):
        check_writable(tmp_path / "a_file", kind="folder")
    with pytest.raises(ValidationError):
        check_writable(tmp_path / "a_file" / "under.csv")  # a path through a file
    assert _files(tmp_path) == before


def test_read_json_names_what_is_wrong(tmp_path):
    with pytest.raises(DataNotFoundError, match="manifest"):
        read_json(tmp_path / "none.json", "manifest")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValidationError, match="cannot read the manifest"):
        read_json(tmp_path / "broken.json", "manifest")
    (tmp_path / "ok.json").write_text(json.dumps({"a": 1}))
    assert read_json(tmp_path / "ok.json", keys=("a",)) == {"a": 1}
    with pytest.raises(ValidationError, match="b"):
        read_json(tmp_path / "ok.json", "manifest", keys=("a", "b"))


def test_check_number():
    assert check_number(np.int64(3), "n", minimum=1, integer=True) == 3
    assert isinstance(check_number(np.float32(0.5), "x", minimum=0), float)
    for value, kwargs in (
        (float("nan"), {}),
        (float("inf"), {}),
        (0, {"minimum": 0, "exclusive": True}),
        (-1, {"minimum": 0}),
        (2.5, {"integer": True}),
        (True, {"integer": True}),
    ):
        with pytest.raises(ValidationError, match="x must be"):
            check_number(value, "x", **kwargs)
    with pytest.raises(ValidationError) as err:
        check_number(np.int64(-2), "x", minimum=0)
    assert "np.int64" not in str(err.value)  # plain values in messages


def test_a_new_study_refuses_another_programs_database(tmp_path):
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("create table users (name text)")
    content = foreign.read_bytes()
    for location in (foreign, f"sqlite:///{foreign}"):
        with pytest.raises(ValidationError):
            storage_url(location, create=True)
    assert foreign.read_bytes() == content
    (tmp_path / "empty.db").write_bytes(b"")  # an empty file may become a study
    assert storage_url(tmp_path / "empty.db", create=True).endswith("empty.db")

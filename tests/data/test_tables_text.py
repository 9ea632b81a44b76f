import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.data.tables import load_openml, load_table, read_table
from autofm.data.text import decode, encode, load_text, sample_blocks, stdlib_corpus

ARFF = """@RELATION toy
@ATTRIBUTE width NUMERIC
@ATTRIBUTE colour {red,blue}
@ATTRIBUTE class {yes,no}
@DATA
1.5,red,yes
2.0,blue,no
?,red,yes
"""


def test_csv_and_parquet_with_target_choice(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1], "b": [3.0, 4.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        X, y = load_table(tmp_path / name, target="label")
        assert list(X.columns) == ["a", "b"] and y.tolist() == [0, 1]
    X, y = load_table(tmp_path / "t.csv")
    assert y.name == "b"
    with pytest.raises(ValidationError, match="no column"):
        load_table(tmp_path / "t.csv", target="missing")


def test_empty_and_missing_tables(tmp_path):
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(ValidationError, match="no rows"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(DataNotFoundError):
        read_table(tmp_path / "absent.csv")


def test_bundled_dataset_by_name():
    X, y = load_table("breast_cancer")
    assert X.shape == (569, 30) and set(y.unique()) == {0, 1}
    with pytest.raises(DataNotFoundError, match="not found.*breast_cancer"):
        load_table("no_such_dataset_name.csv")


def test_openml_loader_reads_cached_arff_without_network(tmp_path):
    (tmp_path / "42.arff").write_text(ARFF)
    (tmp_path / "42.json").write_text(json.dumps({"default_target_attribute": "class"}))
    frame, target = load_openml(42, cache_dir=tmp_path)
    assert target == "class"
    assert frame["colour"].tolist() == ["red", "blue", "red"]
    assert np.isnan(frame["width"].iloc[2])


def test_byte_encoding_round_trip_and_blocks(tmp_path):
    text = "héllo wörld"
    tokens = encode(text)
    assert tokens.max() < 256 and decode(tokens) == text
    corpus = stdlib_corpus(50_000)
    assert len(corpus) == 50_000 and b"def " in corpus
    x, y = sample_blocks(encode(corpus), 16, 4, np.random.default_rng(0))
    assert x.shape == (4, 16) and np.array_equal(x[:, 1:], y[:, :-1])
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValidationError, match="empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    assert load_text(tmp_path / "latin.txt") == b"caf\xe9"


def test_the_parent_corpus_is_the_whole_stdlib_plus_the_shared_texts(tmp_path, monkeypatch):
    from autofm.data.text import corpus_sources, full_stdlib_corpus, load_corpus_split

    (tmp_path / "text" / "classification").mkdir(parents=True)
    (tmp_path / "text" / "b.txt").write_bytes(b"b" * 100)
    (tmp_path / "text" / "a.txt").write_bytes(b"a" * 300)
    (tmp_path / "text" / "classification" / "train.csv").write_text("text,label\nx,0\n")
    monkeypatch.setenv("AUTOFM_DATA", str(tmp_path))
    stdlib = full_stdlib_corpus()
    assert b"def " in stdlib and len(stdlib) > len(stdlib_corpus())
    sources = corpus_sources("stdlib+text")
    assert [name for name, _ in sources] == ["stdlib", "a.txt", "b.txt"]  # no classification sets
    train, valid = load_corpus_split("stdlib+text", 0.1)
    assert len(train) + len(valid) == len(stdlib) + 400
    # each source is split on its own: both small files end the validation stream in order
    assert decode(valid[-40:]) == "a" * 30 + "b" * 10
    assert decode(train[-360:]) == "a" * 270 + "b" * 90


def test_a_corpus_file_is_split_at_its_end(tmp_path):
    from autofm.data.text import load_corpus_split

    path = tmp_path / "c.txt"
    path.write_bytes(bytes(range(100)))
    train, valid = load_corpus_split(path, 0.2)
    assert train.tolist() == list(range(80)) and valid.tolist() == list(range(80, 100))

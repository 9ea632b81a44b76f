"""Tasks from files: one label mapping for train and test, splits that are never empty or
overlapping, and the generated QA tasks."""

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.data.text import encode_labels
from autofm.finetune.synthetic_qa import GENERATORS, synthetic_qa_task
from autofm.finetune.tasks import load_task_csv, verbalizers_for


def test_labels_map_once_from_the_training_file():
    classes, train, test = encode_labels(["-1", "1", "1", "-1"], ["1", "1"])
    assert classes == ["-1", "1"] and train.tolist() == [0, 1, 1, 0] and test.tolist() == [1, 1]
    classes, train, test = encode_labels(["neg", "neu", "pos"], ["pos", "neg"])
    assert test.tolist() == [2, 0]  # pos keeps its index although the test file lacks neu
    assert encode_labels(["2", "10", "3"])[0] == ["2", "3", "10"]  # numeric order
    with pytest.raises(ValidationError, match="lacks"):
        encode_labels(["a", "b"], ["c"])
    with pytest.raises(ValidationError, match="single class"):
        encode_labels(["a", "a"])


def test_verbalizers_are_distinct_letters():
    assert verbalizers_for(["negative", "positive"]) == "np"
    assert verbalizers_for(["negative", "neutral", "positive"]) == "abc"
    assert verbalizers_for(["0", "1"]) == "ab"


def test_classification_csv_with_signed_labels(tmp_path):
    rows = [(f"text number {i}", [-1, 1][i % 2]) for i in range(30)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "t.csv", index=False)
    task = load_task_csv(tmp_path / "t.csv", n_val=5)
    assert task.classes == ["-1", "1"]
    for split in (task.train, task.val, task.test):
        assert set(np.unique(split.labels)) <= {0, 1} and len(split) >= 1
        assert all(a == task.verbalizers[y] for a, y in zip(split.answers, split.labels))
    prompts = [set(s.prompts) for s in (task.train, task.val, task.test)]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])


@pytest.mark.parametrize("rows", [1, 2])
def test_too_small_qa_files_are_refused(tmp_path, rows):
    frame = pd.DataFrame({"question": [f"q{i}" for i in range(rows)], "answer": ["a"] * rows})
    frame.to_csv(tmp_path / "qa.csv", index=False)
    with pytest.raises(ValidationError, match="at least one each"):
        load_task_csv(tmp_path / "qa.csv")


def test_a_test_file_without_the_columns_is_refused(tmp_path):
    pd.DataFrame({"question": ["a", "b", "c", "d"], "answer": ["1", "2", "3", "4"]}).to_csv(
        tmp_path / "train.csv", index=False
    )
    pd.DataFrame({"q": ["x"], "a": ["y"]}).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(ValidationError, match="question,answer"):
        load_task_csv(tmp_path / "train.csv", tmp_path / "test.csv")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_tasks_keep_test_questions_out_of_training(name):
    task = synthetic_qa_task(name, n_train=64, n_val=32, n_test=64, seed=3)
    seen = set(task.train.prompts) | set(task.val.prompts)
    assert not seen & set(task.test.prompts)
    assert all(a.endswith("\n") and a.strip() for a in task.train.answers)
    assert task.fingerprint() == synthetic_qa_task(name, 64, 32, 64, seed=3).fingerprint()

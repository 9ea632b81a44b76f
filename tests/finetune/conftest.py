import pytest
import torch

from autofm.finetune.tasks import Task, classification_task, qa_task


@pytest.fixture
def toy_classification() -> Task:
    texts = [f"{'good' if i % 2 else 'bad'} thing number {i}" for i in range(40)]
    labels = torch.arange(40).remainder(2).numpy()
    return classification_task(
        "toy", texts, labels, classes=["bad", "good"], n_train=16, n_val=8, n_test=8
    )


@pytest.fixture
def toy_qa() -> Task:
    pairs = [(f"say {w}", w) for w in ("cat", "dog", "owl", "eel", "ant", "bee", "cow", "fox")] * 3
    pairs = [(f"{q} #{i}", a) for i, (q, a) in enumerate(pairs)]
    return qa_task("toy_qa", pairs, 12, 6)

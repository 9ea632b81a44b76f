import pytest
import torch

from autofm.finetune.tasks import Task, classification_task, qa_task
from autofm.lm.checkpoint import save_gpt
from autofm.lm.model import GPT, GPTConfig


@pytest.fixture
def tiny_gpt() -> GPT:
    # init_std 0.2: a readout large enough that adapting the inner layers can sharpen the
    # next-byte distribution (at 0.02 a random tiny model's logits stay near uniform)
    config = GPTConfig(
        width=32, depth=1, head_size=16, block_size=96, parametrization="sp", init_std=0.2
    )
    return GPT(config, seed=0)


@pytest.fixture
def tiny_gpt_path(tmp_path, tiny_gpt) -> str:
    stem = tmp_path / "tiny-gpt"
    save_gpt(stem, tiny_gpt, training={}, test=True)
    return str(stem)


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

import numpy as np
import pytest
import torch

from autofm.data.text import encode, stdlib_corpus


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # tiny models: one thread is faster than two on a shared machine; restore afterwards
    previous = torch.get_num_threads()
    monkeypatch.setenv("AUTOFM_THREADS", "1")
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def corpus_tokens() -> np.ndarray:
    return encode(stdlib_corpus(300_000))

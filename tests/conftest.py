import os

import pytest

# keep tests fast and predictable on 2 cores; subprocesses (CLI, torchrun) read this too
os.environ["AUTOFM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _quiet_progress():
    from autofm.core.progress import set_quiet

    set_quiet(True)
    yield
    set_quiet(False)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The one thread limit of the suite: the models in tests are tiny, and one thread beats two
    on a shared 2-core machine. Restored after each test, so no test leaks its setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_gpt():
    """A random 1-layer byte-level GPT (finetune and its storage tests)."""
    from autofm.lm.model import GPT, GPTConfig

    # init_std 0.2: a readout large enough that adapting the inner layers can sharpen the
    # next-byte distribution (at 0.02 a random tiny model's logits stay near uniform)
    config = GPTConfig(
        width=32, depth=1, head_size=16, block_size=96, parametrization="sp", init_std=0.2
    )
    return GPT(config, seed=0)


@pytest.fixture
def tiny_gpt_path(tmp_path, tiny_gpt) -> str:
    """`tiny_gpt` saved as a checkpoint; its stem."""
    from autofm.lm.checkpoint import save_gpt

    stem = tmp_path / "tiny-gpt"
    save_gpt(stem, tiny_gpt, training={}, test=True)
    return str(stem)


@pytest.fixture
def classification_folder(tmp_path):
    """A tiny text-classification task folder (train.csv, test.csv: text,label)."""
    import pandas as pd

    folder = tmp_path / "toy_cls"
    folder.mkdir()
    rows = [(f"{'great' if i % 2 else 'awful'} film {i}", i % 2) for i in range(60)]
    pd.DataFrame(rows[:40], columns=["text", "label"]).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(rows[40:], columns=["text", "label"]).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture
def tiny_build_spec(tiny_gpt_path, classification_folder):
    """A finetune meta-dataset build of seconds: 2 tasks × 3 configurations × 2 epochs."""
    from autofm.finetune.builder import BuildSpec

    return BuildSpec(
        tasks=("qa_dates", str(classification_folder)),
        model=tiny_gpt_path,
        n_configs=3,
        max_epochs=2,
        n_train=8,
        n_val=6,
        n_test=6,
    )

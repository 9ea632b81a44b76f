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

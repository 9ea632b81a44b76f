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

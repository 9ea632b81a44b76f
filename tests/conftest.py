import os

import pytest

# keep tests fast and predictable on 2 cores
os.environ.setdefault("AUTOFM_THREADS", "2")


@pytest.fixture(autouse=True)
def _quiet_progress():
    from autofm.core.progress import set_quiet

    set_quiet(True)
    yield
    set_quiet(False)

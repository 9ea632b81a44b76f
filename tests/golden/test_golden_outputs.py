"""Before/after check: refactors leave every shipped model's outputs and the ensemblers' weights
unchanged on fixed inputs (recorded in outputs.json by `python -m tests.golden.outputs`)."""

import json

import numpy as np
import pytest

from .outputs import GOLDEN_FILE, compute


@pytest.fixture(scope="module")
def outputs():
    return compute()


def test_the_same_outputs_are_recorded_and_computed(outputs):
    assert set(outputs) == set(json.loads(GOLDEN_FILE.read_text()))


@pytest.mark.parametrize("key", sorted(json.loads(GOLDEN_FILE.read_text())))
def test_outputs_match_the_recorded_ones(outputs, key):
    # recorded to the last bit on the machine that wrote them; another CPU's kernels may differ in
    # the last digits, so the test allows float rounding and nothing more
    expected = np.asarray(json.loads(GOLDEN_FILE.read_text())[key])
    np.testing.assert_allclose(np.asarray(outputs[key]), expected, rtol=1e-6, atol=1e-9)

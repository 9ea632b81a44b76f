# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench-% clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch==2.13.0 first: on this machine kind it is a local CPU build; an unpinned torch pulls CUDA.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# microsoft's mup is a test oracle for autofm.lm; --no-deps: its torchvision pin pulls CUDA torch
	$(PY) -m pip install -q --no-deps mup==1.0.0
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/autofm tour --out runs/tour

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: lint
	$(VENV)/bin/pytest -x -p no:cacheprovider

bench-deps: install
	$(PY) -m pip install -q -e ".[dev,bench]"

bench-%: bench-deps
	$(PY) -m benchmarks.$*

clean:
	rm -rf $(VENV) runs

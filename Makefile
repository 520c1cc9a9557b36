# The two commands of the README. Each sets everything up on a fresh machine:
# a virtual environment of the project's own (.venv), pinned dependencies, the
# embedded tiny model. Nothing is downloaded at run time.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test lint setup model clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned resolve would pull the CUDA wheels.
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

model: $(STAMP)
	$(VENV)/bin/orz-rl build-model --out artifacts/tiny-qwen2

## Train the default CPU recipe end to end (builds the tiny model on first use).
train: $(STAMP)
	$(VENV)/bin/orz-rl train cpu-default $(ARGS)

## Run ruff, then the test suite.
test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check orz_rl envs recipes tests

clean:
	rm -rf $(VENV) artifacts runs

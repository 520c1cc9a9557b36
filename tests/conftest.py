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

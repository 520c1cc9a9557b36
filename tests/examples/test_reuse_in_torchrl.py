"""examples/reuse_in_torchrl.py runs: TorchRL's CountdownEnv through orz-rl's vLLM policy and
collector into a stock replay buffer of ragged rows, stock GAE with orz-rl's critic, stock
ClipPPOLoss, Adam, weight sync into the engine and a stock CSVLogger."""

from __future__ import annotations

import csv
import importlib.util
import sys

import pytest
import torch

from orz_rl.config import ConfigError
from orz_rl.models.loading import load_causal_lm
from orz_rl.rollout.weight_sync import vLLMInProcessUpdater

from ..conftest import REPO


def _example(monkeypatch):
    """The example as a module (in ``sys.modules`` while the test runs: its dataclass needs it)."""
    spec = importlib.util.spec_from_file_location(
        "reuse_in_torchrl", REPO / "examples" / "reuse_in_torchrl.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_example_trains_ppo_with_a_critic_from_orz_rls_collector_with_stock_torchrl_parts(
    vllm_engine, tiny_model_dir, tmp_path, monkeypatch
):
    example = _example(monkeypatch)
    cfg = example.ReuseExample(model=tiny_model_dir, log_dir=tmp_path, envs=4, rollouts=3, mini_batch=4)
    try:
        scalars, buffer = example.run(cfg, llm=vllm_engine)
    finally:
        vLLMInProcessUpdater(vllm_engine).push_weights(load_causal_lm(str(tiny_model_dir)))  # shared engine

    # Every response of every rollout is in the buffer, each row as long as its own response.
    assert len(buffer) == 3 * 4
    lengths = {int(row.get(("tokens", "response")).numel()) for row in buffer[:]}
    assert len(lengths) > 1, "all responses had one length: the buffer's raggedness went untested"

    # One PPO pass over the buffer after each rollout: 1 + 2 + 3 mini-batches of 4.
    written = {}
    for name in ("loss_objective", "loss_critic", "loss_entropy", "reward_mean"):
        with open(tmp_path / "reuse" / "scalars" / f"{name}.csv") as f:
            written[name] = [float(v) for _, v in csv.reader(f)]
        assert len(written[name]) == 6, name
        assert written[name][-1] == scalars[name]
    assert all(torch.isfinite(torch.tensor(v)).all() for v in written.values())
    assert min(written["loss_critic"]) > 0  # the critic's values are regressed on GAE's targets


def test_the_example_names_a_field_out_of_its_range_before_anything_loads(monkeypatch, tmp_path):
    example = _example(monkeypatch)
    cfg = example.ReuseExample(model=tmp_path / "no-model", log_dir=tmp_path, mini_batch=0)
    with pytest.raises(ConfigError, match=r"mini_batch = 0: must be at least 1"):
        example.run(cfg)
    assert not (tmp_path / "reuse").exists()

"""Fields carry their bounds: every bounded field of every command is checked before anything loads."""

from __future__ import annotations

import importlib
import json
import math
import typing
from dataclasses import MISSING, fields, is_dataclass, replace
from pathlib import Path

import pytest

from orz_rl.config import Bound, TrainConfig, bound_problems
from orz_rl.curation.commands import STEPS
from orz_rl.models.real_shape import RealShapeConfig
from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.tools.eval_config import EvalConfig
from tests.bench import bench_module
from tests.conftest import orz_cli_here


def data_config(step):
    """The step's configuration, its required fields filled in (files need not exist to be checked)."""
    _, module, name, _ = STEPS[step]
    cls = getattr(importlib.import_module(f"orz_rl.curation.{module}"), name)
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    filler = {
        "inputs": (Path("in.jsonl"),),
        "input": Path("in.jsonl"),
        "out": Path("out.jsonl"),
        "model": "m",
    }
    return cls(**{k: filler[k] for k in required})


#: Every command's configuration, with the values its required fields need.
COMMANDS = {
    "train": CPU_DEFAULT,
    "eval": EvalConfig(),
    **{f"data {step}": data_config(step) for step in STEPS},
    "real-shape model (bench/real_shape.py)": RealShapeConfig(),
    "bench/tool_overlap.py": bench_module("tool_overlap").Args(),
    "bench/staleness_model.py": bench_module("staleness_model").Args(),
}


def bounded_fields(cfg, prefix=""):
    """``(dotted name, path of attribute names, bound)`` of every bounded field under ``cfg``."""
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            for name, path, bound in bounded_fields(value, prefix + f.name + "."):
                yield name, (f.name, *path), bound
            continue
        for bound in (m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Bound)):
            yield prefix + f.name, (f.name,), bound


def outside(bound: Bound, kind) -> list:
    """Values just outside ``bound`` (and nan for a float field)."""
    values = []
    if bound.low != -math.inf:
        values.append(bound.low if bound.low_open else bound.low - 1)
    if bound.high != math.inf:
        values.append(bound.high if bound.high_open else bound.high + 1)
    if kind is float:
        values.append(math.nan)
    return [kind(v) if not (kind is int and isinstance(v, float) and v != int(v)) else v for v in values]


def with_value(cfg, path, value):
    if len(path) == 1:
        return replace(cfg, **{path[0]: value})
    return replace(cfg, **{path[0]: with_value(getattr(cfg, path[0]), path[1:], value)})


def cases():
    for command, cfg in COMMANDS.items():
        for name, path, bound in bounded_fields(cfg):
            current = getattr_path(cfg, path)
            kind = type(current[0] if isinstance(current, tuple) and current else current)
            kind = int if kind is tuple else kind  # an empty tuple of ints (pass_k)
            if current is None:  # an optional field, off: its other type (stop_at_reward's float)
                (kind,) = [t for t in typing.get_args(field_type(cfg, path)) if t is not type(None)]
            for value in outside(bound, kind):
                bad = (value,) * (len(current) or 1) if isinstance(current, tuple) else value
                yield pytest.param(cfg, path, name, bad, id=f"{command}:{name}={bad}")


def field_type(cfg, path):
    """The type of the field at ``path``, without its ``Annotated`` metadata."""
    for part in path[:-1]:
        cfg = getattr(cfg, part)
    return typing.get_type_hints(type(cfg))[path[-1]]


def getattr_path(cfg, path):
    for part in path:
        cfg = getattr(cfg, part)
    return cfg


def test_every_command_bounds_its_numeric_fields():
    counts = {command: len(list(bounded_fields(cfg))) for command, cfg in COMMANDS.items()}
    assert counts["train"] >= 50 and counts["eval"] == 14 and counts["data dedup"] == 3, counts
    assert counts["data verifiable"] == 2 and counts["data difficulty"] == 3, counts
    # Nothing shipped is out of its own bounds.
    assert all(bound_problems(cfg) == [] for cfg in COMMANDS.values())


@pytest.mark.parametrize(("cfg", "path", "name", "value"), list(cases()))
def test_a_value_outside_a_fields_bound_is_one_line_naming_field_value_and_range(cfg, path, name, value):
    (problem,) = bound_problems(with_value(cfg, path, value))
    assert problem.startswith(f"{name} = {value!r}: must be ")


def test_the_train_cli_names_every_bad_field_at_once_before_loading_a_model(tmp_path):
    out = orz_cli_here(
        *("train", "cpu-default", "--run-dir", str(tmp_path / "run"), "--model.path", str(tmp_path / "none")),
        *("--ppo.clip-epsilon", "-0.2", "--ppo.gamma", "5", "--ppo.lmbda", "-3", "--reward.workers", "-2"),
        *("--reward.timeout", "0", "--rollout.top-p", "0", "--optim.actor-lr", "nan"),
        *("--optim.betas", "2", "2", "--stop-at-reward", "inf", "--model.no-build-tiny-if-missing"),
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    for line in (
        "ppo.clip_epsilon = -0.2: must be above 0",
        "ppo.gamma = 5.0: must be in [0, 1]",
        "ppo.lmbda = -3.0: must be in [0, 1]",
        "reward.workers = -2: must be at least 0",
        "reward.timeout = 0.0: must be above 0",
        "rollout.top_p = 0.0: must be in (0, 1]",
        "optim.actor_lr = nan: must be above 0",
        "optim.betas = (2.0, 2.0): must be in [0, 1)",
        "stop_at_reward = inf: must be a finite number",
    ):
        assert line in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


def test_dry_run_refuses_what_a_run_would_refuse_instead_of_planning_it(tmp_path):
    run = ("train", "cpu-default", "--run-dir", str(tmp_path / "run"), "--dry-run")
    out = orz_cli_here(
        *run, "--ppo.gamma", "5", "--rollout.prompts-per-step", "4", "--rollout.samples-per-prompt", "2"
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr and "memory per" not in out.stdout
    assert "ppo.gamma = 5.0: must be in [0, 1]" in out.stderr
    assert "= 8 responses cannot be split into ppo.critic_steps_per_rollout = 12" in out.stderr
    assert orz_cli_here(*run).returncode == 0 and not (tmp_path / "run").exists()


def test_eval_with_no_samples_refuses_before_touching_an_earlier_run(tmp_path):
    earlier = tmp_path / "eval"
    earlier.mkdir()
    (earlier / "samples.jsonl").write_text(json.dumps({"item": 0}) + "\n")
    (earlier / "eval.json").write_text("{}")
    for args in (("--samples", "0"), ("--samples", "-3"), ("--grader-timeout", "-1"), ("--top-p", "0")):
        out = orz_cli_here("eval", "--model", str(tmp_path / "none"), "--out-dir", str(earlier), *args)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "must be" in out.stderr and args[0].lstrip("-").replace("-", "_") in out.stderr
    assert (earlier / "samples.jsonl").read_text() == json.dumps({"item": 0}) + "\n"


def test_a_data_step_refuses_an_out_of_range_option_before_reading(tmp_path):
    out = orz_cli_here(
        "data", "dedup", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--num-perm", "1"
    )
    assert out.returncode == 1 and "num_perm = 1: must be at least 2" in out.stderr
    assert "none.jsonl" not in out.stderr  # the bounds come first, before the missing input


def test_the_bounds_of_train_config_cover_what_preflight_checked_by_hand():
    names = {name for name, _, _ in bounded_fields(TrainConfig())}
    for field in (
        "rollout.prompts_per_step",
        "ppo.micro_batch_size",
        "layout.nodes",
        "keep_last",
        "save_interval",
    ):
        assert field in names

"""The trackers of ``log.backends`` (orz_rl.runtime.trackers): each, read back as its own tools
read it, holds every step's reward once, and a resumed run continues the same W&B and MLflow runs."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from orz_rl.config import LogConfig
from orz_rl.runtime.trackers import flatten, mlflow_name, tracker_problems

from ..conftest import cpu_default_on, orz_cli

ALL = ("jsonl", "tensorboard", "wandb", "mlflow", "csv")
REWARD = "reward/mean"


def wandb_records(path: Path):
    """The records of a W&B run file (``run-ID.wandb``): a 7-byte header (``:W&B``, magic,
    version), then LevelDB's log format (32 KiB blocks of checksum, length, type, data), each
    record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:  # zero padding up to the block's end
            pos += block - pos % block if pos % block else 0
            continue
        parts = chunk if kind in (1, 2) else parts + chunk  # full, first | middle, last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record


def _key(item) -> str:
    # A name with "/" comes as a one-element nested key.
    return item.key or "/".join(item.nested_key)


def wandb_runs(run_dir: Path) -> list[dict]:
    """Each offline W&B run file under ``run_dir``, oldest first: its run id, configuration keys
    and history rows (``{key: value}``)."""
    out = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        run = {"id": None, "config": set(), "history": []}
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["id"] = record.run.run_id
                run["config"] |= {_key(item) for item in record.run.config.update}
            elif kind == "config":
                run["config"] |= {_key(item) for item in record.config.update}
            elif kind == "history":
                run["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
        out.append(run)
    return out


def read_all(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``(step, reward/mean)`` as each of the five backends holds them, in the order logged."""
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    jsonl = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    csv = [line.split(",") for line in (run_dir / "csv/scalars/reward/mean.csv").read_text().splitlines()]
    ids = json.loads((run_dir / "trackers.json").read_text())
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    rows = [row for run in wandb_runs(run_dir) for row in run["history"] if REWARD in row]
    return {
        "jsonl": [(r["step"], r[REWARD]) for r in jsonl],
        "tensorboard": [(e.step, e.value) for e in events.Scalars(REWARD)],
        "csv": [(int(step), float(value)) for step, value in csv],
        "mlflow": [(m.step, m.value) for m in mlflow.get_metric_history(ids["mlflow"], REWARD)],
        "wandb": [(r["_step"], r[REWARD]) for r in rows],
    }


def assert_same_rewards(logged: dict[str, list[tuple[int, float]]], steps: int) -> None:
    expected = logged["jsonl"]
    assert [s for s, _ in expected] == list(range(1, steps + 1))
    as_float32 = [(step, float(np.float32(value))) for step, value in expected]  # TensorBoard's
    for backend in ALL:
        assert logged[backend] == (as_float32 if backend == "tensorboard" else expected), backend


@pytest.fixture(scope="module")
def tracked_run(tiny_model_dir, tmp_path_factory):
    """A 3-step CPU default logging to all five backends (checkpoints at steps 2 and 3), what each
    held then; then the same run resumed from step 2, as after a crash past that checkpoint
    (the final one removed), to step 5."""
    tmp = tmp_path_factory.mktemp("trackers")
    args = [*cpu_default_on(tiny_model_dir, tmp), "--no-progress", "--save-interval", "2"]
    args += ["--log.backends", *ALL]
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    first = orz_cli(*args, "--max-steps", "3", env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp / "run"
    after_three = read_all(run_dir), json.loads((run_dir / "trackers.json").read_text())
    shutil.rmtree(run_dir / "checkpoints" / "final")
    resumed = orz_cli(*args, "--max-steps", "5", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "(step 2 of 5)" in resumed.stdout, resumed.stdout[-2000:]
    return run_dir, after_three


def test_a_three_step_run_writes_the_same_reward_at_each_step_to_all_five_backends(tracked_run):
    _, (logged, ids) = tracked_run
    assert_same_rewards(logged, steps=3)
    assert set(ids) == {"wandb", "mlflow"}


def test_the_trackers_get_the_configuration_and_the_rollout_samples(tracked_run):
    from mlflow import MlflowClient

    run_dir, (_, ids) = tracked_run
    first = wandb_runs(run_dir)[0]
    assert {"ppo", "rollout", "log"} <= first["config"]
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    for row in first["history"]:  # the step's table, as a W&B table file
        assert row["rollout/samples/_type"] == "table-file", row["_step"]
        assert row["rollout/samples/nrows"] == sum(r["step"] == row["_step"] for r in rollouts)
    run = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}").get_run(ids["mlflow"])
    config = json.loads((run_dir / "config.json").read_text())
    assert run.data.params["rollout.samples_per_prompt"] == str(config["rollout"]["samples_per_prompt"])
    tables = run_dir.glob("mlflow-artifacts/*/artifacts/rollout_samples/steps_000001.json")
    table = json.loads(next(tables).read_text())
    assert table["columns"] == ["step", "prompt", "response", "reward"]
    # Steps 1-3 from the first process, 4-5 from the resumed one (which held step 3 already);
    # exact resume makes its step 3 the same as the first's.
    assert [row[0] for row in table["data"]] == [r["step"] for r in rollouts]
    assert [row[3] for row in table["data"]] == [r["reward"] for r in rollouts]
    events = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    assert any(b"rollout/samples" in path.read_bytes() for path in events)


def test_a_resumed_run_continues_the_same_wandb_and_mlflow_runs_without_a_step_twice(tracked_run):
    run_dir, (_, ids_before) = tracked_run
    assert json.loads((run_dir / "trackers.json").read_text()) == ids_before
    runs = wandb_runs(run_dir)
    assert [r["id"] for r in runs] == [ids_before["wandb"]] * 2  # one W&B run, in two files
    steps = [[row["_step"] for row in r["history"] if REWARD in row] for r in runs]
    assert steps == [[1, 2, 3], [4, 5]]  # step 3 is the first process's, not logged again
    assert_same_rewards(read_all(run_dir), steps=5)
    status = orz_cli("status", str(run_dir))
    assert f"tracker runs: wandb {ids_before['wandb']}, mlflow {ids_before['mlflow']}" in status.stdout


def test_metric_names_mlflow_rejects_are_mapped_to_ones_it_takes():
    assert mlflow_name("reward/pass@8") == "reward/pass_at_8"
    assert mlflow_name("eval/math500/avg@16") == "eval/math500/avg_at_16"
    assert mlflow_name("time/weight_sync") == "time/weight_sync"


def test_the_configuration_is_flattened_to_dotted_names():
    assert flatten({"ppo": {"lr": 1e-6, "clip": {"low": 0.2}}, "seed": 0}) == {
        "ppo.lr": 1e-6,
        "ppo.clip.low": 0.2,
        "seed": 0,
    }


def test_a_backend_whose_package_is_missing_is_one_problem_naming_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    missing_wandb = lambda name, *a: None if name == "wandb" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", missing_wandb)
    problems = tracker_problems(LogConfig(backends=("jsonl", "wandb", "mlflow")))
    assert problems == ["log.backends: wandb needs the wandb package (pip install 'orz-rl[trackers]')"]
    assert tracker_problems(LogConfig(backends=ALL)) != [] and tracker_problems(LogConfig()) == []


def test_a_tracker_ids_file_that_is_not_json_is_one_error_naming_it(tmp_path):
    from orz_rl.runtime.trackers import Trackers

    (tmp_path / "trackers.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"trackers\.json: not JSON"):
        Trackers(tmp_path, LogConfig(backends=("jsonl",)), step=2, logged=2, config={})


def test_wandb_online_without_an_api_key_is_one_error_naming_the_field_and_the_offline_mode(
    tmp_path, monkeypatch
):
    from orz_rl.runtime.trackers import Trackers

    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no W&B settings
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    try:
        with pytest.raises(ValueError, match=r"log\.backends: wandb: .*API key.*WANDB_MODE=offline"):
            Trackers(tmp_path, LogConfig(backends=("jsonl", "wandb")), step=0, logged=0, config={})
    finally:
        import wandb

        wandb.teardown()  # W&B keeps the settings it read (online, this HOME) for the process


def test_a_tracker_that_fails_mid_run_is_a_warning_and_a_count_and_the_others_go_on(tmp_path, monkeypatch):
    from orz_rl.runtime.trackers import Trackers

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    trackers = Trackers(tmp_path, LogConfig(backends=("jsonl", "wandb", "csv")), step=0, logged=0, config={})
    trackers.log(1, {REWARD: 0.25}, [])
    trackers._loggers["wandb"].experiment.finish()  # W&B refuses every later call: a real failure
    with pytest.warns(UserWarning, match=r"log\.backends: wandb failed at step 2 \(UsageError: .*finished"):
        trackers.log(2, {REWARD: 0.5}, [])
    trackers.log(3, {REWARD: 0.75}, [])  # warned once
    assert trackers.failures == {"wandb": 2}
    with pytest.warns(UserWarning, match=r"wandb missed 2 step\(s\)"):
        trackers.close()
    csv = (tmp_path / "csv/scalars/reward/mean.csv").read_text().splitlines()
    assert csv == ["1,0.25", "2,0.5", "3,0.75"]

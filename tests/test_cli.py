"""The command line: sub-commands, recipes (built-in and one's own), field overrides and clear
errors on bad input."""

from __future__ import annotations

import json

from orz_rl.cli import COMMANDS
from orz_rl.recipes import RECIPES

from .conftest import cpu_default_on, orz_cli, orz_cli_here


def test_help_lists_every_sub_command_with_one_line_and_exits_0():
    out = orz_cli("--help")
    assert out.returncode == 0
    for name, line in COMMANDS.items():
        assert f"  {name}" in out.stdout and line in out.stdout
    bare = orz_cli()
    assert bare.returncode == 2 and "train" in bare.stderr


def test_recipes_lists_every_built_in_recipe_with_one_line():
    out = orz_cli_here("recipes")
    assert out.returncode == 0
    for name, (line, _) in RECIPES.items():
        assert name in out.stdout and line in out.stdout


def test_train_help_says_how_to_name_a_recipe_and_lists_the_built_in_ones():
    out = orz_cli_here("train", "--help")
    assert out.returncode == 0
    assert "path/to/file.py:NAME" in out.stdout
    for name in ("cpu-default", "orz-0.5b", "orz-1.5b", "orz-7b", "orz-32b"):
        assert name in out.stdout


def test_recipe_help_shows_the_command_and_documents_fields():
    out = orz_cli_here("train", "cpu-default", "--help")
    assert out.returncode == 0
    assert "usage: orz-rl train cpu-default [-h]" in out.stdout
    assert "--task STR" in out.stdout and "--rollout.samples-per-prompt" in out.stdout
    assert "Responses sampled per prompt" in out.stdout
    assert "--rollout.backend {auto,vllm,transformers}" in out.stdout


def test_an_unknown_recipe_lists_the_built_in_ones_and_how_to_name_ones_own():
    out = orz_cli_here("train", "cpu-defualt")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "unknown recipe 'cpu-defualt'; built-in: cpu-default, cpu-mixed" in out.stderr
    assert "path/to/file.py:NAME" in out.stderr


def test_a_recipe_file_that_is_missing_or_names_no_train_config_is_one_error(tmp_path):
    missing = orz_cli_here("train", f"{tmp_path / 'none.py'}:MINE")
    assert missing.returncode == 1 and f"file {str(tmp_path / 'none.py')!r} does not exist" in missing.stderr
    mine = tmp_path / "mine.py"
    mine.write_text("MINE = {'task': 'math'}\n")
    wrong = orz_cli_here("train", f"{mine}:MINE")
    assert wrong.returncode == 1 and "is a dict, not an orz_rl TrainConfig" in wrong.stderr
    absent = orz_cli_here("train", f"{mine}:OTHER")
    assert absent.returncode == 1 and "defines no 'OTHER'" in absent.stderr


def test_an_unknown_task_lists_the_registered_ones(tmp_path):
    out = orz_cli_here("train", "cpu-default", "--task", "poetry", "--model.path", str(tmp_path / "m"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "task: task 'poetry' is not registered; known: math, code, mixed" in out.stderr


def test_unknown_recipe_field_is_rejected_with_the_valid_names():
    out = orz_cli_here("train", "cpu-default", "--rollout.samples-per-promt", "4")
    assert out.returncode != 0
    assert "samples-per-promt" in out.stderr
    assert "--rollout.samples-per-prompt" in out.stderr


def test_missing_model_path_names_the_path(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(
        json.dumps([[{"from": "human", "value": "Q"}, {"from": "assistant", "ground_truth": {"value": "1"}}]])
    )
    missing = tmp_path / "no-such-model"
    out = orz_cli_here(
        "train",
        "cpu-default",
        "--model.path",
        str(missing),
        "--model.no-build-tiny-if-missing",
        "--data.train-file",
        str(data),
        "--data.no-generate-toy-task",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert out.returncode == 1
    assert f"model.path {str(missing)!r} does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_malformed_dataset_names_file_and_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '[{"from": "human", "value": "Q"}, {"from": "assistant", "ground_truth": {"value": "1"}}]\n[1]\n'
    )
    out = orz_cli_here(
        "train",
        "cpu-default",
        "--data.train-file",
        str(data),
        "--data.no-generate-toy-task",
        "--model.path",
        str(tmp_path / "m"),
        "--model.no-build-tiny-if-missing",
        "--run-dir",
        str(tmp_path / "r"),
    )
    assert out.returncode == 1
    assert f"{data}:2: malformed item" in out.stderr


def test_a_kv_cache_vllm_cannot_allocate_is_one_error_naming_the_recipe_field(tiny_model_dir, tmp_path):
    out = orz_cli(
        *cpu_default_on(tiny_model_dir, tmp_path),
        *("--rollout.backend", "vllm"),
        "--rollout.vllm-cpu-kv-cache-gib",
        "100000",
    )
    assert out.returncode == 1
    assert "orz-rl: error: vLLM did not start with rollout.vllm_cpu_kv_cache_gib = 100000.0" in out.stderr
    assert "Traceback" not in out.stderr


def test_code_problems_without_network_isolation_are_refused_before_any_model_loads(tmp_path):
    out = orz_cli_here(
        "train",
        "cpu-mixed",
        "--model.path",
        str(tmp_path / "not-built"),
        "--model.no-build-tiny-if-missing",
        "--data.train-file",
        str(tmp_path / "toy.json"),
        "--data.code-file",
        str(tmp_path / "code.jsonl"),
        "--sandbox.isolation",
        "none",
    )
    assert out.returncode == 1
    assert "set sandbox.allow_unisolated to accept that" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "not-built").exists()


def test_a_missing_code_file_names_the_field(tmp_path):
    out = orz_cli_here(
        "train",
        "cpu-mixed",
        "--data.no-generate-toy-code",
        "--data.code-file",
        str(tmp_path / "none.jsonl"),
        "--data.train-file",
        str(tmp_path / "toy.json"),
        "--model.no-build-tiny-if-missing",
    )
    assert out.returncode == 1
    assert f"data.code_file {str(tmp_path / 'none.jsonl')!r} does not exist" in out.stderr


def _words(text: str) -> str:
    """``text`` as one line of words, so that a check does not depend on where help wraps."""
    return " ".join(text.replace("│", " ").split())


def test_task_help_names_every_way_to_name_a_task():
    field = _words(orz_cli_here("train", "cpu-default", "--help").stdout)
    for form in (
        "a built-in name (math, code, mixed)",
        "entry point group orz_rl.tasks",
        "FILE.py:NAME, a Task in a file of one's own, e.g. my_task.py:TASK",
        "package.module:NAME, a Task in an importable module",
    ):
        assert form in field
    bare = orz_cli_here("train", "--help").stdout
    assert "--task names what a run trains on" in bare and "FILE.py:NAME or package.module:NAME" in bare


def test_tasks_lists_built_in_and_installed_tasks_then_how_to_name_ones_own():
    from orz_rl.envs.registry import BUILTIN, registered_tasks

    out = orz_cli_here("tasks")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "built-in tasks (--task NAME):"
    assert [line.split()[0] for line in lines[1 : 1 + len(BUILTIN)]] == list(BUILTIN)
    for name, target in registered_tasks().items():
        if name not in BUILTIN:  # an entry point of an installed package, e.g. examples/countdown
            assert any(line.startswith(f"  {name} ") and f"({target})" in line for line in lines)
    assert (
        "  --task FILE.py:NAME         in a file, e.g. orz-rl train cpu-default --task my_task.py:TASK"
        in lines
    )
    assert any(line.startswith("  --task package.module:NAME") and "e.g. --task " in line for line in lines)


def test_tasks_says_when_no_package_registers_one_and_survives_a_broken_one(monkeypatch, capsys):
    from orz_rl.cli import tasks
    from orz_rl.envs import registry

    monkeypatch.setattr(registry, "registered_tasks", lambda: dict(registry.BUILTIN))
    tasks([])
    assert "  none (a package adds one as examples/countdown/pyproject.toml does)" in capsys.readouterr().out
    broken = dict(registry.BUILTIN, broken="orz_rl_no_such_module:TASK")
    monkeypatch.setattr(registry, "registered_tasks", lambda: broken)
    tasks([])
    out = capsys.readouterr().out
    assert (
        "  broken  cannot be loaded: task 'orz_rl_no_such_module:TASK'" in out
        and "--task FILE.py:NAME" in out
    )


def test_eval_of_a_file_in_no_built_in_format_is_one_error_suggesting_task(tmp_path):
    data = tmp_path / "countdown.jsonl"
    data.write_text(json.dumps({"numbers": [7, 1, 5], "target": 1}) + "\n")
    out = orz_cli_here("eval", "--benchmarks", str(data), "--out-dir", str(tmp_path / "out"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("orz-rl: error:")]
    assert len(errors) == 1
    assert f"{data}:1: not in a built-in format (its columns: numbers, target); built in: ORZ's" in errors[0]
    assert "name that task: --task FILE.py:NAME" in errors[0] and "orz-rl tasks lists them" in errors[0]


def test_the_task_hint_is_only_for_a_file_in_no_built_in_format_under_train_or_eval():
    from orz_rl.cli import task_hint
    from orz_rl.problems.formats import DatasetFormatError, UnknownFormatError

    unknown = UnknownFormatError("f.jsonl:1: not in a built-in format")
    assert "--task FILE.py:NAME" in task_hint("eval", unknown) and task_hint("train", unknown)
    assert task_hint("data", unknown) == ""  # `orz-rl data` takes no --task
    assert task_hint("eval", DatasetFormatError("f.json:2: malformed item")) == ""

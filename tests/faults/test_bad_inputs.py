"""Inputs that are the wrong thing: a file or a run where a model is expected, a truncated weight
file, a file where a run's folder goes, binary files as data, user recipes and tasks that raise
while being imported. Each is one error naming the file (a user file's own traceback above it)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
from dataclasses import replace

import pytest

from orz_rl.config import ConfigError
from orz_rl.curation.items import read_items
from orz_rl.envs.registry import UnknownTaskError, get_task
from orz_rl.models.loading import (
    ModelFileError,
    ModelNotFoundError,
    check_model_files,
    check_model_path,
    load_causal_lm,
    load_tokenizer,
)
from orz_rl.plugins import PluginError, load_object
from orz_rl.problems.formats import load_problems
from orz_rl.problems.tables import DatasetFormatError, iter_rows
from orz_rl.recipes import RECIPES
from orz_rl.runtime.preflight import config_problems, load_checked

from ..conftest import orz_cli, orz_cli_here

#: Bytes no UTF-8 text starts with, then noise: a binary file.
BINARY = b"\xff\xfe\x00\x83" + os.urandom(4092)


def truncated_model(tiny_model_dir, tmp_path):
    """A copy of the tiny model whose ``model.safetensors`` is cut to half its bytes."""
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return model


def fake_run(tmp_path, tiny_model_dir):
    """A run's folder with checkpoints at steps 2 and 4 (their ``actor/`` the tiny model's config)
    and a save of step 6 in progress."""
    run = tmp_path / "run"
    for tag, step in (("step_2", 2), ("step_4", 4), ("step_6.tmp", 6)):
        checkpoint = run / "checkpoints" / tag
        (checkpoint / "actor").mkdir(parents=True)
        (checkpoint / "critic").mkdir()
        shutil.copy(tiny_model_dir / "config.json", checkpoint / "actor" / "config.json")
        (checkpoint / "trainer_state.pt").write_bytes(b"state")
        (checkpoint / "MANIFEST.json").write_text(json.dumps({"step": step, "files": {}}))
    return run


def test_a_file_as_the_model_path_is_named_a_file(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    with pytest.raises(ModelNotFoundError, match=r"model\.safetensors' is a file, not a Hugging Face model"):
        check_model_path(str(weights))
    with pytest.raises(ModelNotFoundError, match="is a file"):
        load_tokenizer(str(weights))


def test_a_run_or_its_checkpoints_as_the_model_path_suggest_the_newest_actor(tmp_path, tiny_model_dir):
    run = fake_run(tmp_path, tiny_model_dir)
    newest = run / "checkpoints" / "step_4" / "actor"
    for path in (run, run / "checkpoints"):
        with pytest.raises(ModelNotFoundError) as e:
            load_tokenizer(str(path))
        assert str(e.value) == (
            f"model path {str(path)!r} holds training checkpoints, not a Hugging Face model directory: "
            f"name a checkpoint's actor folder, e.g. {str(newest)!r} (the newest)"
        )
    older = run / "checkpoints" / "step_2"
    with pytest.raises(ModelNotFoundError, match=f"e.g. {str(older / 'actor')!r}$"):
        check_model_path(str(older))


def test_a_folder_without_config_json_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        check_model_path(str(tmp_path))


def test_a_truncated_safetensors_file_is_named_before_any_weights_load(tiny_model_dir, tmp_path):
    model = truncated_model(tiny_model_dir, tmp_path)
    named = f"model file {str(model / 'model.safetensors')!r} .* is truncated or not a safetensors file"
    with pytest.raises(ModelFileError, match=named):
        check_model_path(str(model))
    with pytest.raises(ModelFileError, match=named):
        load_causal_lm(str(model))
    (model / "model.safetensors").write_bytes(BINARY)  # not safetensors at all
    with pytest.raises(ModelFileError, match=named):
        load_tokenizer(str(model))


def test_an_intact_model_passes_and_a_shard_missing_from_its_index_is_named(tiny_model_dir, tmp_path):
    check_model_files(tiny_model_dir)
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    index = {"metadata": {}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFileError, match=r"model-00002-of-00002\.safetensors', listed in .* is missing"):
        check_model_path(str(model))


def test_a_run_or_a_truncated_model_as_model_path_is_a_configuration_problem(tmp_path, tiny_model_dir):
    _, cpu = RECIPES["cpu-default"]
    data = replace(cpu.data, train_file=str(tmp_path / "toy.json"))
    run = fake_run(tmp_path, tiny_model_dir)
    for path, named in (
        (run, f"model.path {str(run)!r} holds training checkpoints"),
        (truncated_model(tiny_model_dir, tmp_path), "model file .*model.safetensors' .* is truncated"),
    ):
        # The tiny model is built only where nothing is: a path that is there is checked.
        cfg = replace(cpu, data=data, model=replace(cpu.model, path=str(path)), run_dir=tmp_path / "out")
        with pytest.raises(ConfigError, match=rf"\(1 problem\(s\)\):\n  - {named}"):
            load_checked(cfg)  # before any tokenizer or weights load


def test_a_file_as_the_run_dir_or_resume_is_a_problem_before_any_model_loads(tmp_path):
    _, cpu = RECIPES["cpu-default"]
    taken = tmp_path / "notes.txt"
    taken.write_text("not a run")
    assert (
        f"run_dir {str(taken)!r} is a file, not a directory (a run's folder)"
        in config_problems(replace(cpu, run_dir=taken))[1]
    )
    assert (
        f"run_dir {str(taken / 'run')!r} ({str(taken)!r} on its path) is a file, not a directory "
        "(a run's folder)" in config_problems(replace(cpu, run_dir=taken / "run"))[1]
    )
    assert (
        f"resume {str(taken)!r} is a file, not a directory (a run's folder)"
        in config_problems(replace(cpu, resume=taken))[1]
    )


def test_a_folder_as_the_training_file_is_a_problem_even_where_the_toy_task_would_be_written(tmp_path):
    _, cpu = RECIPES["cpu-default"]  # generates its toy data at data.train_file
    for generate in (True, False):
        data = replace(cpu.data, train_file=str(tmp_path), generate_toy_task=generate)
        assert (
            f"data.train_file {str(tmp_path)!r} is a folder, not a data file"
            in config_problems(replace(cpu, data=data, run_dir=tmp_path / "run"))[1]
        )


@pytest.mark.parametrize("name", ["x.jsonl", "x.json", "x.csv"])
def test_a_binary_file_as_data_is_named_not_utf8_at_its_line(tmp_path, name):
    binary = tmp_path / name
    binary.write_bytes(BINARY)
    with pytest.raises(
        DatasetFormatError, match=rf"{name}:1: not a UTF-8 text file \(byte 0xff, character 1"
    ):
        list(iter_rows(binary))
    with pytest.raises(DatasetFormatError, match=rf"{name}:1: not a UTF-8 text file"):
        load_problems(binary)


def test_a_bad_byte_further_down_names_its_line(tmp_path):
    good = '[{"from": "human", "value": "1+1"}, {"from": "assistant", "ground_truth": {"value": "2"}}]'
    for name, text in (
        ("late.jsonl", f"{good}\n{good}\n".encode() + b'[{"from": "h\xe9"}]\n'),
        ("late.json", f"[\n{good},\n".encode() + b"\x89PNG]"),
    ):
        (tmp_path / name).write_bytes(text)
        with pytest.raises(DatasetFormatError, match=rf"{name}:3: not a UTF-8 text file"):
            list(iter_rows(tmp_path / name))
    (tmp_path / "late.jsonl.gz").write_bytes(gzip.compress(f"{good}\n".encode() + b"\x89PNG\n"))
    with pytest.raises(DatasetFormatError, match=r"late\.jsonl\.gz:2: not a UTF-8 text file \(byte 0x89"):
        list(iter_rows(tmp_path / "late.jsonl.gz"))


def test_random_bytes_as_parquet_or_gzip_are_named_not_that_format(tmp_path):
    (tmp_path / "x.parquet").write_bytes(BINARY)
    with pytest.raises(
        DatasetFormatError, match=r"x\.parquet: could not be read as Parquet \(.*magic bytes PAR1"
    ):
        list(iter_rows(tmp_path / "x.parquet"))
    (tmp_path / "x.jsonl.gz").write_bytes(BINARY)
    with pytest.raises(DatasetFormatError, match=r"x\.jsonl\.gz: not a gzipped UTF-8 JSON Lines file"):
        list(iter_rows(tmp_path / "x.jsonl.gz"))


def test_a_table_given_to_a_data_step_is_told_to_be_imported_first(tmp_path):
    (tmp_path / "x.parquet").write_bytes(BINARY)
    with pytest.raises(
        DatasetFormatError, match=r"x\.parquet: Parquet, not an ORZ training file .* data import"
    ):
        list(read_items(tmp_path / "x.parquet"))


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        ('raise RuntimeError("boom")\n', "RuntimeError: boom"),
        ("def f(:\n", r"SyntaxError: invalid syntax \(recipe\.py, line 1\)"),
        ("import nonexistent_module_of_orz_tests\n", "ModuleNotFoundError: No module named"),
    ],
)
def test_a_user_file_that_raises_on_import_is_its_traceback_then_one_line_naming_it(
    tmp_path, capsys, source, raised
):
    recipe = tmp_path / "recipe.py"
    recipe.write_text(source)
    with pytest.raises(PluginError) as e:
        load_object(f"{recipe}:CFG", "recipe")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"recipe '{recipe}:CFG': {recipe} raised ")
    assert str(e.value).endswith(" while being imported (its traceback is above)")
    assert re.search(raised, str(e.value))
    assert not [m for m in sys.modules if m.startswith("_orz_rl_user_recipe_")]  # no half-run module left
    shown = capsys.readouterr().err
    assert str(recipe) in shown and "importlib" not in shown  # the user's frames, not the loader's


def test_a_module_named_for_a_task_that_raises_is_named_and_a_missing_one_is_one_line(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "orz_test_broken_task.py").write_text('raise ValueError("bad task")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownTaskError, match=r"orz_test_broken_task raised ValueError: bad task while"):
        get_task("orz_test_broken_task:TASK")
    assert "orz_test_broken_task.py" in capsys.readouterr().err
    with pytest.raises(UnknownTaskError, match=r"^task 'orz_no_such_module:TASK': No module named"):
        get_task("orz_no_such_module:TASK")
    assert capsys.readouterr().err == ""  # nothing of the user's ran: no traceback to show


def test_the_cli_names_a_truncated_model_in_one_line(tiny_model_dir, tmp_path):
    model = truncated_model(tiny_model_dir, tmp_path)
    out = orz_cli_here("eval", "--model", str(model), "--benchmarks", "math500", "--limit", "2")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("orz-rl: error:")]
    assert errors == [
        f"orz-rl: error: model file {str(model / 'model.safetensors')!r} "
        f"({(model / 'model.safetensors').stat().st_size} bytes) is truncated or not a safetensors file "
        "(Error while deserializing header: incomplete metadata, file not fully covered)"
    ]


def test_the_cli_shows_a_raising_recipes_traceback_then_one_line_naming_it(tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text('raise RuntimeError("boom")\n')
    out = orz_cli("train", f"{recipe}:CFG")
    assert out.returncode == 1
    lines = out.stderr.rstrip("\n").splitlines()
    assert lines[0] == "Traceback (most recent call last):" and f'File "{recipe}", line 1' in out.stderr
    assert lines[-2:] == [
        "RuntimeError: boom",
        f"orz-rl: error: recipe '{recipe}:CFG': {recipe} raised RuntimeError: boom while being imported "
        "(its traceback is above)",
    ]

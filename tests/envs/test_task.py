"""A task writes the generated data files it reads, and no others."""

from __future__ import annotations

from dataclasses import replace

from orz_rl.recipes import RECIPES
from orz_rl.runtime.preflight import load_checked

#: A task of one's own that loads its problems itself (the README's form).
OWN_TASK = '''
from orz_rl.envs import Task
from orz_rl.envs.math import make_math_env
from orz_rl.problems.problem import Problem

TASK = Task(
    name="echo",
    summary="say the number",
    make_env=make_math_env,
    load_problems=lambda data: [Problem(f"Say {n}.", str(n)) for n in range(8)],
)
'''


def test_the_cpu_recipes_toy_file_is_written_by_the_math_task_and_not_by_a_task_of_ones_own(
    tmp_path, tiny_model_dir
):
    _, cpu = RECIPES["cpu-default"]  # data.generate_toy_task: the addition task at data.train_file
    task_file = tmp_path / "echo_task.py"
    task_file.write_text(OWN_TASK, encoding="utf-8")
    toy = tmp_path / "toy_addition.json"
    base = replace(
        cpu,
        model=replace(cpu.model, path=str(tiny_model_dir)),
        data=replace(cpu.data, train_file=str(toy)),
        run_dir=tmp_path / "run",
    )
    task, problems, _ = load_checked(replace(base, task=f"{task_file}:TASK"))
    assert task.name == "echo" and len(problems) == 8
    assert not toy.exists(), "a task that does not read data.train_file wrote it"
    task, problems, _ = load_checked(base)
    assert task.name == "math" and toy.is_file()
    assert len(problems) == (cpu.data.toy_max_operand + 1) ** 2

"""CodeEnv: programming prompts rewarded by their unit tests, through a real TorchRL env step."""

from __future__ import annotations

import json

import pytest
from tensordict import NonTensorStack

from orz_rl.config import SandboxConfig
from orz_rl.envs.code import SHIPPED_PROBLEMS as SHIPPED
from orz_rl.envs.code import CodeEnv
from orz_rl.problems.formats import load_code_problems
from orz_rl.problems.prompts import CODE_TEMPLATE
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.sandbox import Sandbox
from tests.sandbox_helpers import ISOLATIONS


@pytest.fixture(scope="module")
def judge():
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], timeout=5)) as sandbox:
        code_judge = CodeJudge(sandbox)
        yield code_judge
        code_judge.close()


def answer(program: str, stop: str = "</answer>") -> str:
    return f" I write it. </think> <answer> ```python\n{program}``` {stop}"


def test_every_shipped_problem_is_solved_by_its_reference_and_failed_by_a_wrong_program(judge):
    problems = load_code_problems(SHIPPED)
    solutions = [json.loads(line)["solution"] for line in SHIPPED.read_text().splitlines()]
    env = CodeEnv(problems, judge=judge, prompts_per_step=len(problems), samples_per_prompt=2)
    td = env.reset()
    ids = td["prompt_id"].tolist()
    # Sample 0 of each prompt is the reference solution; sample 1 is another problem's.
    responses = [answer(solutions[i if k % 2 == 0 else (i + 1) % len(problems)]) for k, i in enumerate(ids)]
    td.set(("text", "response"), NonTensorStack(*responses))
    reward = env.step(td)["next", "reward"].view(-1, 2)
    assert reward[:, 0].tolist() == [1.0] * len(problems)
    assert reward[:, 1].tolist() == [0.0] * len(problems)
    stats = env.last_score_stats
    assert stats["code/passed"] == len(problems) and stats["code/pass_rate"] == 0.5
    assert stats["code/programs_run"] == 2 * len(problems)


def test_the_prompt_asks_for_a_program_in_the_orz_template(judge):
    problems = load_code_problems(SHIPPED)[:1]
    prompt = CodeEnv(problems, judge=judge, prompts_per_step=1, samples_per_prompt=1).reset()[
        "text", "prompt"
    ]
    assert prompt[0] == CODE_TEMPLATE.format(bos="", question=problems[0].question)


def test_a_response_cut_by_the_length_limit_earns_0_even_with_a_passing_program(judge):
    problems = load_code_problems(SHIPPED)[:1]
    solution = json.loads(SHIPPED.read_text().splitlines()[0])["solution"]
    env = CodeEnv(problems, judge=judge, prompts_per_step=1, samples_per_prompt=2)
    td = env.reset()
    td.set(("text", "response"), NonTensorStack(answer(solution), answer(solution, stop="")))
    assert env.step(td)["next", "reward"].view(-1).tolist() == [1.0, 0.0]
    assert env.last_score_stats["code/cut"] == 1

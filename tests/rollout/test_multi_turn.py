"""Multi-turn rollouts with the Python tool: the trajectory's tokens, masks, rewards and budgets.

The policy here is scripted (its next turn is a function of the text it has read), so that
every token can be checked; the env, its sandbox, the task's rule, the tokenizer, the collector
and the training batch are the real ones.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from orz_rl import keys
from orz_rl.config import SandboxConfig, ToolConfig
from orz_rl.envs.math import MathEnv
from orz_rl.envs.python_tool import PythonToolEnv, tool_call, with_python_tool
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import TOOL_INSTRUCTION, TOOL_STOP_STRINGS, as_strings
from orz_rl.problems.toy_task import product_problems
from orz_rl.recipes.cpu_default import CPU_TOOLS
from orz_rl.rewards.sandbox import Sandbox
from orz_rl.rollout.multi_turn import MultiTurnCollector
from orz_rl.rollout.policies import Sampling, make_transformers_policy
from orz_rl.rollout.training_batch import ToTrainingBatch
from tests.rollout.scripted_policy import ScriptedPolicy, StreamingScriptedPolicy
from tests.sandbox_helpers import ISOLATIONS, sandbox_processes

CALL = "<code>\nprint(6 * 7)\n</code>"
ANSWER = " So it is 42. </think> <answer>\\boxed{42}</answer>"
#: What a tool call brings back begins so (the prompt's tool instruction names the tags too).
OUTPUT = "\n<output>\n"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], workers=2, timeout=3), announce=False) as sb:
        yield sb


def _collector(
    tokenizer, sandbox, respond, tool: ToolConfig | None = None, samples: int = 2, make_policy=ScriptedPolicy
):
    problems = [Problem(question="What is 6 times 7?", answer="42"), Problem(question="6 * 7?", answer="42")]
    task = MathEnv(problems, prompts_per_step=2, samples_per_prompt=samples)
    env = PythonToolEnv(task, tokenizer, sandbox, tool or ToolConfig(), turn_tokens=64)
    policy = make_policy(tokenizer, respond)
    return (
        MultiTurnCollector(env, policy=policy, postproc=ToTrainingBatch(tokenizer.pad_token_id)),
        env,
        policy,
    )


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_a_code_block_at_the_end_of_a_turn_is_a_call_and_anything_else_is_final():
    assert tool_call("Let me compute. <code>\nprint(1)\n</code>") == "print(1)"
    assert tool_call("<code>a = 1</code>\n") == "a = 1"
    assert tool_call("<code>print(1)</code> so <answer>1</answer>") is None
    assert tool_call("<answer>3</answer>") is None


def test_a_task_env_that_is_not_rule_rewarded_is_one_error_naming_it(tokenizer, sandbox):
    with pytest.raises(ValueError, match="RuleRewardEnv; dict is not one"):
        with_python_tool({}, tokenizer, sandbox, ToolConfig(), turn_tokens=64)


@pytest.mark.parametrize("instruction", [True, False])
def test_the_prompt_tells_the_model_the_calls_format_unless_turned_off(tokenizer, sandbox, instruction):
    problems = [Problem(question="What is 6 times 7?", answer="42")]
    task = MathEnv(problems, prompts_per_step=1, samples_per_prompt=2)
    env = PythonToolEnv(task, tokenizer, sandbox, ToolConfig(instruction=instruction), turn_tokens=64)
    td = env.reset()
    texts = as_strings(td.get(("text", "prompt")))
    read = [tokenizer.decode(ids.tolist()) for ids in td.get(("tokens", "prompt"), as_list=True)]
    assert read == texts
    told = TOOL_INSTRUCTION + "This is the problem:\nWhat is 6 times 7?"
    assert all((told in t) is instruction for t in texts)


def test_a_two_turn_trajectory_is_the_sampled_ids_and_the_tools_output_as_tokenised_once(tokenizer, sandbox):
    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else CALL

    collector, env, policy = _collector(tokenizer, sandbox, respond)
    batch = collector.multi_turn_rollout()
    batch = collector.postproc(batch)
    assert policy.calls == [4, 4], "one policy call per turn for every live trajectory"
    call, answer = _ids(tokenizer, CALL), _ids(tokenizer, ANSWER)
    output = _ids(tokenizer, "\n<output>\n42\n</output>\n")
    expected = call + output + answer
    mask = batch.get(keys.RESPONSE_MASK)
    sampled = batch.get(keys.ASSISTANT_MASK)
    for i in range(4):
        assert batch.get(keys.ACTION)[i][mask[i]].tolist() == expected
        assert sampled[i][mask[i]].tolist() == [True] * len(call) + [False] * len(output) + [True] * len(
            answer
        )
        log_probs = batch.get(keys.GENERATION_LOG_PROB)[i][mask[i]]
        want = [-0.25 * (t + 1) for t in range(len(call))] + [0.0] * len(output)
        want += [-0.25 * (t + 1) for t in range(len(answer))]
        torch.testing.assert_close(log_probs, torch.tensor(want))
    assert batch.get(keys.EPISODE_REWARD).tolist() == [1.0] * 4
    assert batch.get(keys.STOPPED).all()
    stats = env.last_tool_stats
    assert (stats["turns"], stats["calls"], stats["errors"], stats["ended_by_budget"]) == (
        8,
        4,
        0,
        0,
    )
    assert stats["output_tokens"] == 4 * len(output) and stats["seconds"] > 0


def test_trajectories_that_call_and_ones_that_answer_at_once_share_a_turn(tokenizer, sandbox):
    # The first question's trajectories call the tool, the second's answer in their first turn:
    # the step's tool ids are ragged (a call's output beside nothing), as in any real rollout.
    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read or "6 * 7?" in read else CALL

    collector, env, policy = _collector(tokenizer, sandbox, respond)
    batch = collector.postproc(collector.multi_turn_rollout())
    assert policy.calls == [4, 2], "the second turn samples only the trajectories still live"
    call, answer = _ids(tokenizer, CALL), _ids(tokenizer, ANSWER)
    output = _ids(tokenizer, "\n<output>\n42\n</output>\n")
    mask, sampled = batch.get(keys.RESPONSE_MASK), batch.get(keys.ASSISTANT_MASK)
    rows = sorted(batch.get(keys.ACTION)[i][mask[i]].tolist() for i in range(4))
    assert rows == sorted([answer] * 2 + [call + output + answer] * 2)
    assert sorted(int((~sampled[i][mask[i]]).sum()) for i in range(4)) == [0, 0, len(output), len(output)]
    assert batch.get(keys.EPISODE_REWARD).tolist() == [1.0] * 4
    assert env.last_tool_stats["calls"] == 2


def test_a_tool_output_is_never_graded_as_the_models_answer(tokenizer, sandbox):
    # The program prints the boxed answer; the model's own turns never box one.
    smuggle = "<code>\nprint('\\\\boxed{42}')\n</code>"

    def respond(read: str) -> str:
        return " See above. </think> <answer> above </answer>" if OUTPUT in read else smuggle

    collector, env, _ = _collector(tokenizer, sandbox, respond)
    batch = collector.postproc(collector.multi_turn_rollout())
    assert env.last_tool_stats["calls"] == 4 and env.last_tool_stats["errors"] == 0
    assert batch.get(keys.EPISODE_REWARD).tolist() == [0.0] * 4


def test_the_scoring_time_is_wall_clock_so_parallel_calls_count_once(tokenizer, sandbox):
    # Four calls of 0.4 s on two workers: 1.6 s of calls in about 0.8 s. The collector's
    # generation time is its whole time less this one, so a sum of the calls made it negative.
    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else "<code>\nimport time; time.sleep(0.4); print(42)\n</code>"

    collector, env, _ = _collector(tokenizer, sandbox, respond)
    start = time.perf_counter()
    collector.multi_turn_rollout()
    wall = time.perf_counter() - start
    assert env.last_tool_stats["seconds"] >= 1.6
    assert 0.8 <= env.last_score_seconds < wall


def test_a_tool_call_starts_while_the_turns_later_trajectories_are_still_being_generated(tokenizer, sandbox):
    # The policy hands each trajectory's turn over as soon as it is written, as vLLM's engine
    # does: every later trajectory of the turn is written only once a call has started (or after
    # 20 s, which fails), and the step takes those calls' results instead of running them again.
    started, written_after_a_call = threading.Event(), []

    def respond(read: str) -> str:
        if OUTPUT in read:
            return ANSWER
        written_after_a_call.append(started.wait(timeout=20) if written_after_a_call else True)
        return CALL

    collector, env, _ = _collector(tokenizer, sandbox, respond, make_policy=StreamingScriptedPolicy)
    programs, run = [], env._run

    def recorded(program: str):
        programs.append(program)
        started.set()
        return run(program)

    env._run = recorded
    batch = collector.postproc(collector.multi_turn_rollout())
    assert written_after_a_call == [True] * 4
    assert programs == ["print(6 * 7)"] * 4, "each call ran once"
    assert batch.get(keys.EPISODE_REWARD).tolist() == [1.0] * 4
    assert env.last_tool_stats["calls"] == 4 and env.last_tool_stats["seconds_hidden"] > 0


def test_a_turn_the_step_receives_other_than_was_handed_over_early_runs_its_own_call(tokenizer, sandbox):
    handed = torch.tensor(_ids(tokenizer, "<code>\nprint(1)\n</code>"))

    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else CALL

    def make_policy(tok, respond):
        return StreamingScriptedPolicy(tok, respond, handed=lambda ids: handed)

    collector, env, _ = _collector(tokenizer, sandbox, respond, make_policy=make_policy)
    batch = collector.postproc(collector.multi_turn_rollout())
    mask, sampled = batch.get(keys.RESPONSE_MASK), batch.get(keys.ASSISTANT_MASK)
    for i in range(4):
        tool = batch.get(keys.ACTION)[i][mask[i] & ~sampled[i]]
        assert tokenizer.decode(tool.tolist()) == "\n<output>\n42\n</output>\n"
    assert batch.get(keys.EPISODE_REWARD).tolist() == [1.0] * 4
    assert env.last_tool_stats["calls"] == 4 and not env._early


def test_a_trajectory_that_keeps_calling_ends_at_its_turn_budget_with_reward_0(tokenizer, sandbox):
    collector, env, policy = _collector(tokenizer, sandbox, lambda read: CALL, ToolConfig(max_turns=3))
    batch = collector.postproc(collector.multi_turn_rollout())
    assert policy.calls == [4, 4, 4]
    assert batch.get(keys.EPISODE_REWARD).tolist() == [0.0] * 4
    assert env.last_tool_stats["ended_by_budget"] == 4 and env.last_tool_stats["calls"] == 8


def test_a_tool_output_is_cut_to_its_token_budget(tokenizer, sandbox):
    flood = "<code>\nprint('7' * 5000)\n</code>"

    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else flood

    collector, env, _ = _collector(tokenizer, sandbox, respond, ToolConfig(max_output_tokens=10))
    batch = collector.postproc(collector.multi_turn_rollout())
    inserted = ~batch.get(keys.ASSISTANT_MASK) & batch.get(keys.RESPONSE_MASK)
    assert inserted.sum(-1).tolist() == [10] * 4
    assert env.last_tool_stats["output_tokens"] == 40


@pytest.mark.parametrize(
    ("program", "status"),
    [
        ("while True:\n    pass", "timeout"),
        ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", "timeout"),
        ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)", "error"),
        ("open('/etc/passwd', 'a').write('x')", "error"),
    ],
)
def test_a_hostile_tool_call_is_an_error_observation_and_the_trajectory_goes_on(
    tokenizer, sandbox, program, status
):
    hostile = f"<code>\n{program}\n</code>"

    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else hostile

    collector, env, _ = _collector(tokenizer, sandbox, respond, ToolConfig(seconds=1.0), samples=1)
    batch = collector.postproc(collector.multi_turn_rollout())
    texts = batch.get(keys.RESPONSE_TEXT).tolist()
    assert all(f"<output>\n{status}" in t for t in texts), texts
    assert batch.get(keys.EPISODE_REWARD).tolist() == [1.0, 1.0], "it answered after the error"
    assert env.last_tool_stats["errors"] == 2
    assert not sandbox_processes(), "nothing a tool call started survives it"


def test_a_call_that_leaves_no_room_for_a_whole_turn_ends_the_trajectory_with_reward_0(tokenizer, sandbox):
    # 90 tokens after the prompt at most, turns of up to 64: after one call (45 tokens) no room.
    def respond(read: str) -> str:
        return ANSWER if OUTPUT in read else CALL

    collector, env, policy = _collector(tokenizer, sandbox, respond, ToolConfig(max_total_tokens=90))
    batch = collector.postproc(collector.multi_turn_rollout())
    assert policy.calls == [4]
    assert batch.get(keys.EPISODE_REWARD).tolist() == [0.0] * 4
    assert env.last_score_stats["tool/ended_by_budget"] == 4


def _runs(mask: list[bool]) -> list[tuple[bool, int, int]]:
    """The row's stretches of equal mask values, as ``(value, start, end)``."""
    runs, start = [], 0
    for t in range(1, len(mask) + 1):
        if t == len(mask) or mask[t] != mask[start]:
            runs.append((mask[start], start, t))
            start = t
    return runs


def test_a_real_model_calling_the_tool_is_trained_on_exactly_its_sampled_ids(tools_model_dir, sandbox):
    """Token in, token out with a model that calls the tool by itself (``cpu-tools``' tiny model):
    each trajectory's ids are its turns as sampled and the tool's output as tokenised once, and the
    trainer's log-probs of its later turns match the sampler's as closely as of its first."""
    tokenizer = load_tokenizer(str(tools_model_dir))
    model = load_causal_lm(str(tools_model_dir)).eval()
    sampled: list[list[torch.Tensor]] = []
    policy = make_transformers_policy(
        model, tokenizer, Sampling(max_new_tokens=40, stop_strings=TOOL_STOP_STRINGS), "tokens"
    )
    policy.register_forward_hook(
        lambda _m, _a, out: sampled.append([t.clone() for t in out.get(("tokens", "response"), as_list=True)])
    )
    problems = [Problem(question=q, answer=a) for q, a in product_problems(seed=3, count=8)]
    task = MathEnv(problems, prompts_per_step=8, samples_per_prompt=4)
    env = PythonToolEnv(task, tokenizer, sandbox, CPU_TOOLS.rollout.tool, 40)  # the recipe's prompts
    collector = MultiTurnCollector(env, policy=policy, postproc=ToTrainingBatch(tokenizer.pad_token_id))
    torch.manual_seed(0)
    batch = collector.postproc(collector.multi_turn_rollout())
    assert env.last_tool_stats["calls"] >= 2, "the model calls the tool now and then"

    turns = sorted(t.tolist() for call in sampled for t in call)
    found, diffs = [], {1: [], 2: []}
    for i in range(batch.shape[0]):
        prompt = batch.get(keys.PROMPT_TOKENS)[i][batch.get(keys.PROMPT_MASK)[i]]
        real = batch.get(keys.RESPONSE_MASK)[i]
        ids = batch.get(keys.ACTION)[i][real]
        own = batch.get(keys.ASSISTANT_MASK)[i][real].tolist()
        with torch.no_grad():
            logits = model(torch.cat([prompt, ids])[None]).logits[0, len(prompt) - 1 : -1]
        trainer = logits.float().log_softmax(-1).gather(-1, ids[:, None]).squeeze(-1)
        engine = batch.get(keys.GENERATION_LOG_PROB)[i][real]
        turn = 0
        for value, start, end in _runs(own):
            if value:
                turn += 1
                found.append(ids[start:end].tolist())
                diffs[min(turn, 2)].append((trainer[start:end] - engine[start:end]).abs())
            else:  # the tool's output, as the env tokenised it once
                text = tokenizer.decode(ids[start:end].tolist())
                assert ids[start:end].tolist() == _ids(tokenizer, text) and text.startswith("\n<output>\n")
    assert sorted(found) == turns, "the trained ids are the sampled ids, turn by turn"
    first, later = torch.cat(diffs[1]), torch.cat(diffs[2])
    assert later.numel() > 0
    assert later.max() < 1e-4 and later.mean() <= 3 * first.mean() + 1e-7, (first.mean(), later.mean())

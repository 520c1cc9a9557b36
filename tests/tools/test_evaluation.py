"""Evaluation: avg@k and pass@k through a real TorchRL policy, and clear errors on bad benchmarks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
import torch
from tensordict import NonTensorStack, TensorDictBase
from tensordict.nn import TensorDictModuleBase

from orz_rl.config import RewardConfig
from orz_rl.envs.registry import get_task
from orz_rl.envs.task import EnvArgs, Task
from orz_rl.models.loading import load_tokenizer
from orz_rl.problems.benchmarks import DATA_DIR, UnknownBenchmarkError, resolve_benchmark
from orz_rl.problems.formats import DatasetFormatError, load_problems
from orz_rl.problems.problem import Problem
from orz_rl.rewards.math_grader import MathGrader
from orz_rl.rewards.services import RewardServices
from orz_rl.tools.evaluation import evaluate_benchmark, markdown_table, published_between, read_benchmarks
from tests.problems.published_rows import MATH500 as MATH500_ROWS
from tests.problems.published_rows import write

from ..conftest import orz_cli, orz_cli_here

MATH500 = DATA_DIR / "math500.json"


class ScriptedPolicy(TensorDictModuleBase):
    """A TorchRL text policy that answers from a script: fixed token ids per (prompt, call count)."""

    in_keys = [("text", "prompt")]
    out_keys = [("text", "response"), ("tokens", "response")]

    def __init__(self, tokenizer, script: dict[str, list[str]]) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        # Token ids fixed up front; the policy returns them, decoded, in order per prompt.
        self.script = {p: [tokenizer(r)["input_ids"] for r in rs] for p, rs in script.items()}
        self.calls: dict[str, int] = {}

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        ids = []
        for prompt in td.get(("text", "prompt")).tolist():
            k = self.calls.get(prompt, 0)
            self.calls[prompt] = k + 1
            ids.append(self.script[prompt][k])
        td.set(("text", "response"), NonTensorStack(*[self.tokenizer.decode(i) for i in ids]))
        td.set(("tokens", "response"), torch.nested.nested_tensor([torch.tensor(i) for i in ids]))
        return td


def env_args(tokenizer, services):
    def make(prompts: int, samples: int) -> EnvArgs:
        return EnvArgs(prompts, samples, 0, tokenizer.bos_token, tokenizer.eos_token, services)

    return make


def box(answer: str) -> str:
    return f" reasoning </think> <answer> \\boxed{{{answer}}} </answer>"


def test_avg_pass_and_maj_at_k_equal_the_hand_computed_values(tiny_model_dir):
    from orz_rl.problems.prompts import render_prompt

    tok = load_tokenizer(str(tiny_model_dir))
    # Two groups, as LiveCodeBench's difficulties: items 0-4 "easy", 5-9 "hard".
    problems = [
        replace(p, groups=(("difficulty", "easy" if i < 5 else "hard"),))
        for i, p in enumerate(load_problems(MATH500)[:10])
    ]
    n = 4
    for i, p in enumerate(problems):
        assert "wrong" not in p.answer, f"item {i} would match a scripted wrong answer"
    R, W = "R", box("wrong answer 12345")
    # One row per item; "R" is the item's right answer. Item 5's right answer is cut (no stop:
    # 0, though its answer is right); item 6's wrong answers all differ.
    rows = [
        [R, R, R, R],  # 0   c=4  maj@1,2,4 right
        [R, R, R, R],  # 1
        [R, R, R, R],  # 2
        [R, W, R, W],  # 3   c=2  ties go to the answer drawn first: right
        [W, R, R, W],  # 4   c=2  ... wrong
        ["cut", W, W, W],  # 5   c=0
        [box("wrong answer 1"), box("wrong answer 2"), R, box("wrong answer 3")],  # 6  c=1
        [W, R, R, R],  # 7   c=3  maj@1 wrong, maj@2 a tie (wrong first), maj@4 right
        [W, W, W, W],  # 8
        [W, W, W, W],  # 9
    ]
    script = {}
    for p, row in zip(problems, rows, strict=True):
        right = box(p.answer)
        script[render_prompt(p.question, tok.bos_token)] = [
            right if r == R else right.removesuffix("</answer>") if r == "cut" else r for r in row
        ]
    policy = ScriptedPolicy(tok, script)
    with RewardServices(RewardConfig(workers=2)) as services:
        figures, records = evaluate_benchmark(
            policy,
            tok,
            get_task("math"),
            problems,
            env_args(tok, services),
            samples=n,
            max_prompt_tokens=10_000,
            questions_per_batch=4,
            pass_k=(1, 2, 4),
            maj_k=(1, 2, 4),
        )
    # avg@4 = 20 right of 40. pass@2 = 1 - C(n-c, 2) / C(4, 2): c=4 -> 1, c=3 -> 1, c=2 -> 5/6,
    # c=1 -> 1/2, so (3 + 1 + 2 * 5/6 + 1/2) / 10.
    assert figures["avg@4"] == pytest.approx(20 / 40)
    assert figures["pass@1"] == pytest.approx(20 / 40)
    assert figures["pass@2"] == pytest.approx((3 + 1 + 2 * 5 / 6 + 1 / 2) / 10)
    assert figures["pass@4"] == pytest.approx(7 / 10)
    assert figures["maj@1"] == pytest.approx(4 / 10)
    assert figures["maj@2"] == pytest.approx(4 / 10)
    assert figures["maj@4"] == pytest.approx(5 / 10)
    assert figures["cut_share"] == pytest.approx(1 / 40)
    assert len(records) == 40 and sum(r["correct"] for r in records) == 20
    assert records[0]["answer"] == problems[0].answer and records[0]["truth"] == problems[0].answer
    # Per group: easy has c = 4, 4, 4, 2, 2 (maj right but for item 4), hard c = 0, 1, 3, 0, 0
    # (maj@4 right for item 7 only; item 6's four answers tie and the first drawn is wrong).
    assert (figures["difficulty=easy/avg@4"], figures["difficulty=hard/avg@4"]) == pytest.approx(
        (16 / 20, 4 / 20)
    )
    assert figures["difficulty=easy/pass@2"] == pytest.approx((3 + 2 * 5 / 6) / 5)
    assert (figures["difficulty=easy/pass@4"], figures["difficulty=hard/pass@4"]) == pytest.approx(
        (1.0, 2 / 5)
    )
    assert (figures["difficulty=easy/maj@4"], figures["difficulty=hard/maj@4"]) == pytest.approx(
        (4 / 5, 1 / 5)
    )
    assert figures["difficulty=hard/questions"] == 5
    table = markdown_table({"math500": figures})
    assert "| benchmark | avg@4 | pass@1 | pass@2 | pass@4 | maj@1 | maj@2 | maj@4 |" in table
    assert "| math500 | 50.0 | 50.0 | 61.7 | 70.0 | 40.0 | 40.0 | 50.0 |" in table
    assert (
        "| math500 (difficulty=easy) | 80.0 | 80.0 | 93.3 | 100.0 | 80.0 | 80.0 | 80.0 | - | - | 5 |" in table
    )


def test_maj_at_k_pools_votes_the_grader_calls_equal_and_reads_option_letters(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    math = get_task("math")
    half = Problem("What is 1/2?", "\\frac{1}{2}")
    choice = Problem("Pick.\n(A) red\n(B) blue", "B", choices=(("A", "red"), ("B", "blue")))
    # Strings alone: "3" (twice) and "A" (twice) win. Pooled: 0.5 = 1/2 = \dfrac{1}{2} (three
    # votes), and (B) = B = blue (three votes), both right.
    script = {
        math.render(half, tok.bos_token): [box(a) for a in ("3", "3", "0.5", "1/2", "\\dfrac{1}{2}")],
        math.render(choice, tok.bos_token): [box(a) for a in ("A", "A", "(B)", "B", "blue")],
    }
    figures = {}
    with RewardServices(RewardConfig(workers=2)) as services:
        for pooled in (False, True):
            figures[pooled], _ = evaluate_benchmark(
                ScriptedPolicy(tok, script),
                tok,
                math,
                [half, choice],
                env_args(tok, services),
                samples=5,
                max_prompt_tokens=10_000,
                maj_k=(5,),
                same=services.math_grader.equivalent if pooled else None,
            )
    assert figures[True]["avg@5"] == figures[False]["avg@5"] == pytest.approx(6 / 10)
    assert figures[True]["maj@5"] == 1.0
    assert figures[False]["maj@5"] == 0.5  # letters are read either way; only the grader pools 1/2


def test_a_k_above_the_samples_is_refused_before_sampling(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    with pytest.raises(ValueError, match="pass@8 / maj@8 needs 1 <= k <= samples = 4"):
        evaluate_benchmark(
            ScriptedPolicy(tok, {}),
            tok,
            get_task("math"),
            [],
            None,
            samples=4,
            max_prompt_tokens=1,
            pass_k=(8,),
        )


def test_a_prompt_over_the_context_scores_zero_and_is_counted(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    problems = load_problems(MATH500)[:3]
    policy = ScriptedPolicy(tok, {})  # never called: no prompt fits in 5 tokens
    with RewardServices(RewardConfig(workers=1)) as services:
        figures, records = evaluate_benchmark(
            policy, tok, get_task("math"), problems, env_args(tok, services), samples=2, max_prompt_tokens=5
        )
    assert figures["too_long"] == 3 and figures["avg@2"] == 0
    assert {r["finish_reason"] for r in records} == {"too_long"}


def test_an_unknown_benchmark_name_lists_the_known_ones():
    with pytest.raises(UnknownBenchmarkError, match="unknown benchmark 'math5000'; known: math500, aime2024"):
        resolve_benchmark("math5000")
    assert resolve_benchmark("aime2024")[1].is_file()


def test_a_malformed_benchmark_file_names_the_file_and_the_item(tmp_path):
    bad = tmp_path / "bench.json"
    bad.write_text(
        json.dumps([{"prompt": [{"from": "user", "value": "Q"}], "final_answer": "1"}, {"prompt": []}])
    )
    name, path = resolve_benchmark(str(bad))
    assert name == "bench"
    with pytest.raises(DatasetFormatError, match=f"{bad}:1: malformed item"):
        load_problems(path)


def test_eval_command_writes_one_table_with_breakdowns_a_record_that_reruns_to_the_same_samples(
    tiny_model_dir, tmp_path
):
    h4 = write(tmp_path / "test.jsonl", MATH500_ROWS)  # HuggingFaceH4/MATH-500's layout
    first = tmp_path / "eval"
    out = orz_cli(
        "eval",
        "--model",
        str(tiny_model_dir),
        "--benchmarks",
        "math500",
        "humaneval",
        f"math500_h4={h4}",
        "--samples",
        "2",
        "--max-new-tokens",
        "48",
        "--limit",
        "8",
        "--seed",
        "3",
        "--out-dir",
        str(first),
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| math500 |" in out.stdout and "| humaneval |" in out.stdout and "| math500_h4 |" in out.stdout
    (humaneval_row,) = [line for line in out.stdout.splitlines() if line.startswith("| humaneval |")]
    assert humaneval_row.split(" | ")[3] == "-"  # no maj@k over programs
    # MATH-500's layout breaks down by level and subject, a row each with its question count.
    assert "| math500_h4 (level=1) |" in out.stdout and "| math500_h4 (subject=Prealgebra) |" in out.stdout
    summary = json.loads((first / "eval.json").read_text())
    assert set(summary["results"]) == {"math500", "humaneval", "math500_h4"}
    assert summary["tasks"] == {"math500": "math", "humaneval": "code", "math500_h4": "math"}
    assert summary["results"]["math500_h4"]["level=2/questions"] == 2
    # The record: sampling, windows, every file with its item count and hash, weights, version.
    assert summary["sampling"] == {
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 48,
        "samples": 2,
        "seed": 3,
        "backend": "transformers",
    }
    assert summary["windows"] == {"limit": 8, "since": "", "until": ""}
    h4_record = summary["benchmarks"]["math500_h4"]
    assert h4_record["path"] == str(h4.resolve()) and (h4_record["items"], h4_record["evaluated"]) == (3, 3)
    assert h4_record["sha256"] == hashlib.sha256(h4.read_bytes()).hexdigest()
    assert (summary["benchmarks"]["math500"]["items"], summary["benchmarks"]["math500"]["evaluated"]) == (
        500,
        8,
    )
    assert len(summary["model_weights_sha256"]) == 64 and summary["orz_rl_version"] == "0.1.0"
    rows = [json.loads(line) for line in (first / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (8 + 8 + 3)
    assert {"benchmark", "item", "sample", "prompt", "response", "answer", "correct"} <= set(rows[0])
    assert any("self-contained Python script" in r["prompt"] for r in rows if r["benchmark"] == "humaneval")

    # --rerun: the same evaluation from the record alone gives the same samples.
    again = tmp_path / "again"
    out = orz_cli("eval", "--rerun", str(first / "eval.json"), "--out-dir", str(again), "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (again / "samples.jsonl").read_text() == (first / "samples.jsonl").read_text()
    assert json.loads((again / "eval.json").read_text())["results"] == summary["results"]
    # ... and refuses where it could not: another field given, its own folder, a changed file.
    out = orz_cli("eval", "--rerun", str(first / "eval.json"), "--samples", "4", "--out-dir", str(again))
    assert out.returncode == 1 and "only --out-dir and --progress go with it, not --samples" in out.stderr
    out = orz_cli("eval", "--rerun", str(first / "eval.json"), "--out-dir", str(first))
    assert out.returncode == 1 and "would overwrite the run it repeats" in out.stderr
    h4.write_text(h4.read_text().replace("Find $x$", "Find $y$"))
    out = orz_cli("eval", "--rerun", str(first / "eval.json"), "--out-dir", str(tmp_path / "third"))
    assert out.returncode == 1 and f"benchmark 'math500_h4': '{h4.resolve()}' changed since" in out.stderr


def test_eval_command_refuses_two_benchmarks_of_one_name_before_loading_a_model(tmp_path):
    mine = write(tmp_path / "math500.jsonl", MATH500_ROWS)
    out = orz_cli_here("eval", "--model", str(tmp_path / "none"), "--benchmarks", "math500", str(mine))
    assert out.returncode == 1
    assert "two benchmarks named 'math500'" in out.stderr and str(mine) in out.stderr


def test_each_benchmark_gets_the_task_of_its_problems(tmp_path):
    both = tmp_path / "both.jsonl"
    math_item = {"prompt": [{"from": "user", "value": "1+1?"}], "final_answer": "2"}
    code_item = {"question": "Print 2.", "stdio": [{"input": "", "output": "2"}]}
    both.write_text(json.dumps(math_item) + "\n" + json.dumps(code_item) + "\n")
    loaded = read_benchmarks(None, ["math500", "humaneval", str(both)], limit=3)
    assert {name: bench.task.name for name, bench in loaded.items()} == {
        "math500": "math",
        "humaneval": "code",
        "both": "mixed",
    }
    assert [p.tests is not None for p in loaded["both"].problems] == [False, True]
    # A task named outright reads every file with its own loader.
    with pytest.raises(DatasetFormatError, match="malformed item"):
        read_benchmarks(get_task("math"), ["humaneval"])


def test_eval_command_rejects_a_k_above_the_samples_before_loading_a_model(tmp_path):
    out = orz_cli_here("eval", "--model", str(tmp_path / "none"), "--samples", "4", "--pass-k", "1", "8")
    assert out.returncode == 1
    assert "--pass-k / --maj-k: 8 is not between 1 and --samples = 4" in out.stderr


def test_eval_command_rejects_an_unknown_benchmark_before_loading_a_model(tmp_path):
    out = orz_cli_here("eval", "--model", str(tmp_path / "none"), "--benchmarks", "nope")
    assert out.returncode == 1
    assert "orz-rl: error: unknown benchmark 'nope'; known: math500, aime2024, gpqa_diamond" in out.stderr


def test_an_mmlu_style_jsonl_loads_with_lettered_options_and_grades_by_letter_or_right_text(tmp_path):
    mmlu = tmp_path / "mmlu.jsonl"
    mmlu.write_text(
        json.dumps({"question": "2 + 2 = ?", "options": ["3", "4", "5"], "answer": "B"})
        + "\n"
        + json.dumps({"question": "Capital of France?", "options": ["Paris", "Rome"], "answer": "a"})
        + "\n"
    )
    name, path = resolve_benchmark(str(mmlu))
    first, second = load_problems(path)
    assert name == "mmlu"
    assert first.question == "2 + 2 = ?\n(A) 3\n(B) 4\n(C) 5" and first.answer == "B"
    assert second.answer == "A" and second.choices == (("A", "Paris"), ("B", "Rome"))
    with MathGrader(workers=1) as grader:
        rewards = grader.score(
            [box("(B)"), box("4"), box("5"), box("A. Paris")],
            [True] * 4,
            ["B", "B", "B", "A"],
            [first.choices, first.choices, first.choices, second.choices],
        )
    assert rewards.tolist() == [1.0, 1.0, 0.0, 1.0]  # the right option's text counts; a wrong one's not


def test_an_mmlu_item_whose_answer_is_not_an_option_letter_names_the_line(tmp_path):
    bad = tmp_path / "mmlu.jsonl"
    bad.write_text(json.dumps({"question": "Q", "options": ["x", "y"], "answer": "C"}) + "\n")
    with pytest.raises(
        DatasetFormatError, match=f"{bad}:1: malformed item .*'C' is not one of the option letters AB"
    ):
        load_problems(bad)


class AnswersSeven(TensorDictModuleBase):
    """A TorchRL text policy that answers 7 to every prompt (and writes the full text, as TorchRL's
    LLM wrappers do)."""

    in_keys = [("text", "prompt")]
    out_keys = [("text", "response"), ("text", "full"), ("tokens", "response")]

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        ids = self.tokenizer(box("7"))["input_ids"]
        n = td.batch_size.numel()
        td.set(("text", "response"), NonTensorStack(*[box("7")] * n))
        td.set(("text", "full"), NonTensorStack(*[p + box("7") for p in td.get(("text", "prompt")).tolist()]))
        td.set(("tokens", "response"), torch.nested.nested_tensor([torch.tensor(ids)] * n))
        return td


def test_a_task_whose_env_writes_no_prompt_id_is_one_error_naming_the_task(tiny_model_dir):
    from torchrl.envs.llm.datasets.countdown import CountdownEnv

    tok = load_tokenizer(str(tiny_model_dir))

    def torchrl_countdown(problems, args: EnvArgs) -> CountdownEnv:
        size = len(problems) * args.samples_per_prompt
        return CountdownEnv(tokenizer=tok, input_mode="text", num_envs=size, batch_size_dl=size, seed=0)

    task = Task(name="torchrl-countdown", summary="TorchRL's own", make_env=torchrl_countdown)
    problems = load_problems(MATH500)[:2]
    with pytest.raises(ValueError, match="task 'torchrl-countdown': its env writes no 'prompt_id'"):
        evaluate_benchmark(
            AnswersSeven(tok), tok, task, problems, env_args(tok, None), samples=2, max_prompt_tokens=10_000
        )


def test_since_and_until_window_problems_by_publication_date_as_livecodebench_does():
    dated = [
        Problem("a", "", date=d) for d in ("2024-07-31T23:00:00", "2024-08-01T00:00:00", "2024-09-30", "")
    ]
    kept = published_between(dated, since="2024-08-01", until="2024-09-30")
    assert [p.date for p in kept] == ["2024-08-01T00:00:00", "2024-09-30", ""]  # undated: kept
    assert len(published_between(dated)) == 4
    with pytest.raises(ValueError, match="--since 'August' is not an ISO 8601 date"):
        published_between(dated, since="August")


def test_an_eval_that_fails_midway_leaves_the_earlier_run_as_it_was_and_no_partial_file(
    tiny_model_dir, tmp_path
):
    earlier = tmp_path / "eval"
    earlier.mkdir()
    (earlier / "samples.jsonl").write_text('{"item": 0}\n')
    (earlier / "eval.json").write_text('{"results": {}}')
    (tmp_path / "broken.py").write_text(
        "from orz_rl.envs import Task\n\n\n"
        "def broken(problems, args):\n    raise RuntimeError('the env broke')\n\n\n"
        "TASK = Task(name='broken', summary='an env that fails', make_env=broken)\n"
    )
    out = orz_cli(
        *("eval", "--model", str(tiny_model_dir), "--task", f"{tmp_path / 'broken.py'}:TASK"),
        *("--benchmarks", "math500", "--limit", "1", "--samples", "1", "--max-new-tokens", "8"),
        *("--out-dir", str(earlier), "--no-progress"),
    )
    assert out.returncode != 0 and "the env broke" in out.stderr
    assert (earlier / "samples.jsonl").read_text() == '{"item": 0}\n'
    assert (earlier / "eval.json").read_text() == '{"results": {}}'
    assert sorted(p.name for p in earlier.iterdir()) == ["eval.json", "samples.jsonl"]


def test_with_the_python_tool_each_sample_is_a_whole_trajectory_graded_by_the_tasks_rule(tiny_model_dir):
    from orz_rl.config import SandboxConfig, ToolConfig
    from tests.rollout.test_multi_turn import ANSWER, CALL
    from tests.rollout.test_multi_turn import ScriptedPolicy as TurnPolicy

    tok = load_tokenizer(str(tiny_model_dir))
    problems = [
        Problem(question="What is 6 times 7?", answer="42"),
        Problem(question="What is 6 * 8?", answer="48"),
    ]

    def respond(read: str) -> str:  # calls the tool, then boxes 42: right for the first question only
        return ANSWER if "\n<output>\n" in read else CALL

    with RewardServices(RewardConfig(workers=1), SandboxConfig(workers=1)) as services:
        figures, records = evaluate_benchmark(
            TurnPolicy(tok, respond),
            tok,
            get_task("math"),
            problems,
            env_args(tok, services),
            samples=2,
            max_prompt_tokens=512,
            tool=ToolConfig(),
            turn_tokens=64,
        )
    assert figures["avg@2"] == 0.5 and figures["pass@2"] == 0.5
    assert [r["correct"] for r in records] == [True, True, False, False]
    assert all("<code>" in r["response"] and "<output>\n42\n</output>" in r["response"] for r in records)


def test_eval_with_the_tool_records_its_budgets_and_a_rerun_reads_them_back(tiny_model_dir, tmp_path):
    from orz_rl.config import ToolConfig
    from orz_rl.tools.evaluation import EvalConfig, rerun_config, run

    tool = ToolConfig(max_turns=2, max_total_tokens=96)
    cfg = EvalConfig(
        model=str(tiny_model_dir),
        benchmarks=("math500",),
        samples=2,
        limit=2,
        max_new_tokens=32,
        out_dir=tmp_path / "eval",
        progress=False,
        tools="python",
        tool=tool,
    )
    run(cfg)
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert summary["config"]["tools"] == "python" and summary["config"]["tool"]["max_turns"] == 2
    again = rerun_config(EvalConfig(rerun=tmp_path / "eval" / "eval.json", out_dir=tmp_path / "again"))
    assert (again.tools, again.tool) == ("python", tool)

"""The code reward: extraction, output comparison, verdicts, and the hostile suite.

Every hostile case is a program a policy could write. Each test asserts the
reward (0, or the correct verdict), that the trainer's process is unharmed
(same open files; the judge still grades a correct program), that the machine
is unchanged (canary files intact, nothing written outside the sandbox), and
that no process the sandbox started survives.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from orz_rl.config import SandboxConfig
from orz_rl.problems.problem import CodeTests
from orz_rl.rewards.code_judge import CodeJudge, extract_program, outputs_match
from orz_rl.rewards.sandbox import Sandbox
from tests.conftest import REPO
from tests.sandbox_helpers import ISOLATIONS, sandbox_processes

ADD = CodeTests(
    asserts=("assert add(1, 2) == 3", "assert add(-5, 5) == 0", "assert add(10, 20) == 30"), entry_point="add"
)
SUM = CodeTests(stdio=(("3 4\n", "7\n"), ("10 -2\n", "8\n")))


def answer(program: str) -> str:
    return f"I add them. </think> <answer> ```python\n{program}\n``` </answer>"


# --- extraction and comparison ----------------------------------------------------


def test_the_program_is_the_last_fenced_block_of_the_last_answer():
    text = "<answer>```python\nold\n```</answer> then <answer> ```py\nx = 1\n``` ```\ny = 2\n``` </answer>"
    assert extract_program(text) == "y = 2\n"
    assert extract_program("```python\nprint(1)\n```") is None  # no answer block
    assert extract_program("<answer> print(1) </answer>") is None  # no fence


@pytest.mark.parametrize(
    ("got", "expected", "compare", "same"),
    [
        ("7\n", "7", "exact", True),
        ("7 \n", "7\n", "exact", False),
        ("1  2\n3\n", "1 2 3", "whitespace", True),
        ("0.3333333\n", "0.33333333", "float", True),
        ("0.34\n", "0.33", "float", False),
        ("1 2\n", "1 2 3", "float", False),
        ("yes\n", "yes", "float", True),
        # LiveCodeBench's grade_stdio: stripped lines, equal or equal as decimals.
        ("  7.0 \n\n", "7\n", "lcb", True),
        ("1  2\n3", "1 2\n3\n", "lcb", True),
        ("1 2 3", "1 2\n3", "lcb", False),
        ("50000000000000000", "50000000000000001", "lcb", False),
        ("Yes", "yes", "lcb", False),
    ],
)
def test_outputs_compare_exactly_by_default_and_loosely_when_asked(got, expected, compare, same):
    assert outputs_match(got, expected, compare) is same


# --- the sandbox fixtures and the checks after every hostile case -------------------


@pytest.fixture(scope="module", params=ISOLATIONS)
def sandbox(request):
    with Sandbox(SandboxConfig(isolation=request.param, timeout=2, workers=2, max_output_kib=256)) as sb:
        sb.start_servers()  # the open files each test counts are then the same before and after
        yield sb


@pytest.fixture
def canaries(tmp_path):
    """Files a hostile program aims at: in the project tree, in the trainer's home, in /tmp."""
    paths = [
        REPO / f".sandbox-canary-{os.getpid()}",
        Path.home() / f".orz-rl-canary-{os.getpid()}",
        tmp_path / "canary",
    ]
    for p in paths:
        p.write_text("intact")
    yield paths
    for p in paths:
        p.unlink(missing_ok=True)


@pytest.fixture
def judge_batch(sandbox, canaries):
    """Scores programs through :class:`CodeJudge`, then checks the trainer and the machine."""
    code_judge = CodeJudge(sandbox)
    fds_before = len(os.listdir("/proc/self/fd"))

    def score(program: str, tests: CodeTests) -> tuple[float, str]:
        reward = code_judge.score([answer(program)], [True], [tests])
        (verdict,) = [v for v, n in code_judge.last_stats.items() if n and v != "programs_run"]
        return reward.item(), verdict

    yield score
    assert code_judge.score([answer("def add(a, b):\n    return a + b")], [True], [ADD]).tolist() == [1.0]
    code_judge.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert all(p.read_text() == "intact" for p in canaries)
    assert not sandbox_processes()


# --- verdicts of ordinary programs --------------------------------------------------


def test_correct_and_wrong_programs_get_their_verdicts(judge_batch):
    assert judge_batch("def add(a, b):\n    return a + b", ADD) == (1.0, "passed")
    assert judge_batch("def add(a, b):\n    return a - b", ADD) == (0.0, "wrong_answer")
    assert judge_batch("def add(a, b):\n    return a +", ADD) == (0.0, "syntax_error")
    assert judge_batch("def add(a, b):\n    return a / 0", ADD) == (0.0, "runtime_error")
    assert judge_batch("a, b = map(int, input().split())\nprint(a + b)", SUM) == (1.0, "passed")
    assert judge_batch("print(7)", SUM) == (0.0, "wrong_answer")


def test_a_batch_scores_cut_and_codeless_responses_zero_and_checks_repeats_once(sandbox):
    code_judge = CodeJudge(sandbox)
    good = answer("def add(a, b):\n    return a + b")
    rewards = code_judge.score([good, good, good, "no code </answer>"], [True, True, False, True], [ADD] * 4)
    assert rewards.tolist() == [1.0, 1.0, 0.0, 0.0]
    stats = code_judge.last_stats
    assert (stats["passed"], stats["cut"], stats["no_code"], stats["programs_run"]) == (2, 1, 1, 1)
    code_judge.close()


# --- test code that needs the problem's own helpers and real values ---------------------

#: HumanEval/32's shape: the prompt defines ``poly``, which the solution and the test both call.
POLY_PROMPT = (
    "import math\n\ndef poly(xs: list, x: float):\n"
    "    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))\n\n"
    'def find_zero(xs: list):\n    """A zero of the polynomial xs."""\n'
)
POLY = CodeTests(
    prelude=POLY_PROMPT,
    setup=(
        "def check(candidate):\n    import random\n    rng = random.Random(42)\n"
        "    for _ in range(20):\n        coeffs = [rng.randint(-5, 5) or 1 for _ in range(4)]\n"
        "        assert math.fabs(poly(coeffs, candidate(coeffs))) < 1e-4\n"
    ),
    asserts=("check(find_zero)",),
    entry_point="find_zero",
)
POLY_SOLUTION = (
    "def find_zero(xs: list):\n    lo, hi = -1.0, 1.0\n    while poly(xs, lo) * poly(xs, hi) > 0:\n"
    "        lo, hi = 2 * lo, 2 * hi\n    while hi - lo > 1e-10:\n        mid = (lo + hi) / 2\n"
    "        if poly(xs, mid) * poly(xs, lo) > 0:\n            lo = mid\n"
    "        else:\n            hi = mid\n    return lo\n"
)
VALUES = CodeTests(
    asserts=(
        "assert candidate([1, 2, 2]) == {1, 2}",
        "assert candidate(()) == set()",
        "assert candidate([float('inf')]) == {float('inf')}",
        "import math\nassert all(math.isnan(x) for x in candidate([float('nan')]))",
        "assert candidate([(1, 2), (1, 2)]) == {(1, 2)}",
    ),
    entry_point="unique",
)


def test_the_tests_see_the_problem_s_helpers_and_its_solution_passes(judge_batch):
    assert judge_batch(POLY_SOLUTION, POLY) == (1.0, "passed")
    assert judge_batch("def find_zero(xs: list):\n    return None", POLY) == (0.0, "wrong_answer")
    # The helper the judge calls is the problem's, not one the program redefines.
    rigged = "def poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n    return 123.0"
    assert judge_batch(rigged, POLY) == (0.0, "wrong_answer")


def test_sets_tuples_inf_and_nan_cross_between_program_and_tests(judge_batch):
    assert judge_batch("def unique(xs):\n    return set(xs)", VALUES) == (1.0, "passed")
    assert judge_batch("def unique(xs):\n    return sorted(set(xs))", VALUES) == (0.0, "wrong_answer")


def test_a_test_may_expect_the_program_to_raise(judge_batch):
    tests = CodeTests(
        asserts=("try:\n    candidate(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False",),
        entry_point="root",
    )
    raises = "def root(x):\n    if x < 0:\n        raise ValueError(x)\n    return x ** 0.5"
    assert judge_batch(raises, tests) == (1.0, "passed")
    assert judge_batch("def root(x):\n    return 0.0", tests) == (0.0, "wrong_answer")
    assert judge_batch("def root(x):\n    raise KeyError(x)", tests) == (0.0, "runtime_error")


def test_test_code_runs_in_the_sandbox_not_in_the_trainer(judge_batch, tmp_path):
    marker = tmp_path / "written-by-test-code"
    tests = CodeTests(
        setup=f"open({str(marker)!r}, 'w').write('x')", asserts=("assert add(1, 2) == 3",), entry_point="add"
    )
    verdict = judge_batch("def add(a, b):\n    return a + b", tests)
    assert not marker.exists()  # the judge's / is read-only and its /tmp its own
    assert verdict == (0.0, "bad_test")  # the write failed: the setup raised
    ended = CodeTests(setup="import os\nos._exit(0)", asserts=("assert add(1, 2) == 3",), entry_point="add")
    assert judge_batch("def add(a, b):\n    return a + b", ended) == (0.0, "bad_test")
    broken = CodeTests(asserts=("assert helper(add(1, 2)) == 3",), entry_point="add")
    assert judge_batch("def add(a, b):\n    return a + b", broken) == (0.0, "bad_test")


def test_a_problem_s_own_time_limit_replaces_the_sandbox_s(judge_batch):
    slow = "import time\ntime.sleep(1.5)\n"
    limited = CodeTests(stdio=(("3 4\n", "7\n"),), time_limit=1.0)  # the sandbox allows 2 s
    program = slow + "a, b = map(int, input().split())\nprint(a + b)"
    assert judge_batch(program, limited) == (0.0, "timeout")
    assert judge_batch(program, replace(limited, time_limit=0.0)) == (1.0, "passed")
    asserts = replace(ADD, time_limit=1.0)
    assert judge_batch(slow + "def add(a, b):\n    return a + b", asserts) == (0.0, "timeout")
    calls = CodeTests(calls=(("1\n2", "3"),), entry_point="add", time_limit=1.0)
    assert judge_batch(slow + "def add(a, b):\n    return a + b", calls) == (0.0, "timeout")


# --- the hostile suite ---------------------------------------------------------------


def test_infinite_loop(judge_batch):
    assert judge_batch("def add(a, b):\n    while True:\n        pass", ADD) == (0.0, "timeout")
    assert judge_batch("while True:\n    pass", SUM) == (0.0, "timeout")


def test_fork_bomb(judge_batch):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    assert judge_batch(bomb, SUM) == (0.0, "timeout")


def test_memory_bomb(judge_batch):
    assert judge_batch("x = bytearray(1 << 36)", SUM) == (0.0, "memory")
    # bytes(n) is calloc: the address space fills at once, without the time to touch the pages.
    grow = "def add(a, b):\n    blocks = []\n    while True:\n        blocks.append(bytes(10**8))"
    assert judge_batch(grow, ADD) == (0.0, "memory")


def test_a_gigabyte_of_output(judge_batch):
    flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)"
    assert judge_batch(flood, SUM) == (0.0, "output_limit")
    assert judge_batch(flood.replace("stdout", "stderr"), SUM) == (0.0, "output_limit")
    assert judge_batch("def add(a, b):\n    return 'x' * (1 << 26)", ADD) == (0.0, "output_limit")


def test_writing_outside_the_working_directory(judge_batch, canaries, tmp_path):
    # Any user may write to /tmp, /var/tmp and /dev/shm on this machine; the sandbox has its own.
    shared = [f"{d}/orz-rl-pwned-{os.getpid()}" for d in ("/tmp", "/var/tmp", "/dev/shm")]
    targets = [str(c) for c in canaries] + [
        str(REPO / "pwned.txt"),
        str(Path.home() / "pwned.txt"),
        str(tmp_path / "pwned"),
        *shared,
    ]
    program = (
        f"import os\nfor path in {targets!r}:\n    try:\n        with open(path, 'w') as f:\n"
        "            f.write('pwned')\n    except OSError:\n        pass\n"
        "a, b = map(int, input().split())\nprint(a + b)"
    )
    assert judge_batch(program, SUM) == (1.0, "passed")  # it may solve the task; it may not write
    assert not any(Path(t).exists() for t in targets[len(canaries) :])


def test_deleting_files(judge_batch, canaries):
    program = (
        f"import os, shutil\nfor path in {[str(c) for c in canaries]!r}:\n    try:\n        os.remove(path)\n"
        "    except OSError:\n        pass\n"
        f"shutil.rmtree({str(REPO / 'tests')!r}, ignore_errors=True)\nprint(7)"
    )
    assert judge_batch(program, SUM) == (0.0, "wrong_answer")
    assert Path(__file__).exists()


def test_connecting_to_a_socket_on_loopback(judge_batch):
    # Only ever loopback: the listener is the test's own.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    listener = threading.Thread(target=accept)
    listener.start()
    program = (
        f"import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    s.sendall(b'hi')\n"
        "    print(7)\nexcept OSError:\n    print('blocked')"
    )
    assert judge_batch(program, CodeTests(stdio=(("", "7\n"),))) == (0.0, "wrong_answer")
    listener.join()
    server.close()
    assert accepted == []


def test_reading_an_environment_variable_of_the_trainer(judge_batch, monkeypatch):
    monkeypatch.setenv("ORZ_RL_FAKE_API_KEY", "sk-fake-1234")
    program = (
        "import os, glob\nfound = os.environ.get('ORZ_RL_FAKE_API_KEY', '')\n"
        "for path in glob.glob('/proc/*/environ'):\n    try:\n        data = open(path, 'rb').read()\n"
        "    except OSError:\n        continue\n    if b'sk-fake' in data:\n        found = 'sk-fake-1234'\n"
        "print(found)"
    )
    assert judge_batch(program, CodeTests(stdio=(("", "sk-fake-1234\n"),))) == (0.0, "wrong_answer")


def test_os_exit_before_the_tests_run(judge_batch):
    assert judge_batch("import os\nos._exit(0)\ndef add(a, b):\n    return a + b", ADD) == (
        0.0,
        "runtime_error",
    )
    assert judge_batch("import os\nos._exit(0)", SUM) == (0.0, "wrong_answer")


def test_sys_exit_inside_a_test(judge_batch):
    assert judge_batch("import sys\ndef add(a, b):\n    sys.exit(0)", ADD) == (0.0, "runtime_error")
    assert judge_batch("import os\ndef add(a, b):\n    os._exit(0)", ADD) == (0.0, "runtime_error")


def test_monkeypatching_the_harness(judge_batch):
    always_equal = (
        "class Yes:\n    def __eq__(self, other):\n        return True\n    def __repr__(self):\n"
        "        return 'Yes()'\ndef add(a, b):\n    return Yes()"
    )
    assert judge_batch(always_equal, ADD) == (0.0, "wrong_answer")
    patched = (
        "import builtins, sys\nbuiltins.AssertionError = type('Never', (Exception,), {})\n"
        "builtins.repr = lambda value: '3'\ndef add(a, b):\n    return 0"
    )
    assert judge_batch(patched, ADD) == (0.0, "wrong_answer")  # the replies are all 3: one test passes
    wiped = "import sys\nsys.modules['__main__'].__dict__.clear()\ndef add(a, b):\n    return a + b"
    assert judge_batch(wiped, ADD) == (0.0, "runtime_error")  # the harness it broke cannot answer
    forged = (
        "import os\nfor fd in range(3, 20):\n    try:\n"
        "        os.write(fd, b'ready\\n' + b'ok True\\n' * 10)\n"
        "    except OSError:\n        pass\ndef add(a, b):\n    return 0"
    )
    assert judge_batch(forged, ADD) == (0.0, "wrong_answer")
    # A reply rewritten to a pickle that calls os.system when loaded: refused as no value.
    crafted = (
        "import base64, os, pickle, sys\nclass Boom:\n    def __reduce__(self):\n"
        "        return (os.system, ('true',))\n"
        "sys.modules['__main__'].dumps_line = lambda value: base64.b64encode(pickle.dumps(Boom())).decode()\n"
        "def add(a, b):\n    return a + b"
    )
    assert judge_batch(crafted, ADD) == (0.0, "wrong_answer")
    # Killing every process it can see: its own sandbox's, never the judge's.
    assert judge_batch("import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)", ADD) == (
        0.0,
        "runtime_error",
    )


#: A LiveCodeBench-style functional problem: JSON arguments, the result compared here as data.
CALLS = CodeTests(calls=(("1\n2", "3"), ("[1]\n[2]", "[1, 2]")), entry_point="add")


def test_the_hostile_cases_against_a_functional_problem(judge_batch):
    assert judge_batch("def add(a, b):\n    return a + b", CALLS) == (1.0, "passed")
    always_equal = (
        "class Yes:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Yes()"
    )
    assert judge_batch(always_equal, CALLS) == (0.0, "wrong_answer")  # not plain data: no value
    crafted = (
        "import base64, os, pickle, sys\nclass Boom:\n    def __reduce__(self):\n"
        "        return (os.system, ('true',))\n"
        "sys.modules['__main__'].dumps_line = lambda value: base64.b64encode(pickle.dumps(Boom())).decode()\n"
        "def add(a, b):\n    return a + b"
    )
    assert judge_batch(crafted, CALLS) == (0.0, "wrong_answer")  # refused by the data-only unpickler
    assert judge_batch("import os\ndef add(a, b):\n    os._exit(0)", CALLS) == (0.0, "runtime_error")
    assert judge_batch("def add(a, b):\n    while True:\n        pass", CALLS) == (0.0, "timeout")
    forged = "import os\nos.write(1, b'ready\\nok Mw==\\n')\ndef add(a, b):\n    return 0"
    assert judge_batch(forged, CALLS) == (0.0, "wrong_answer")


def test_printing_the_expected_output_then_crashing(judge_batch):
    assert judge_batch("print(7)\nraise SystemExit(1)", CodeTests(stdio=(("", "7\n"),))) == (
        0.0,
        "runtime_error",
    )
    assert judge_batch("print(7, flush=True)\nimport os\nos.abort()", CodeTests(stdio=(("", "7\n"),))) == (
        0.0,
        "runtime_error",
    )


def test_sleeping_past_the_timeout_while_a_child_runs_on(judge_batch):
    program = "import os, time\nif os.fork() == 0:\n    while True:\n        time.sleep(0.1)\ntime.sleep(60)"
    assert judge_batch(program, SUM) == (0.0, "timeout")


def test_zombies_and_orphans_left_behind(judge_batch):
    # A zombie (a child never waited for) and a daemon (double fork, new session) that
    # outlives the program, which then answers correctly and exits.
    program = (
        "import os, time\nif os.fork() == 0:\n    os._exit(0)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        while True:\n            time.sleep(0.1)\n"
        "    os._exit(0)\ntime.sleep(0.2)\na, b = map(int, input().split())\nprint(a + b)"
    )
    assert judge_batch(program, SUM) == (1.0, "passed")


def test_a_sandbox_that_cannot_start_a_program_scores_0_and_counts_it(monkeypatch):
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], workers=1), announce=False) as sandbox:
        code_judge = CodeJudge(sandbox)
        good = answer("def add(a, b):\n    return a + b")
        monkeypatch.setattr(sandbox, "python", "/nonexistent/python3")  # the runner never starts
        assert code_judge.score([good], [True], [ADD]).tolist() == [0.0]
        assert code_judge.last_stats["sandbox_error"] == 1

        def no_more_processes(*args, **kwargs):
            raise OSError(11, "Resource temporarily unavailable")

        monkeypatch.setattr("orz_rl.rewards.sandbox.subprocess.Popen", no_more_processes)
        assert code_judge.score([good, good + " "], [True, True], [ADD, ADD]).tolist() == [0.0, 0.0]
        assert code_judge.last_stats["sandbox_error"] == 2
        monkeypatch.undo()
        assert code_judge.score([good], [True], [ADD]).tolist() == [1.0]  # and it recovers
        code_judge.close()

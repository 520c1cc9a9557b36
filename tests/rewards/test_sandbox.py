"""The sandbox itself: what runs, what it reports, and that it refuses to run unisolated."""

from __future__ import annotations

import collections
import math
import os
import pickle
import shutil
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from orz_rl.config import SandboxConfig
from orz_rl.rewards import sandbox_runner, sandbox_server
from orz_rl.rewards.sandbox import Sandbox, SandboxUnavailable
from orz_rl.rewards.sandbox_runner import dumps_line, loads_data
from tests.conftest import REPO
from tests.sandbox_helpers import ISOLATIONS, sandbox_processes


@pytest.fixture(scope="module", params=[(i, w) for i in ISOLATIONS for w in ("warm", "cold")], ids="-".join)
def sandbox(request):
    isolation, start = request.param
    with Sandbox(SandboxConfig(isolation=isolation, timeout=3, workers=2, warm=start == "warm")) as sb:
        assert sb.warm == (start == "warm"), sb.description
        yield sb
    assert not sandbox_processes()


@pytest.fixture(scope="module", params=ISOLATIONS)
def warm(request):
    """A warm sandbox of one worker; its two slots (a program and its judge) serve runs in turn."""
    with Sandbox(SandboxConfig(isolation=request.param, timeout=3, workers=1), announce=False) as sb:
        assert sb.warm, sb.description
        yield sb
    assert not sandbox_processes()


def test_a_program_reads_stdin_and_its_stdout_comes_back(sandbox):
    result = sandbox.run("print(sum(map(int, input().split())))", "3 4\n")
    assert (result.status, result.exit_code, result.stdout) == ("ok", 0, b"7\n")


@pytest.mark.parametrize(
    ("program", "status"),
    [
        ("x = (", "syntax_error"),
        ("raise ValueError('no')", "error"),
        ("import sys; sys.exit(3)", "error"),
        ("x = bytearray(1 << 34)", "memory"),
        ("while True: pass", "timeout"),
        ("import sys\nwhile True: sys.stdout.write('x' * 65536)", "output_limit"),
    ],
)
def test_each_way_a_program_fails_has_its_status(sandbox, program, status):
    assert sandbox.run(program).status == status


def test_the_program_sees_an_empty_environment_and_no_network(sandbox, monkeypatch):
    monkeypatch.setenv("ORZ_RL_FAKE_API_KEY", "sk-test-0000")
    result = sandbox.run("import os, socket; print(sorted(os.environ)); print(socket.if_nameindex())")
    names, interfaces = result.stdout.decode().splitlines()
    # The shell that sets the sandbox up adds PWD (and OLDPWD); nothing comes from the parent.
    assert set(eval(names)) <= {"HOME", "LANG", "PATH", "PWD", "OLDPWD"}
    assert interfaces == "[(1, 'lo')]"


def _value(reply: str):
    kind, _, value = reply.partition(" ")
    assert kind == "ok", reply
    return loads_data(value)


def test_a_session_calls_functions_of_the_loaded_program(sandbox):
    with sandbox.session("def add(a, b):\n    print('noise')\n    return a + b\n") as session:
        assert _value(session.call("add", (1, 2), {})) == 3
        assert session.call("add", ("a", 2), {}) == "raise TypeError"
        assert _value(session.call("add", (), {"a": [1], "b": [2]})) == [1, 2]


def test_values_cross_as_the_types_tests_use(sandbox):
    program = "def echo(x):\n    return x\nclass Solution:\n    def twice(self, x):\n        return 2 * x\n"
    values = [
        {1, 2},
        frozenset({3}),
        (1, (2.5, [None])),
        float("inf"),
        -float("inf"),
        1 + 2j,
        b"\x00",
        {"k": {()}},
    ]
    with sandbox.session(program) as session:
        for value in values:
            assert _value(session.call("echo", (value,), {})) == value
        assert math.isnan(_value(session.call("echo", (float("nan"),), {})))
        assert _value(session.call("Solution.twice", ([1],), {})) == [1, 1]  # LeetCode style


def test_a_value_that_names_code_is_refused_as_data():
    class Boom:
        def __reduce__(self):
            return (os.system, ("true",))

    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        loads_data(dumps_line(Boom()))
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        loads_data(dumps_line(collections.OrderedDict(a=1)))
    assert loads_data(dumps_line([{1}, (2,)])) == [{1}, (2,)]


def test_a_value_that_is_not_plain_data_is_no_answer(sandbox):
    program = "class Mine:\n    pass\ndef make():\n    return Mine()\ndef fn():\n    return lambda: 1\n"
    with sandbox.session(program) as session:
        assert session.call("make", (), {}) == "unpicklable"
        assert session.call("fn", (), {}) == "unpicklable"


def test_a_program_that_ends_before_loading_fails_the_session(sandbox):
    with sandbox.session("import os\nos._exit(0)\n") as session:
        assert session.call("add", (1, 2), {}) is None
        assert session.failure == "error"


def test_a_program_that_closes_its_output_then_ends_is_read_by_how_it_ended_not_killed(sandbox):
    # Its end comes a moment after its output's: killed at the output's end, a syntax error (or
    # here the memory error's exit) would read as a crash.
    program = (
        "import os, time\nfor fd in range(1, 64):\n    try:\n        os.close(fd)\n"
        "    except OSError:\n        pass\ntime.sleep(0.3)\nos._exit(91)\n"
    )
    with sandbox.session(program) as session:
        assert session.call("f", (), {}) is None
        assert session.failure == "memory"


def test_no_network_isolation_is_refused_unless_opted_in():
    with pytest.raises(SandboxUnavailable, match="allow_unisolated"):
        Sandbox(SandboxConfig(isolation="none"), announce=False)


def test_the_start_up_line_names_the_isolation(capsys):
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], workers=1)) as sb:
        assert sb.isolation == ISOLATIONS[0]
    assert f"orz-rl sandbox: {ISOLATIONS[0]}: no network" in capsys.readouterr().out


def test_unisolated_runs_only_when_opted_in_and_say_so(capsys):
    with Sandbox(SandboxConfig(isolation="none", allow_unisolated=True, workers=1)) as sb:
        assert sb.run("print(6 * 7)").stdout == b"42\n"
    assert "orz-rl sandbox: NONE" in capsys.readouterr().out
    assert not sandbox_processes()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_trainer_killed_mid_run_leaves_no_sandboxed_process(isolation):
    # The program would sleep for a minute; its trainer dies (SIGKILL, no clean-up) after 1 s.
    script = (
        "import threading, time\n"
        "from orz_rl.rewards.sandbox import Sandbox, SandboxConfig\n"
        f"sb = Sandbox(SandboxConfig(isolation={isolation!r}, timeout=60, workers=1), announce=False)\n"
        "threading.Thread(target=sb.run, args=('import time; time.sleep(60)',), daemon=True).start()\n"
        "time.sleep(1)\nprint('running', flush=True)\ntime.sleep(60)\n"
    )
    trainer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert trainer.stdout.readline() == "running\n"
    assert sandbox_processes(wait=0)  # the program is alive...
    trainer.kill()
    trainer.wait()
    assert not sandbox_processes()  # ...and gone with its trainer


# --- the warm sandbox: a run forked from a ready interpreter is as isolated as a fresh one ---------


def test_no_run_sees_the_files_an_earlier_run_left(warm):
    leave = (
        "import os\nfor d in ('/tmp/w', '/tmp', '/var/tmp', '/dev/shm'):\n"
        "    open(os.path.join(d, 'left-behind'), 'w').write('secret')\nprint('written')"
    )
    look = (
        "import os\nprint(sorted(os.path.join(d, n) for d in ('/tmp/w', '/tmp', '/var/tmp', '/dev/shm')"
        " for n in os.listdir(d)))"
    )
    slots = len(warm._all_slots)  # runs take the slots in turn: each slot leaves files, then looks
    assert [warm.run(leave).stdout for _ in range(slots)] == [b"written\n"] * slots
    assert [warm.run(look).stdout for _ in range(slots)] == [b"['/tmp/w']\n"] * slots  # w, empty


def test_nothing_a_run_started_outlives_it_and_it_cannot_reach_the_server(warm):
    daemon = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(60)\n    os._exit(0)\nprint(sorted(os.listdir('/proc/self/fd')))"
    )
    result = warm.run(daemon)
    assert (result.status, result.stdout) == ("ok", b"['0', '1', '2', '3']\n")  # 3: the listing's own
    assert not sandbox_processes()
    warm.start_servers()
    servers = [slot.server for slot in warm._all_slots]
    for hostile in ("os.kill(os.getppid(), 9)", "os.kill(-1, 9)", "os.kill(1, 9)", "os.killpg(0, 9)"):
        for _ in servers:  # each contained in its run, whatever it did there
            assert warm.run(f"import os\n{hostile}").status in ("ok", "error")
    assert all(server.alive for server in servers)
    assert [warm.run("print(7)").stdout for _ in servers] == [b"7\n"] * len(servers)
    assert [slot.server for slot in warm._all_slots] == servers


def test_each_run_draws_its_own_random_numbers(warm):
    draws = {warm.run("import random; print(random.random())").stdout for _ in range(3)}
    assert len(draws) == 3


def test_a_server_that_died_is_started_again_for_the_next_run(warm):
    warm.start_servers()
    for slot in warm._all_slots:
        os.killpg(slot.server.proc.pid, 9)
        slot.server.proc.wait()
    assert warm.run("print(6 * 7)").stdout == b"42\n"


def test_a_server_started_by_a_worker_thread_outlives_the_thread(warm):
    # A server outlives the run that starts it, and the launcher's parent-death signal follows
    # the thread that started it: a tool env's or a judge's pool shutting down killed its servers,
    # and a slot's next program then never ran (sandbox_error) in a test module's later tests.
    warm._close_servers()
    with ThreadPoolExecutor(2) as pool:
        assert [r.status for r in pool.map(warm.run, ["print(1)"] * 2)] == ["ok", "ok"]
    servers = [slot.server for slot in warm._all_slots if slot.server is not None]
    assert servers, "the runs started no server"
    for server in servers:
        with pytest.raises(subprocess.TimeoutExpired):
            server.proc.wait(timeout=1.0)  # killed, it went within 0.1 s of its thread
    assert [warm.run("print(7)").stdout for _ in warm._all_slots] == [b"7\n"] * len(warm._all_slots)
    assert [slot.server for slot in warm._all_slots if slot.server is not None] == servers


def test_the_runner_and_the_server_share_no_name():
    # The server runs as the runner's text followed by its own, in one namespace.
    def own(module: types.ModuleType) -> set[str]:
        return {
            n
            for n, v in vars(module).items()
            if not n.startswith("__") and not isinstance(v, types.ModuleType)
        }

    assert own(sandbox_runner) & own(sandbox_server) == set()


def test_a_user_other_than_root_gets_the_warm_sandbox_under_bubblewrap():
    # Once, every run of a user's sandbox waited for ever: its slots all read "no uid".
    script = (
        "from orz_rl.config import SandboxConfig\nfrom orz_rl.rewards.sandbox import Sandbox\n"
        "with Sandbox(SandboxConfig(workers=1, timeout=3), announce=False) as sb:\n"
        "    print(sb.isolation, sb.warm, sb.run('import os; print(os.getuid())').stdout.decode().strip())\n"
    )
    if os.geteuid() == 0:  # as nobody, with the system's interpreter (this one is under /root)
        python = shutil.which("python3", path="/usr/bin:/bin")
        assert python, "this test needs a system python3 in /usr/bin or /bin to run as nobody"
        command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", python, "-c", script]
    else:
        command = [sys.executable, "-c", script]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ["bwrap", "True", str(65534 if os.geteuid() == 0 else os.geteuid())], (
        out.stderr
    )

"""A local sandbox for programs written by the policy: no service, safe on a workstation.

A policy optimised for "the program passes its tests" will try everything a
program can do, so each program runs in a process of its own, with:

* no network: a new network namespace (only a loopback interface, down);
* its own PID namespace: when the program ends or is killed, the kernel kills
  everything it started (forks, daemons, orphans); nothing outlives a run;
* its own mount namespace: ``/`` read-only; fresh size-limited ``tmpfs`` on
  ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock``; the working directory
  is ``/tmp/w``;
* an unprivileged user: a uid of its own per worker slot when orz-rl runs as
  root (so the per-user process limit caps a fork bomb, and no two programs can
  signal each other), the invoking user otherwise (bubblewrap's user namespace);
* an empty environment: nothing of the trainer's (API keys...) is inherited;
* resource limits (``prlimit``): CPU seconds, address space, file size, open
  files, processes; a wall-clock deadline after which the whole sandbox is
  killed; stdout and stderr captured up to a cap, past which it is killed too.

Two ways to build those namespaces, chosen at start-up (``isolation="auto"``)
and announced in one line: ``unshare`` (util-linux; needs root, as in
containers and CI) or ``bwrap`` (bubblewrap; works for any user where
unprivileged user namespaces are allowed). Where neither works the sandbox
refuses to start, unless ``allow_unisolated`` opts into plain child processes
with the same limits and no network or file isolation.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import queue
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orz_rl.config import SandboxConfig
from orz_rl.rewards import sandbox_runner, sandbox_server
from orz_rl.rewards.sandbox_warm import WarmRun, WarmServer, WarmServerFailed

#: Statuses of a :class:`RunResult`.
STATUSES = ("ok", "error", "syntax_error", "timeout", "memory", "output_limit", "sandbox_error")

_SIGKILL, _SIGXCPU, _SIGXFSZ = 9, 24, 25
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/w", "LANG": "C.UTF-8"}
_STDERR_KEEP = 4096
_MAX_SOURCE_BYTES = 10**8 - 1  # the runner's header gives the length in 8 digits
_JUDGE_EXTRA_SECONDS = 5.0
# The directories any user may write to; each gets a private tmpfs (the rest of / is read-only).
_PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")

# Runs as root inside the new namespaces, then drops to the slot's uid. The shell
# stays PID 1 (no exec) so that the program is an ordinary process whose signals
# behave as usual (PID 1 ignores the ones it has no handler for).
_UNSHARE_SETUP = r"""
set -e
mount -o remount,bind,ro /
for d in /tmp /var/tmp /dev/shm /run/lock; do
  if [ -d "$d" ]; then mount -t tmpfs -o "size=${2}m,mode=1777" tmpfs "$d"; fi
done
mkdir /tmp/w
[ "$1" = - ] || chown "$1:$1" /tmp/w
cd /tmp/w
uid=$1
shift 2
if [ "$uid" = - ]; then "$@"; exit; fi  # the warm server: it drops to the uid per program
setpriv --reuid "$uid" --regid "$uid" --clear-groups --no-new-privs -- "$@"
"""

# It lists the standard library's folder: a warm server's imports are done before the program's
# user exists, so an interpreter whose files that user cannot read would pass an import test.
_PROBE = (
    "import json, os, socket, sys\n"
    "os.listdir(os.path.dirname(os.__file__))\n"
    "print(json.dumps({'uid': os.getuid(), 'interfaces': [n for _, n in socket.if_nameindex()],"
    " 'python': sys.version.split()[0]}))\n"
)


@functools.cache
def _runner_source() -> str:
    """The runner every sandboxed process starts with (read once, on first use)."""
    return Path(sandbox_runner.__file__).read_text(encoding="utf-8")


@functools.cache
def _server_source() -> str:
    """The warm server: the runner, then the server, whose ``serve`` returns in each program's
    process to run the runner's ``main``."""
    server = Path(sandbox_server.__file__).read_text(encoding="utf-8")
    return f"{_runner_source()}\n{server}\nserve()\nmain()\n"


@dataclass
class _Slot:
    """A worker slot: its uid (as root) and, once used warm, its server."""

    uid: int | None
    server: WarmServer | None = None


class SandboxUnavailable(RuntimeError):
    """No isolation that the configuration accepts works on this machine; the message says why."""


@dataclass
class RunResult:
    """What one sandboxed run did. ``status`` is one of :data:`STATUSES`."""

    status: str
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    seconds: float


class _Pipes:
    """Drives one sandboxed process's stdin, stdout and stderr against a deadline and a cap."""

    def __init__(self, proc: subprocess.Popen, deadline: float, cap: int) -> None:
        self.proc, self.deadline, self.cap = proc, deadline, cap
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stderr_total = 0
        self.timed_out = self.over_cap = False
        self._pending = b""
        self._sel = selectors.DefaultSelector()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
        self._sel.register(proc.stdout, selectors.EVENT_READ)
        self._sel.register(proc.stderr, selectors.EVENT_READ)
        self._open = 2

    @property
    def failed(self) -> bool:
        return self.timed_out or self.over_cap

    def send(self, data: bytes, *, close: bool = False) -> None:
        if self.proc.stdin.closed:
            return
        if data and not self._pending:
            self._sel.register(self.proc.stdin, selectors.EVENT_WRITE)
        self._pending += data
        self._pump(lambda: not self._pending)
        if close and not self.proc.stdin.closed:
            self._close_stdin()

    def read_line(self) -> bytes | None:
        """The next stdout line (without its newline); ``None`` at EOF, the deadline or the cap."""
        self._pump(lambda: b"\n" in self.stdout or self._open == 0)
        if b"\n" not in self.stdout:
            return None
        line, _, rest = bytes(self.stdout).partition(b"\n")
        self.stdout = bytearray(rest)
        return line

    def finish(self) -> None:
        """Read both streams to their end (or the deadline or the cap)."""
        self._pump(lambda: self._open == 0)

    def _close_stdin(self) -> None:
        try:
            self._sel.unregister(self.proc.stdin)
        except KeyError:
            pass
        try:
            self.proc.stdin.close()
        except OSError:  # the program closed its end (EPIPE on flush)
            pass

    def _pump(self, done) -> None:
        while not done() and not self.failed:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                return
            for key, _ in self._sel.select(left):
                stream = key.fileobj
                if stream is self.proc.stdin:
                    try:
                        n = os.write(stream.fileno(), self._pending[:65536])
                        self._pending = self._pending[n:]
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, OSError):  # it stopped reading: its loss
                        self._pending = b""
                    if not self._pending:
                        self._sel.unregister(stream)
                    continue
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    self._sel.unregister(stream)
                    self._open -= 1
                elif stream is self.proc.stdout:
                    self.stdout += chunk
                    self.over_cap |= len(self.stdout) > self.cap
                else:
                    self.stderr_total += len(chunk)
                    self.over_cap |= self.stderr_total > self.cap
                    # The head holds the ready mark and the first error; keep it and the tail.
                    self.stderr += chunk
                    if len(self.stderr) > 2 * _STDERR_KEEP:
                        del self.stderr[_STDERR_KEEP:-_STDERR_KEEP]

    def close(self) -> None:
        self._sel.close()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def _lock_uid(uid: int):
    """An exclusive lock on ``uid`` for this process's lifetime, or ``None`` if another holds it."""
    handle = open(Path(tempfile.gettempdir()) / f"orz-rl-sandbox-uid-{uid}.lock", "a")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Sandbox:
    """Runs untrusted Python programs, several at a time, each isolated and bounded.

    ``run`` runs a whole program on an input (stdin/stdout tests); ``session``
    loads one and calls its functions (assert-style tests, ``orz_rl.rewards.code_judge``).
    Both are thread-safe: up to ``workers`` runs proceed at once, one per slot.
    """

    def __init__(self, cfg: SandboxConfig = SandboxConfig(), *, announce: bool = True) -> None:
        self.cfg = cfg
        self.workers = cfg.workers or os.cpu_count() or 1
        self._tools = {name: shutil.which(name) for name in ("unshare", "bwrap", "setpriv", "prlimit")}
        missing = [name for name in ("prlimit", "setpriv") if self._tools[name] is None]
        if missing:
            raise SandboxUnavailable(
                f"the sandbox needs {' and '.join(missing)} (util-linux), not found on PATH"
            )
        self._root = os.geteuid() == 0
        self._locks = []
        self._slots: queue.Queue[_Slot] = queue.Queue()
        self._all_slots = [_Slot(uid) for uid in self._reserve_uids()]
        self._pairing = threading.Lock()
        for slot in self._all_slots:
            self._slots.put(slot)
        self.warm = cfg.warm
        self._warm_failure = ""
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="orz-rl-sandbox")  # see _launch
        try:
            self.isolation, self.python = self._choose()
        except SandboxUnavailable:
            self.close()
            raise
        self.description = self._describe()
        if announce:
            print(f"orz-rl sandbox: {self.description}", flush=True)

    # --- set-up -----------------------------------------------------------------

    def _reserve_uids(self) -> list[int | None]:
        # Two a worker: a judged session runs the program and its judge at once.
        count = 2 * self.workers
        if not self._root:
            return [None] * count
        uids, uid = [], self.cfg.uid_base
        while len(uids) < count:
            lock = _lock_uid(uid)
            if lock is not None:
                self._locks.append(lock)
                uids.append(uid)
            uid += 1
        return uids

    def _candidates(self) -> list[str]:
        if self.cfg.isolation != "auto":
            return [self.cfg.isolation]
        order = ["unshare", "bwrap"] if self._root else ["bwrap"]
        return order + (["none"] if self.cfg.allow_unisolated else [])

    def _pythons(self) -> list[str]:
        if self.cfg.python:
            return [self.cfg.python]
        found = [sys.executable, shutil.which("python3", path=_ENV["PATH"]) or ""]
        return list(dict.fromkeys(p for p in found if p))

    def _choose(self) -> tuple[str, str]:
        if self.cfg.isolation == "none" and not self.cfg.allow_unisolated:
            raise SandboxUnavailable(
                "sandbox.isolation = 'none' runs untrusted code with network access; "
                "set sandbox.allow_unisolated to accept that"
            )
        failures = []
        for isolation in self._candidates():
            if isolation in ("unshare", "bwrap") and self._tools[isolation] is None:
                failures.append(f"{isolation}: not installed")
                continue
            if isolation == "unshare" and not self._root:
                failures.append("unshare: needs root (bubblewrap works for other users)")
                continue
            for python in self._pythons():
                self.isolation, self.python = isolation, python
                result = self._probe_run()
                if result.status != "ok":
                    err = result.stderr.decode(errors="replace").strip().splitlines()
                    failures.append(f"{isolation} with {python}: {result.status} {err[-1:] or ''}")
                    continue
                probe = json.loads(result.stdout)
                if isolation != "none" and set(probe["interfaces"]) - {"lo"}:
                    failures.append(f"{isolation}: the network is still reachable ({probe['interfaces']})")
                    break
                self._probe = probe
                return isolation, python
        hint = "" if self.cfg.allow_unisolated else " (sandbox.allow_unisolated runs it without isolation)"
        raise SandboxUnavailable(
            f"no sandbox isolation works here, so untrusted code will not run{hint}: {'; '.join(failures)}"
        )

    def _probe_run(self) -> RunResult:
        """The probe, warm if configured; where a warm start fails, again cold, saying why."""
        self.warm = self.cfg.warm
        result = self.run(_PROBE)
        if self.warm and result.status != "ok":
            self._close_servers()
            self.warm = False
            cold = self.run(_PROBE)
            if cold.status == "ok":
                err = result.stderr.decode(errors="replace").strip().splitlines()
                self._warm_failure = f"{result.status} {err[-1] if err else ''}".strip()
                return cold
        return result

    def _describe(self) -> str:
        c = self.cfg
        if self.isolation == "none":
            what = "NONE: programs run as plain processes WITH network and file access (allow_unisolated)"
        else:
            user = f"uids {self.cfg.uid_base}+" if self._root else "the invoking user"
            what = f"{self.isolation}: no network, own PID and mount namespaces, read-only /, as {user}"
        start = (
            "warm: each program forked from a ready interpreter" if self.warm else "cold: a fresh interpreter"
        )
        if self._warm_failure:
            start += f" (the warm start failed: {self._warm_failure})"
        return (
            f"{what}; {start}; python {self._probe['python']} ({self.python}); {self.workers} workers, "
            f"{c.timeout:g} s, {c.memory_mb} MiB, {c.max_processes} processes, "
            f"output cap {c.max_output_kib} KiB"
        )

    # --- running ----------------------------------------------------------------

    def _limits(self, seconds: float) -> list[str]:
        c = self.cfg
        cpu = int(seconds) + 1
        return [
            self._tools["prlimit"],
            f"--cpu={cpu}:{cpu + 1}",
            f"--as={c.memory_mb << 20}",
            f"--fsize={c.max_file_mb << 20}",
            f"--nofile={c.max_open_files}",
            f"--nproc={c.max_processes}",
            "--core=0",
            "--",
            self.python,
            "-I",
            "-B",
            "-c",
            _runner_source(),
        ]

    def _command(self, uid: int | None, seconds: float, warm: bool = False) -> list[str]:
        """The command that runs a program (``warm``: a slot's server) in the chosen isolation."""
        inner = [self.python, "-I", "-B", "-c", _server_source(), "serve"] if warm else self._limits(seconds)
        # SIGKILL to the launcher when the trainer dies, however it dies: the launcher's death
        # then takes the whole sandbox with it (unshare --kill-child, bwrap --die-with-parent).
        orphan_guard = [self._tools["setpriv"], "--pdeathsig", "KILL", "--"]
        if self.isolation == "unshare":
            return [
                *orphan_guard,
                self._tools["unshare"],
                *("--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"),
                *("--propagation", "private", "--", "/bin/sh", "-c", _UNSHARE_SETUP, "sh"),
                "-" if warm else str(uid),
                str(self.cfg.tmpfs_mb),
                *inner,
            ]
        drop = orphan_guard[:-1]
        if uid is not None:
            drop += ["--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
        drop.append("--")
        if self.isolation == "bwrap":
            size = str(self.cfg.tmpfs_mb << 20)
            tmpfs = [a for d in _PRIVATE_DIRS for a in ("--size", size, "--tmpfs", d)]
            return [
                *drop,
                self._tools["bwrap"],
                *("--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/"),
                *("--proc", "/proc", "--dev", "/dev", *tmpfs, "--dir", "/tmp/w", "--chdir", "/tmp/w"),
                *("--clearenv", "--setenv", "PATH", _ENV["PATH"], "--setenv", "HOME", "/tmp/w"),
                *("--setenv", "LANG", _ENV["LANG"], "--"),
                *inner,
            ]
        return [*drop, *inner]

    @contextmanager
    def _slots_taken(self, count: int) -> Iterator[list[_Slot]]:
        """``count`` worker slots, taken together: one taker at a time holds part of a set, so
        takers of two never wait on each other for ever."""
        with self._pairing:
            slots = [self._slots.get() for _ in range(count)]
        try:
            yield slots
        finally:
            for slot in slots:
                self._slots.put(slot)

    @contextmanager
    def _process(
        self, mode: str, source: str, slot: _Slot | None = None, seconds: float | None = None
    ) -> Iterator[_Pipes]:
        """One sandboxed process running the runner in ``mode`` on ``source``, in ``slot``
        (one of its own if ``None``), for ``seconds`` (``cfg.timeout`` if ``None``) at most."""
        seconds = self.cfg.timeout if seconds is None else seconds
        if slot is None:
            with self._slots_taken(1) as (slot,):
                with self._process(mode, source, slot, seconds) as pipes:
                    yield pipes
            return
        workdir = None
        proc = pipes = None
        try:
            env = dict(_ENV)
            if self.isolation == "none":
                workdir = tempfile.mkdtemp(prefix="orz-rl-sandbox-")
                if slot.uid is not None:
                    os.chown(workdir, slot.uid, slot.uid)
                env["HOME"] = workdir
            deadline = time.monotonic() + seconds
            if self.warm:
                proc = self._start_warm(slot, seconds, workdir)
            else:
                proc = subprocess.Popen(
                    self._command(slot.uid, seconds),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    cwd=workdir or "/",
                    process_group=0,
                )
            pipes = _Pipes(proc, deadline, self.cfg.max_output_kib << 10)
            code = source.encode("utf-8", "surrogatepass")
            if len(code) > _MAX_SOURCE_BYTES:
                raise ValueError(f"a program of {len(code)} bytes is over the sandbox's {_MAX_SOURCE_BYTES}")
            pipes.send(f"{mode:<8}{len(code):08d}".encode() + code)
            yield pipes
        finally:
            if proc is not None:
                self._kill(proc)
                if pipes is not None:
                    pipes.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def _start_warm(self, slot: _Slot, seconds: float, workdir: str | None) -> WarmRun:
        """A program's process forked by the slot's server (started, or started again, here)."""
        c = self.cfg
        request = {
            "ns": {"unshare": "root", "bwrap": "user"}.get(self.isolation, "none"),
            "uid": slot.uid if self.isolation == "unshare" else None,
            "workdir": workdir or "/tmp/w",
            "tmpfs_mb": c.tmpfs_mb,
            "cpu": int(seconds) + 1,
            "as": c.memory_mb << 20,
            "fsize": c.max_file_mb << 20,
            "nofile": c.max_open_files,
            "nproc": c.max_processes,
        }
        for attempt in (1, 2):
            try:
                return self._server(slot).start(request)
            except WarmServerFailed as e:
                if slot.server is not None:
                    slot.server.close()
                    slot.server = None
                if attempt == 2:  # a run that never started: sandbox_error, as a cold one's
                    return WarmRun.unstarted(str(e))
        raise AssertionError("unreachable")

    def _server(self, slot: _Slot) -> WarmServer:
        """The slot's server, started (again, if it died) here."""
        if slot.server is not None and not slot.server.alive:
            slot.server.close()
            slot.server = None
        if slot.server is None:
            slot.server = WarmServer(self._command(slot.uid, 0.0, warm=True), dict(_ENV), self._launch)
        return slot.server

    def _launch(self, *args, **kwargs) -> subprocess.Popen:
        """``subprocess.Popen(*args, **kwargs)`` on the sandbox's own thread. A server outlives
        the call that starts it, and its launcher's parent-death signal (``setpriv --pdeathsig``)
        follows the *thread* that started it: started by a caller's worker thread, a server was
        killed when that pool shut down, and the slot's next program never ran."""
        return self._launcher.submit(subprocess.Popen, *args, **kwargs).result()

    def _kill(self, proc: subprocess.Popen | WarmRun) -> None:
        if isinstance(proc, WarmRun):  # its server kills it, and its namespace with it
            proc.kill()
            proc.wait()
            return
        # Killing the launcher kills the sandbox's PID 1 (unshare --kill-child, bwrap
        # --die-with-parent), and with it every process in the namespace.
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, _SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        if self.isolation == "none":
            try:  # no PID namespace: the group is all there is to kill
                os.killpg(proc.pid, _SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _status(self, pipes: _Pipes, exit_code: int | None) -> str:
        if not pipes.stderr.startswith(sandbox_runner.READY_MARK):
            return "timeout" if pipes.timed_out else "sandbox_error"
        if pipes.over_cap or exit_code == 128 + _SIGXFSZ:
            return "output_limit"
        if pipes.timed_out or exit_code == 128 + _SIGXCPU:
            return "timeout"
        if exit_code == sandbox_runner.EXIT_SYNTAX:
            return "syntax_error"
        if exit_code == sandbox_runner.EXIT_MEMORY:
            return "memory"
        return "ok" if exit_code == 0 else "error"

    def _ended(self, pipes: _Pipes) -> str:
        """The status of a process a session gave up on. One that closed its output is given
        until its deadline to end by itself (killed at once, one ending with a status of its own,
        such as a syntax error's, would read as killed); one still running then is killed."""
        if not pipes.failed:
            try:
                left = max(0.0, pipes.deadline - time.monotonic())
                return self._status(pipes, pipes.proc.wait(timeout=left))
            except subprocess.TimeoutExpired:
                pipes.timed_out = True
        self._kill(pipes.proc)
        return self._status(pipes, None if pipes.failed else pipes.proc.wait())

    def run(self, source: str, stdin: bytes | str = b"", seconds: float | None = None) -> RunResult:
        """Run ``source`` as a script on ``stdin`` for ``seconds`` at most (``cfg.timeout`` if
        ``None``); its stdout, exit code and status."""
        start = time.monotonic()
        data = stdin.encode() if isinstance(stdin, str) else stdin
        with self._process("stdio", source, seconds=seconds) as pipes:
            pipes.send(data, close=True)
            pipes.finish()
            if pipes.failed:
                self._kill(pipes.proc)
            exit_code = pipes.proc.wait()
            if pipes.timed_out or pipes.over_cap:
                exit_code = None
            status = self._status(pipes, exit_code)
            return RunResult(
                status=status,
                exit_code=exit_code,
                stdout=bytes(pipes.stdout),
                stderr=bytes(pipes.stderr).removeprefix(sandbox_runner.READY_MARK),
                seconds=time.monotonic() - start,
            )

    @contextmanager
    def session(self, source: str, seconds: float | None = None) -> Iterator[FunctionSession]:
        """Load ``source`` as a module in the sandbox and call its functions (``FunctionSession.call``),
        for ``seconds`` in all (``cfg.timeout`` if ``None``)."""
        with self._process("function", source, seconds=seconds) as pipes:
            yield FunctionSession(self, pipes)

    @contextmanager
    def judged_session(
        self, source: str, harness: str, seconds: float | None = None
    ) -> Iterator[tuple[FunctionSession, JudgeProcess]]:
        """``source`` loaded as in :meth:`session` (for ``seconds``), and beside it, in a sandbox of
        its own, the judge running the test code of ``harness`` (``sandbox_runner``'s ``judge`` mode).

        The judge gets a few seconds more than the program, so that a program that runs out of
        time is seen to, by its own deadline, before the judge's."""
        judge_seconds = (self.cfg.timeout if seconds is None else seconds) + _JUDGE_EXTRA_SECONDS
        with self._slots_taken(2) as (program_slot, judge_slot):
            with (
                self._process("function", source, program_slot, seconds) as program,
                self._process("judge", harness, judge_slot, judge_seconds) as judge,
            ):
                yield FunctionSession(self, program), JudgeProcess(self, judge)

    def start_servers(self) -> None:
        """Start every worker slot's warm server now rather than at its first program (a no-op
        when not warm): the first batch then pays no start-up, and the open files stay as they are."""
        if self.warm:
            with self._slots_taken(len(self._all_slots)) as slots:
                for slot in slots:
                    self._server(slot)

    def _close_servers(self) -> None:
        for slot in self._all_slots:
            if slot.server is not None:
                slot.server.close()
                slot.server = None

    def close(self) -> None:
        self._close_servers()
        self._launcher.shutdown()
        for lock in self._locks:
            lock.close()
        self._locks.clear()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FunctionSession:
    """One loaded program: :meth:`call` sends a call, returns the raw reply line.

    ``failure`` becomes a status (see :data:`STATUSES`) once the program has
    ended, hung past the deadline or written past the cap; every later call
    returns ``None``.
    """

    def __init__(self, sandbox: Sandbox, pipes: _Pipes) -> None:
        self._sandbox, self._pipes = sandbox, pipes
        self.failure: str | None = None
        self._ready = False
        self.calls = 0

    def _fail(self) -> None:
        status = self._sandbox._ended(self._pipes)
        # Ended on its own, with status 0: it exited before answering (os._exit(0), sys.exit in load).
        self.failure = "error" if status == "ok" else status

    def call(self, name: str, args: tuple, kwargs: dict) -> str | None:
        """The reply to ``name(*args, **kwargs)`` (``name`` may be ``Class.method``): ``"ok <value>"``
        (:func:`~orz_rl.rewards.sandbox_runner.loads_data` reads it), ``"raise <Type>"``,
        ``"unpicklable"`` or ``"memory"``; ``None`` once the program has failed (``failure`` says how)."""
        return self.call_encoded(sandbox_runner.dumps_line((name, args, kwargs)))

    def call_encoded(self, request: str) -> str | None:
        """:meth:`call` with the request already encoded (``sandbox_runner.dumps_line``), as the
        judge sends it."""
        if self.failure is not None:
            return None
        if not self._ready:
            self._ready = self._pipes.read_line() == b"ready"
            if not self._ready:
                self._fail()
                return None
        self.calls += 1
        self._pipes.send(request.encode("ascii") + b"\n")
        line = self._pipes.read_line()
        if line is None:
            self._fail()
            return None
        return line.decode("utf-8", "replace")


class JudgeProcess:
    """The judge of a :meth:`Sandbox.judged_session`: :meth:`next_line` reads its next request
    (``call <request>``) or its ``verdict <verdict>``, :meth:`reply` answers a request."""

    def __init__(self, sandbox: Sandbox, pipes: _Pipes) -> None:
        self._sandbox, self._pipes = sandbox, pipes

    def next_line(self) -> str | None:
        """Its next line; ``None`` if it ended, hung or wrote past the cap without one."""
        line = self._pipes.read_line()
        return None if line is None else line.decode("ascii", "replace")

    def ended(self) -> str:
        """How it ended, once :meth:`next_line` gave ``None``: a status of :data:`STATUSES`
        (``sandbox_error``: it never started)."""
        return self._sandbox._ended(self._pipes)

    def reply(self, line: str) -> None:
        """Answer its latest request with the program's reply line."""
        self._pipes.send(line.encode("ascii", "replace") + b"\n")

"""The host's side of the warm sandbox: one ready server per worker slot, and the runs it forks.

A server (:mod:`orz_rl.rewards.sandbox_server`) runs inside a slot's sandbox for as long as the
:class:`~orz_rl.rewards.sandbox.Sandbox` does; each program it runs is a :class:`WarmRun`, which
offers what the sandbox uses of a :class:`subprocess.Popen`: three pipes, ``poll``, ``wait`` and
``kill``. A server that dies or stops answering is killed with its sandbox and started again on
the slot's next run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from orz_rl.rewards import sandbox_server

#: Seconds a server has to start, and to report a run's end once told to kill it.
_ANSWER_SECONDS = 20.0
_KILLED = 128 + signal.SIGKILL


class WarmServerFailed(RuntimeError):
    """A server did not start or stopped answering; the message has what it wrote to stderr."""


class WarmServer:
    """One slot's server, started with ``command`` (the slot's sandbox around the server) by
    ``launch`` (``subprocess.Popen`` or a stand-in taking its arguments)."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        launch: Callable[..., subprocess.Popen] = subprocess.Popen,
    ) -> None:
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - read when it ends, then closed
        self.errors = ""
        """What it wrote to stderr, once closed."""
        try:
            self.proc = launch(
                command,
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                env=env,
                cwd="/",
                process_group=0,
            )
        finally:
            theirs.close()
        self._control.settimeout(_ANSWER_SECONDS)
        if self._receive() != b"ready":
            self.close()
            raise WarmServerFailed(f"the warm sandbox server did not start: {self.errors or 'no message'}")

    @property
    def alive(self) -> bool:
        return self._control.fileno() >= 0 and self.proc.poll() is None

    def _receive(self, timeout: float = _ANSWER_SECONDS) -> bytes | None:
        """The server's next message; ``b""`` if it is gone, ``None`` if it says nothing for
        ``timeout`` seconds."""
        try:
            self._control.settimeout(timeout)
            return self._control.recv(256)
        except TimeoutError:
            return None
        except OSError:  # the socket is gone
            return b""

    def start(self, request: dict[str, Any]) -> WarmRun:
        """Run a program as ``request`` says (see the server's ``_become_program``)."""
        ours, theirs = [], []
        for reader in (False, True, True):  # stdin is written by us, stdout and stderr read
            r, w = os.pipe2(os.O_CLOEXEC)
            ours.append(r if reader else w)
            theirs.append(w if reader else r)
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], theirs)
        except OSError as e:
            for fd in ours:
                os.close(fd)
            raise WarmServerFailed(f"the warm sandbox server is gone: {e}") from e
        finally:
            for fd in theirs:
                os.close(fd)
        return WarmRun(self, *ours)

    def kill_run(self) -> None:
        try:
            self._control.send(b"kill")
        except OSError:
            pass

    def run_ended(self, timeout: float | None = None) -> int:
        """The running program's exit code (``128 + n`` after signal ``n``), once it has ended;
        if the server cannot say, it is closed and the program counts as killed. ``timeout``:
        seconds the program may take to end, past which ``subprocess.TimeoutExpired`` (the
        program runs on; the server stays)."""
        message = self._receive(_ANSWER_SECONDS if timeout is None else timeout)
        if message is None and timeout is not None:
            raise subprocess.TimeoutExpired("the sandboxed program", timeout)
        if message is not None and message.startswith(b"exit "):
            return int(message[5:])
        self.close()
        return _KILLED

    def close(self) -> None:
        """End the server and its whole sandbox."""
        self._control.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        if not self._errors.closed:
            self._errors.seek(0)
            self.errors = self._errors.read(4096).decode(errors="replace").strip()
            self._errors.close()


class WarmRun:
    """A program a :class:`WarmServer` runs: what the sandbox uses of a ``Popen``."""

    def __init__(self, server: WarmServer | None, stdin: int, stdout: int, stderr: int) -> None:
        self._server = server
        self.stdin = open(stdin, "wb", buffering=0)  # noqa: SIM115 - closed by the sandbox's _Pipes
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.stderr = open(stderr, "rb", buffering=0)  # noqa: SIM115
        self.returncode: int | None = None

    @classmethod
    def unstarted(cls, message: str) -> WarmRun:
        """A run that never started: nothing on stdout, ``message`` on stderr, ended."""
        fds = []
        for _ in range(3):
            fds.extend(os.pipe2(os.O_CLOEXEC))
        os.write(fds[5], message.encode(errors="replace")[:4096] + b"\n")
        for fd in (fds[0], fds[3], fds[5]):
            os.close(fd)
        run = cls(None, fds[1], fds[2], fds[4])
        run.returncode = sandbox_server.EXIT_SETUP
        return run

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code, once it has ended (``subprocess.TimeoutExpired`` after ``timeout`` s)."""
        if self.returncode is None:
            self.returncode = self._server.run_ended(timeout)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            self._server.kill_run()

"""The warm sandbox's server: a ready interpreter that forks one isolated process per program.

Standard library only, like :mod:`orz_rl.rewards.sandbox_runner`: :mod:`orz_rl.rewards.sandbox`
runs the runner's text followed by this file's as ``python -I -B -c <source> serve`` inside a
worker slot's sandbox (its network, PID and mount namespaces, read-only ``/``), so each program
starts from an interpreter that has already started and imported the runner. (No ``from __future__``
import here: this text is appended to the runner's.)

Per program the server forks a process that takes namespaces of its own (mount, PID, IPC, UTS, and
a user namespace where the slot has no root), mounts fresh ``tmpfs`` on the writable directories and
forks the namespace's first process, which mounts its ``/proc`` and forks the program. The program
drops to the slot's uid (or its capabilities), takes its resource limits and runs the runner's
``main`` on the three pipes the host passed with the request. When the program ends, the first
process ends and the kernel kills whatever it left behind; when the host says ``kill``, the server
kills the forked process, whose death kills the first process (its parent-death signal), and with
it the namespace. So, as with a fresh interpreter: nothing survives a call, and no call sees
another's files or processes.

Control socket (``SOCK_SEQPACKET`` on fd 0): the server sends ``ready``; each request is a JSON
object with the three pipe ends attached (``SCM_RIGHTS``); the server answers ``exit <code>`` once
the program's process is gone (``128 + n`` for a signal ``n``); ``kill`` ends the running program;
the socket's end ends the server.
"""

import ctypes
import json
import os
import resource
import select
import selectors
import signal
import socket
import sys

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWUSER, _CLONE_NEWPID = 0x10000000, 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 2, 4, 1 << 14, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NAME, _PR_SET_NO_NEW_PRIVS = 1, 4, 15, 38
SERVER_NAME, CALL_NAME = b"orz-sbx-server", b"orz-sbx-run"  # process names (``comm``)
EXIT_SETUP = 93  # the program's process could not be set up: the host reports sandbox_error
_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
_LIMITS = {
    "as": resource.RLIMIT_AS,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data):
    encoded = [x and x.encode() for x in (source, target, fstype)]
    _check(_libc.mount(*encoded, flags, data and data.encode()), f"mount {target}")


def _prctl(option, value):
    argument = ctypes.c_char_p(value) if isinstance(value, bytes) else ctypes.c_ulong(value)
    _check(_libc.prctl(option, argument, 0, 0, 0), f"prctl {option}")


def _drop_capabilities():
    """Empty effective, permitted and inheritable sets (capset, version 3): the program keeps no
    capability of the user namespace it runs in."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(126 if os.uname().machine == "x86_64" else 91, header, data), "capset")


def _enter_namespaces(request):
    """In the forked process: namespaces of the call's own, and fresh writable directories."""
    kind = request["ns"]
    _prctl(_PR_SET_NAME, CALL_NAME)
    _prctl(_PR_SET_DUMPABLE, 1)  # its own /proc files, to write its maps (the server's are not)
    if kind == "none":  # no namespace to end with it: its process group is what the server kills
        os.setsid()
        return
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS
    _check(_libc.unshare(flags | (_CLONE_NEWUSER if kind == "user" else 0)), "unshare")
    if kind == "user":  # map this uid to itself: nothing else exists in the new namespace
        maps = (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1"))
        for name, text in maps:
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    options = f"size={request['tmpfs_mb']}m,mode=1777"
    for d in _WRITABLE:
        if os.path.isdir(d):
            _mount("tmpfs", d, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
    os.mkdir("/tmp/w")
    if request["uid"] is not None:
        os.chown("/tmp/w", request["uid"], request["uid"])


def _become_program(request, fds):
    """In the program's process: its stdio, user, limits and working directory, then return to
    run the runner's ``main`` exactly as a fresh interpreter would."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if request["ns"] != "none":  # unisolated, it stays in the group the server kills
        os.setsid()
    uid = request["uid"]
    if request["ns"] == "root":
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to a uid: the kernel clears every capability
    elif request["ns"] == "user":
        _drop_capabilities()
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _prctl(_PR_SET_DUMPABLE, 1)
    os.chdir(request["workdir"])
    cpu = request["cpu"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, key in _LIMITS.items():
        resource.setrlimit(key, (request[name], request[name]))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as at a fresh interpreter's start
    sys.argv[:] = ["-c"]
    if "random" in sys.modules:  # a fork copies the generator's state: each call seeds its own
        sys.modules["random"].seed()


def _first_process(request, fds, parent_alive):
    """The call namespace's PID 1: its ``/proc``, then the program; it ends when the program does."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([parent_alive], [], [], 0)[0]:  # its parent died before it asked to follow
        os._exit(EXIT_SETUP)
    os.close(parent_alive)
    if request["ns"] != "none":
        try:
            _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV, None)
        except OSError:
            pass  # a /proc that shows more than the call's processes; the pid namespace still holds
    program = os.fork()
    if program == 0:
        try:
            _become_program(request, fds)
        except BaseException as e:  # noqa: B036 - reported on the program's stderr, never run
            os.write(2, f"sandbox set-up failed: {e!r}\n".encode())
            os._exit(EXIT_SETUP)
        return True
    for fd in fds:
        os.close(fd)
    while True:  # reap orphans, as init does, until the program ends
        pid, status = os.waitpid(-1, 0)
        if pid == program:
            os._exit(_exit_code(status))


def _exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _run_forked(request, fds):
    """The forked process of one call: ``True`` in the program's process, which then runs ``main``."""
    try:
        _enter_namespaces(request)
        parent_alive, alive = os.pipe()  # readable (at its end) once this process is gone
        child = os.fork()
        if child == 0:
            os.close(alive)
            return _first_process(request, fds, parent_alive)
    except BaseException as e:  # noqa: B036 - whatever failed, the host hears of it and the server goes on
        os.write(fds[2], f"sandbox set-up failed: {e!r}\n".encode())
        os._exit(EXIT_SETUP)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(child, 0)
    os._exit(_exit_code(status))


def serve():
    """Answer requests until the host closes the socket; returns only in a program's process."""
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    _prctl(_PR_SET_DUMPABLE, 0)  # no process of the slot's uid may trace it or open its /proc files
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    _prctl(_PR_SET_NAME, SERVER_NAME)
    control.send(b"ready")
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        if not message:
            os._exit(0)
        if message == b"kill":  # late: the program it was meant for has ended
            continue
        pid = os.fork()
        if pid == 0:
            control.close()
            try:
                if _run_forked(json.loads(message), fds):
                    return
            except BaseException:  # noqa: B036 - never back into the server's loop
                os._exit(EXIT_SETUP)
            os._exit(EXIT_SETUP)
        for fd in fds:
            os.close(fd)
        group = json.loads(message)["ns"] == "none"
        control.send(f"exit {_wait_or_kill(control, pid, group)}".encode())


def _kill(pid, group):
    for kill in (os.kill, os.killpg) if group else (os.kill,):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_or_kill(control, pid, group):
    """The exit code of the call's process, killed first if the host says ``kill`` (or goes)."""
    watch = selectors.DefaultSelector()
    pidfd = os.pidfd_open(pid)
    watch.register(pidfd, selectors.EVENT_READ)
    watch.register(control, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in watch.select():
                if key.fileobj is control:
                    message = control.recv(1 << 16)
                    if message in (b"kill", b""):
                        _kill(pid, group)
                    if not message:
                        watch.unregister(control)
                else:
                    code = _exit_code(os.waitpid(pid, 0)[1])
                    if group:  # what the program left behind
                        _kill(pid, group)
                    return code
    finally:
        watch.close()
        os.close(pidfd)

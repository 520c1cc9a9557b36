"""The first code that runs inside the sandbox: it loads one untrusted program, or one judge.

Standard library only: :mod:`orz_rl.rewards.sandbox` passes this file's text to
``python -I -B -c`` inside the sandbox, so the sandbox user needs no access to the installed
package. orz-rl imports it only for :func:`loads_data`, which runs no code.

Protocol. The first 16 bytes of stdin are the mode (8 bytes, space-padded) and
the source's length in bytes (8 digits), then the source itself.

* ``stdio``: the program runs as ``__main__``; the rest of stdin is its input,
  its stdout and exit status are the result.
* ``function``: the program runs as module ``solution`` (a ``__main__`` block
  stays silent), its own prints go to stderr, and stdout carries replies
  only: ``ready`` once loaded, then one line per request line (the base64 of a pickled
  ``(name, args, kwargs)``; ``name`` may be ``Class.method``, called on a new instance, as
  LeetCode-style problems are): ``ok <base64 of the pickled result>``, ``raise <ExceptionType>``,
  ``unpicklable`` or ``memory``.
* ``judge``: the source is a JSON harness ``{"prelude", "setup", "asserts", "entry_point"}``,
  test code from the benchmark. It runs the prelude (the problem's own helpers, such as
  HumanEval's ``poly``), the setup and each assert, with ``entry_point`` and ``candidate``
  bound to a stand-in whose calls go out on stdout (``call <base64 pickle>``) and whose results
  come back on stdin as the program's reply lines. Its last line is ``verdict <verdict>``.

A program runs in a process of its own and can rewrite anything there, including its replies.
That is fine: its values reach the judge (another process, in another sandbox) only through
:func:`loads_data`, which builds plain data and never calls code the program named, and the judge
alone decides (``orz_rl.rewards.code_judge``).
"""

import base64
import builtins
import io
import json
import os
import pickle
import sys

EXIT_SYNTAX = 90  # the program does not compile
EXIT_MEMORY = 91  # MemoryError (the address-space limit)
EXIT_LOAD = 92  # function mode: running the program's top level raised
READY_MARK = b"\x00orz-sandbox-ready\n"  # on stderr: the sandbox started and this runner runs

#: The only names a pickled value may call: constructors of plain data that pickle has no opcode
#: for. Anything else (a class of the program's, ``os.system``) is refused.
_DATA_TYPES = {
    ("builtins", name): getattr(builtins, name)
    for name in ("set", "frozenset", "complex", "bytearray", "slice", "range")
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _DATA_TYPES:
            return _DATA_TYPES[(module, name)]
        raise pickle.UnpicklingError(f"a pickled value names {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("a pickled value uses a persistent id")


def loads_data(encoded):
    """The value a reply carries (base64 of a pickle), built from data opcodes and the constructors
    of :data:`_DATA_TYPES` only; ``pickle.UnpicklingError`` (or a decoding error) otherwise."""
    return _DataUnpickler(io.BytesIO(base64.b64decode(encoded, validate=True))).load()


def dumps_line(value):
    """``value`` as one line's worth of ASCII: the base64 of its pickle."""
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")


def _read_exact(n):
    chunks = []
    while n > 0:
        chunk = os.read(0, n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _reply_channel():
    """A private handle on stdout for protocol lines; fd 1 (``print``) then goes to stderr."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace")
    os.dup2(2, 1)
    return replies


def _call(namespace, request):
    name, args, kwargs = pickle.loads(base64.b64decode(request))
    owner, _, method = name.partition(".")
    target = getattr(namespace[owner](), method) if method else namespace[name]
    return target(*args, **kwargs)


def _serve(code):
    replies = _reply_channel()
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except BaseException:  # noqa: B036 - SystemExit too: the program ended before any test
        os._exit(EXIT_LOAD)
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin.buffer:
        try:
            result = _call(namespace, line.strip())
            try:
                reply = "ok " + dumps_line(result)
            except Exception:  # a lambda, an open file: no value a test can compare
                reply = "unpicklable"
        except MemoryError:
            reply = "memory"
        except BaseException as e:  # noqa: B036 - a test that calls sys.exit fails, it does not end the run
            reply = "raise " + type(e).__name__
        replies.write(reply + "\n")
        replies.flush()


class _Failed(BaseException):  # noqa: N818 - not an error of the test code: a verdict
    """The program gave no value (it failed, or sent one that is not plain data)."""

    def __init__(self, verdict):
        super().__init__(verdict)
        self.verdict = verdict


class _Candidate:
    """The program's function as the test code sees it: each call is a request on stdout."""

    def __init__(self, name, replies, state):
        self.name, self.replies, self.state = name, replies, state

    def __call__(self, *args, **kwargs):
        try:
            request = dumps_line((self.name, args, kwargs))
        except Exception:
            self.state["failed"] = "bad_test"  # arguments that are not plain data
            raise _Failed("bad_test") from None
        self.replies.write("call " + request + "\n")
        self.replies.flush()
        kind, _, rest = sys.stdin.buffer.readline().decode("ascii", "replace").strip().partition(" ")
        if kind == "ok":
            try:
                return loads_data(rest)
            except BaseException:  # noqa: B036 - not plain data, or too deep to build: not an answer
                verdict = "wrong_answer"
        elif kind == "raise":
            exc = getattr(builtins, rest, None)
            self.state["raised"] = True
            if isinstance(exc, type) and issubclass(exc, Exception):
                raise exc("raised by the program")  # a test may expect it
            verdict = "runtime_error"
        else:
            verdict = "wrong_answer" if kind == "unpicklable" else kind or "sandbox_error"
        self.state["failed"] = verdict
        raise _Failed(verdict)


def _judge(harness):
    replies = _reply_channel()

    def verdict(v):
        replies.write("verdict " + v + "\n")
        replies.flush()
        os._exit(0)

    try:
        h = json.loads(harness)
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(h["prelude"], "<prelude>", "exec"), namespace)
        exec(compile(h["setup"], "<test setup>", "exec"), namespace)
        asserts = [compile(a, "<test>", "exec") for a in h["asserts"]]
        state = {"failed": None, "raised": False}
        namespace[h["entry_point"]] = namespace["candidate"] = _Candidate(h["entry_point"], replies, state)
    except BaseException:  # noqa: B036 - the test code itself is broken
        verdict("bad_test")
    for code in asserts:
        try:
            exec(code, namespace)
        except _Failed:
            pass
        except BaseException as e:  # noqa: B036 - AssertionError, or a comparison the value does not support
            if not state["failed"] and not state["raised"] and isinstance(e, NameError):
                verdict("bad_test")  # the test names something neither it nor the prelude defines
            state["failed"] = state["failed"] or ("runtime_error" if state["raised"] else "wrong_answer")
        if state["failed"]:  # even if the test code caught it
            verdict(state["failed"])
        state["raised"] = False
    verdict("passed")


def main():
    os.write(2, READY_MARK)
    header = _read_exact(16)
    mode, size = header[:8].strip().decode(), int(header[8:16])
    source = _read_exact(size).decode("utf-8", "replace")
    if mode == "judge":
        _judge(source)
        return
    try:
        code = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        os._exit(EXIT_SYNTAX)
    if mode == "stdio":
        try:
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        except MemoryError:
            os._exit(EXIT_MEMORY)
        return
    _serve(code)


if __name__ == "__main__" and sys.argv[1:] != ["serve"]:  # "serve": the warm server's source follows
    main()

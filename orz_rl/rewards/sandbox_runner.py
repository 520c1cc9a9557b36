"""The first code that runs inside the sandbox: it loads one untrusted program and runs it.

Standard library only, and never imported by orz-rl: :mod:`orz_rl.rewards.sandbox`
passes this file's text to ``python -I -B -c`` inside the sandbox, so the
sandbox user needs no access to the installed package.

Protocol. The first 16 bytes of stdin are the mode (8 bytes, space-padded) and
the program's length in bytes (8 digits), then the program itself.

* ``stdio``: the program runs as ``__main__``; the rest of stdin is its input,
  its stdout and exit status are the result.
* ``function``: the program runs as module ``solution`` (a ``__main__`` block
  stays silent), its own prints go to stderr, and stdout carries replies
  only: ``ready`` once loaded, then one line per request line
  ``repr((name, args, kwargs))``: ``ok <repr(result)>``, ``raise <ExceptionType>``
  or ``memory``.

The program runs in this process and can rewrite anything here, including the
replies. That is fine: the judge outside compares the replies, as literals, to
expected values the program never sees (``orz_rl.rewards.code_judge``).
"""

import ast
import os
import sys

EXIT_SYNTAX = 90  # the program does not compile
EXIT_MEMORY = 91  # MemoryError (the address-space limit)
EXIT_LOAD = 92  # function mode: running the program's top level raised
READY_MARK = b"\x00orz-sandbox-ready\n"  # on stderr: the sandbox started and this runner runs


def _read_exact(n):
    chunks = []
    while n > 0:
        chunk = os.read(0, n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def main():
    os.write(2, READY_MARK)
    header = _read_exact(16)
    mode, size = header[:8].strip().decode(), int(header[8:16])
    source = _read_exact(size).decode("utf-8", "replace")
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
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace")
    os.dup2(2, 1)
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
            name, args, kwargs = ast.literal_eval(line.decode("utf-8"))
            reply = "ok " + repr(namespace[name](*args, **kwargs))
        except MemoryError:
            reply = "memory"
        except BaseException as e:  # noqa: B036 - a test that calls sys.exit fails, it does not end the run
            reply = "raise " + type(e).__name__
        replies.write(reply.replace("\n", " ") + "\n")
        replies.flush()


if __name__ == "__main__":
    main()

"""Objects named by the user: ``package.module:NAME`` or ``path/to/file.py:NAME``.

Recipes (``orz-rl train FILE.py:NAME``) and tasks (``--task FILE.py:NAME`` or ``--task
module:NAME``) of one's own are found this way, so they live outside orz-rl. A file is run as a
module of its own, as ``python FILE`` would run it; nothing is read from a data file.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any


class PluginError(ValueError):
    """A ``module:NAME`` or ``file.py:NAME`` that does not name an object; the message says why."""


def is_spec(text: str) -> bool:
    """Whether ``text`` looks like ``module:NAME`` or ``file.py:NAME`` (not a plain name)."""
    module, sep, name = text.rpartition(":")
    return bool(sep and module and name.isidentifier())


def load_object(spec: str, what: str) -> Any:
    """The object ``spec`` names; ``what`` says what it should be, for the error message."""
    if not is_spec(spec):
        raise PluginError(f"{what} {spec!r}: expected package.module:NAME or path/to/file.py:NAME")
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise PluginError(f"{what} {spec!r}: file {target!r} does not exist")
        module_name = f"_orz_rl_user_{path.stem}_{abs(hash(path.resolve()))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module  # dataclasses and pickling look their module up
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[module_name]
            raise _import_failed(spec, what, target, e) from None
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name is None or not (target == e.name or target.startswith(f"{e.name}.")):
                # a module the target itself imports is missing: the target's own error
                raise _import_failed(spec, what, target, e) from None
            raise PluginError(f"{what} {spec!r}: {e}") from None
        except Exception as e:
            raise _import_failed(spec, what, target, e) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise PluginError(f"{what} {spec!r}: {target} defines no {name!r}") from None


def _import_failed(spec: str, what: str, target: str, error: Exception) -> PluginError:
    """The user's code raised while being imported: its traceback (theirs to read) goes to stderr
    now, and the error returned says in one line which file failed, and how."""
    shown = traceback.TracebackException.from_exception(error)
    # From the user's code on: the frames of this loader and of importlib explain nothing.
    ours = (__file__, importlib.__file__)
    frames = [f for f in shown.stack if f.filename not in ours and not f.filename.startswith("<frozen ")]
    shown.stack = traceback.StackSummary.from_list(frames)
    print("".join(shown.format()), end="", file=sys.stderr)
    return PluginError(
        f"{what} {spec!r}: {target} raised {type(error).__name__}: {error} while being imported "
        "(its traceback is above)"
    )

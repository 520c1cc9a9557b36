"""Objects named by the user: ``package.module:NAME`` or ``path/to/file.py:NAME``.

Recipes (``orz-rl train FILE:NAME``) and tasks (``--task module:NAME``) of one's own are
found this way, so they live outside orz-rl. A file is run as a module of its own, as
``python FILE`` would run it; nothing is read from a data file.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
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
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise PluginError(f"{what} {spec!r}: {e}") from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise PluginError(f"{what} {spec!r}: {target} defines no {name!r}") from None

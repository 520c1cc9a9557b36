from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from ..conftest import REPO


def bench_module(name: str) -> ModuleType:
    """``bench/NAME.py`` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

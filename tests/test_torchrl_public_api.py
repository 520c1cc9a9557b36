"""orz-rl uses TorchRL and tensordict through their public API only.

A private (``_``-prefixed) name is free to change in any release: the package neither calls nor
reads one, nor overrides one in a subclass. The one kind of private override allowed is an abstract
method of a TorchRL base class (``EnvBase._step``, ``WeightUpdaterBase._sync_weights_with_worker``,
...), which TorchRL makes subclasses write, plus the extension points listed in :data:`DOCUMENTED`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Source folders of the package and their module prefixes (pyproject.toml's package-dir).
SOURCES = {"orz_rl": "orz_rl", "envs": "orz_rl.envs", "recipes": "orz_rl.recipes"}
LIBRARIES = ("torchrl", "tensordict")
#: Private names TorchRL documents as what a subclass defines.
DOCUMENTED = {
    "_AcceptedKeys": "LossModule's docstring: a loss declares its input keys in this dataclass",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(tree: ast.AST) -> set[str]:
    """Every name a module defines: functions, classes, assigned names and attributes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return out


@cache
def _library_private_names() -> frozenset[str]:
    names: set[str] = set()
    for lib in LIBRARIES:
        for path in Path(importlib.util.find_spec(lib).origin).parent.rglob("*.py"):
            names |= {n for n in _defined_names(ast.parse(path.read_text(encoding="utf-8"))) if _private(n)}
    return frozenset(names)


def _package_files() -> dict[str, Path]:
    """Module name -> file, for every module of the package."""
    out = {}
    for folder, prefix in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join((prefix, *parts))] = path
    return out


def _is_super_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_uses(files: dict[str, Path]) -> list[str]:
    """Imports of private modules or names of the libraries, and reads or calls of a private
    attribute that the libraries define and the package does not (any through ``super()``)."""
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in files.items()}
    own = set().union(*(_defined_names(t) for t in trees.values()))
    library = _library_private_names()
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            where = f"{name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
                private = [p for p in node.module.split(".") if _private(p)]
                private += [a.name for a in node.names if _private(a.name)]
                found += [f"{where}: imports {node.module}: {p}" for p in private]
            elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in library:
                if node.attr not in own or _is_super_call(node.value):
                    found.append(f"{where}: uses .{node.attr}")
    return found


def _body_names(module, cls: type) -> set[str]:
    """The names the source of ``cls`` defines in its body (a decorator or metaclass adds others)."""
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _abstract(base: type, attr: str) -> bool:
    return getattr(base.__dict__[attr], "__isabstractmethod__", False)


def private_overrides(modules: list[str]) -> list[str]:
    """Private names a package class defines over a TorchRL or tensordict base class's, other than
    the abstract methods of a base and :data:`DOCUMENTED`."""
    found = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module_name:
                continue
            bases = [b for b in cls.__mro__[1:] if b.__module__.split(".")[0] in LIBRARIES]
            if not bases:
                continue
            for attr in sorted(_body_names(module, cls)):
                if not _private(attr) or attr in DOCUMENTED:
                    continue
                defining = [b for b in bases if attr in b.__dict__]
                if defining and not any(_abstract(b, attr) for b in defining):
                    found.append(
                        f"{module_name}.{cls.__name__}.{attr} overrides {defining[0].__qualname__}'s"
                    )
    return found


def test_the_package_reads_and_calls_no_private_torchrl_or_tensordict_name():
    assert private_uses(_package_files()) == []


def test_the_package_overrides_no_private_torchrl_or_tensordict_method_but_abstract_ones():
    assert private_overrides(list(_package_files())) == []


def test_the_checks_find_each_kind_of_private_use(tmp_path):
    """The two checks above report what they are for: a private import, a private call on a
    library object, a call through ``super()``, and a non-abstract private override."""
    source = tmp_path / "offender.py"
    source.write_text(
        "from torchrl.objectives.utils import _reduce\n"
        "from torchrl.objectives import ClipPPOLoss\n"
        "from tensordict import TensorDict\n"
        "class Loss(ClipPPOLoss):\n"
        "    def _log_weight(self, td, shape):\n"
        "        return super()._log_weight(td, shape)\n"
        "x = TensorDict()._has_names()\n",
        encoding="utf-8",
    )
    uses = private_uses({"offender": source})
    assert sorted(u.split(": ", 1)[1] for u in uses) == [
        "imports torchrl.objectives.utils: _reduce",
        "uses ._has_names",
        "uses ._log_weight",
    ], uses
    spec = importlib.util.spec_from_file_location("offender", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["offender"] = module
    try:
        spec.loader.exec_module(module)
        assert private_overrides(["offender"]) == ["offender.Loss._log_weight overrides PPOLoss's"]
    finally:
        del sys.modules["offender"]

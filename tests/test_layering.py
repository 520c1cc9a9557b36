"""The package's layering (pyproject.toml, [tool.importlinter]) holds as installed, and bites.

The contracts run on the installed layout, where envs/ and recipes/ are orz_rl.envs and
orz_rl.recipes; each breach the contracts exist for is shown to fail them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """orz-rl installed (without its dependencies) into a folder of its own."""
    if not LINT.is_file():
        pytest.fail(f"{LINT} is missing: install the test extra (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", root, REPO], check=True, capture_output=True)
    return root


def lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    args = [LINT, "--no-cache", "--no-logo", REPO / "pyproject.toml"]
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)


def breach(installed: Path, tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the installed package with ``line`` appended to ``module``."""
    root = tmp_path / "copy"
    shutil.copytree(installed, root)
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{line}\n")
    return root


def test_every_contract_holds_on_the_installed_package(installed):
    out = lint(installed)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in out.stdout


def test_an_import_of_a_higher_layer_breaks_the_layers(installed, tmp_path):
    out = lint(breach(installed, tmp_path, "orz_rl.ppo.update", "import orz_rl.trainer"))
    assert out.returncode == 1
    assert "Layers follow the pipeline: each imports only the layers below it BROKEN" in out.stdout
    assert "orz_rl.ppo.update -> orz_rl.trainer" in out.stdout


def test_a_concrete_env_named_in_the_core_is_refused(installed, tmp_path):
    out = lint(breach(installed, tmp_path, "orz_rl.runtime.preflight", "import orz_rl.envs.math"))
    assert out.returncode == 1
    assert "The core names no concrete env: tasks come from the registry BROKEN" in out.stdout


def test_an_import_cycle_is_refused(installed, tmp_path):
    # ray_engines -> engines already; engines -> ray_engines closes a cycle.
    out = lint(breach(installed, tmp_path, "orz_rl.rollout.engines", "import orz_rl.rollout.ray_engines"))
    assert out.returncode == 1
    assert "No import cycles, at any depth BROKEN" in out.stdout


def test_the_trainer_keeps_to_the_loop_and_its_phases():
    lines = len((REPO / "orz_rl" / "trainer" / "loop.py").read_text().splitlines())
    assert lines <= 350, f"orz_rl/trainer/loop.py has {lines} lines: set-up and mechanics go in the layers"


def test_no_function_of_the_package_is_over_60_lines():
    """A function that long does several things: each belongs in a helper named for it."""
    long = []
    for folder in ("orz_rl", "envs", "recipes"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 60:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []

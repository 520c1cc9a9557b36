"""The Pythons orz-rl admits: ``requires-python``, ruff's target and the interpreters at hand agree
with :data:`SUPPORTED`, the one list that says which and why."""

from __future__ import annotations

import sys
import tomllib

from packaging.specifiers import SpecifierSet

from .conftest import REPO

#: CPython minor versions orz-rl runs on, oldest first:
#:
#: * 3.11: the oldest, ruff's ``target-version`` (no newer syntax in the code); the Makefile's
#:   ``python3.11`` and the suite's own interpreter here;
#: * 3.12: the lent GPU machine's (3.12.3); the GPU check and the core tests were rehearsed under
#:   3.12.1 with torch 2.11 and transformers 5.17 (``docs/gpu.md``);
#: * 3.13: every pin (``constraints-cpu.txt``, and vllm 0.32.0) has cp313 wheels (pip's dry run,
#:   2026-12-04); not yet run.
#:
#: Not 3.14: ray 2.52.0 (the ``ray`` extra) has no cp314 wheel.
SUPPORTED = ("3.11", "3.12", "3.13")

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: The folders of Python source the repository holds.
SOURCES = ("orz_rl", "envs", "recipes", "bench", "tests", "examples")


def test_requires_python_admits_exactly_the_supported_versions():
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"])
    candidates = [f"3.{minor}" for minor in range(8, 16)]
    assert [v for v in candidates if spec.contains(f"{v}.0")] == list(SUPPORTED)
    # Any version classifier names the same list.
    named = [
        c.rsplit("::", 1)[-1].strip()
        for c in PYPROJECT["project"].get("classifiers", [])
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert named in ([], list(SUPPORTED))


def test_ruff_targets_the_oldest_supported_python():
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + SUPPORTED[0].replace(".", "")


def test_the_suite_runs_on_a_supported_python():
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in SUPPORTED

"""The README's collector example runs as it is written: a plain TorchRL script, outside the trainer."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .conftest import REPO

MARKER = "<!-- example: vllm-collector (tests/test_readme.py runs it) -->"


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    after = text[text.index(MARKER) + len(MARKER) :]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def test_readme_collector_example_runs_with_vllm_outside_the_trainer(tiny_model_dir, tmp_path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "tiny-qwen2").symlink_to(tiny_model_dir)
    script = tmp_path / "collect.py"
    script.write_text(readme_example())
    assert "orz_rl.trainer" not in script.read_text()
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # three rollouts of 2 prompts x 4 samples, each tagged with the weights that sampled it
    assert "24 responses; policy versions [0, 1, 2]" in out.stdout
    rows = [line for line in out.stdout.splitlines() if re.match(r"[01] (stop|length) ", line)]
    assert len(rows) == 4

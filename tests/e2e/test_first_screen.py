"""What a newcomer sees: `orz-rl train cpu-default` on a fresh machine (the tiny model not built
yet) prints what starts, its progress bars and where the metrics are, and no other line."""

from __future__ import annotations

import re

from ..conftest import orz_cli

#: Every line a fresh CPU-default run may print, besides progress bars.
EXPECTED = (
    re.compile(r"orz-rl: building the embedded tiny model at \S+ \(about 30 s\)"),
    re.compile(
        r"orz-rl: task math \| model \S+ \| transformers generate on the actor \(auto: [^)]+\) \| run \S+"
    ),
    re.compile(r"metrics: \S+metrics\.jsonl"),
)
#: tqdm's lines: the tiny model's pre-training and the run's steps.
BAR = re.compile(r"(pre-training|orz-rl): +\d+%\|")
#: The noise the first screen used to show, by a word of each.
KNOWN_NOISE = (
    *("reduce_op", "NUMA", "LD_PRELOAD", "set_num_threads"),
    *("InitTracker", "WeightUpdaterBase", "Triton", "LOAD REPORT"),
)


def test_a_fresh_cpu_default_run_prints_what_starts_its_progress_and_nothing_else(tmp_path):
    out = orz_cli(
        *("train", "cpu-default", "--model.path", str(tmp_path / "tiny-qwen2")),
        *("--data.train-file", str(tmp_path / "toy.json"), "--run-dir", str(tmp_path / "run")),
        *("--max-steps", "2"),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    known = [line for line in lines if BAR.match(line) or any(e.fullmatch(line) for e in EXPECTED)]
    unexpected = [line for line in lines if line not in known]
    assert not unexpected, "unexpected output:\n" + "\n".join(unexpected)
    assert [e for e in EXPECTED if not any(e.fullmatch(line) for line in lines)] == []
    assert not [word for word in KNOWN_NOISE if word in text]

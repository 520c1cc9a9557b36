"""The trainer's memory figures (orz_rl.runtime.metrics.memory_metrics) mean what they say."""

from __future__ import annotations

import pytest
import torch

from orz_rl.runtime.metrics import memory_metrics, resident_bytes

GIB = 2**30


def test_resident_memory_grows_by_a_tensor_written_and_falls_back_when_it_is_freed():
    before = memory_metrics()
    block = torch.ones(GIB // 2 // 4)  # 0.5 GiB of float32, every page written
    held = memory_metrics()
    assert held["system/rss_gib"] - before["system/rss_gib"] == pytest.approx(0.5, abs=0.05)
    assert held["system/peak_rss_gib"] >= held["system/rss_gib"]
    del block
    after = memory_metrics()
    assert after["system/rss_gib"] < held["system/rss_gib"] - 0.4  # torch returns large blocks
    # The peak stays (the kernel's counters lag by some pages: 1 MiB of slack, against 0.5 GiB).
    assert after["system/peak_rss_gib"] >= held["system/rss_gib"] - 2**-10


def test_resident_bytes_match_the_kernels_status_line():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    vm_rss = int(status["VmRSS"].split()[0]) * 1024
    assert abs(resident_bytes() - vm_rss) < 16 * 2**20  # two reads a moment apart

"""Checkpoints a run can resume from exactly, written so that a crash never leaves a half one in use.

A checkpoint is a directory ``RUN_DIR/checkpoints/<tag>`` holding

* ``actor/``, ``critic/`` and ``reference/``: the models in Hugging Face format (the actor with
  its tokenizer; no ``critic/`` for a critic-free estimator, a ``reference/`` only with a KL term);
* ``trainer_state.pt``: the global step, both optimisers and LR schedulers, the RNG states
  (torch, numpy, Python), the prompt sampler's position, the policy version, and the metrics
  and prompt ids of every step so far;
* ``MANIFEST.json``: every file's size and SHA-256, written last.

It is written into ``<tag>.tmp`` and renamed into place: a crash mid-write leaves a
``.tmp`` directory that is never read, and a write that fails (a full disk, a read-only run dir)
removes it and is one :class:`CheckpointWriteError` naming what is still intact. A checkpoint
whose manifest is missing or whose files do not match it (a truncated file, a lost one) is
skipped with a message naming what is wrong, and the previous complete one is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from orz_rl.models.saving import replace_dir

MANIFEST = "MANIFEST.json"
STATE = "trainer_state.pt"


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (a full disk, a read-only run dir); nothing of it is
    kept, and the checkpoints before it are as they were."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seed_all(seed: int) -> None:
    """Seed every RNG the run draws from."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG the run draws from: torch's (which in-process vLLM samples with), numpy's, Python's."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path,
    tokenizer,
    state: dict[str, Any],
    models: dict[str, Any],
    states: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint atomically at ``directory`` (replacing one there) and return it.

    ``models`` are saved by name in Hugging Face format: ``actor`` (with ``tokenizer``), and where
    the run has them ``critic`` and ``reference`` (a ``None`` is skipped). ``states`` holds the
    whole state dict of a model whose own parameters are shards (FSDP2,
    :meth:`orz_rl.runtime.distributed.Distributed.full_state_dict`).
    """
    states = states or {}
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(tmp, tokenizer, state, models, states)
    except (OSError, RuntimeError, SafetensorError) as e:  # torch's and safetensors' errors of a failed write
        message = _write_failure(directory, e)  # before the space the write took is freed
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointWriteError(message) from None
    return replace_dir(tmp, directory)


def link_checkpoint(source: Path, directory: Path) -> Path:
    """``source`` again at ``directory`` (atomically, replacing one there), its files hard links to
    ``source``'s where the filesystem has them: the same state is not written twice. Safe because
    no checkpoint file is ever written in place (:func:`save_checkpoint` writes a new folder)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            shutil.copytree(source, tmp, copy_function=os.link)
        except OSError:  # no hard links here (another filesystem, or none): a copy
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
    except OSError as e:
        message = _write_failure(directory, e)
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointWriteError(message) from None
    return replace_dir(tmp, directory)


def _write(tmp: Path, tokenizer, state: dict[str, Any], models: dict[str, Any], states: dict) -> None:
    """Every file of a checkpoint into ``tmp``, its manifest last, all synced to disk."""
    for name, model in models.items():
        if model is None:
            continue
        # safetensors: transformers' default, and the critic's (backbone + value head)
        model.save_pretrained(tmp / name, state_dict=states.get(name))
    tokenizer.save_pretrained(tmp / "actor")
    torch.save(state, tmp / STATE)
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _digest(p)} for p in files}
    (tmp / MANIFEST).write_text(json.dumps({"step": state["step"], "files": manifest}, indent=1))
    for p in [*files, tmp / MANIFEST]:
        with p.open("rb") as f:
            os.fsync(f.fileno())


def _write_failure(directory: Path, error: Exception) -> str:
    """One line: which checkpoint failed and why, what is intact, how to go on."""
    root = directory.parent
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = None
    if isinstance(error, OSError) and error.strerror:
        why = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        why = (str(error).strip() or type(error).__name__).splitlines()[0]
        if free is not None and free < 2**20:  # torch.save's message for it is "unexpected pos N vs M"
            why = f"the disk is full: {why}"
    free = "" if free is None else f"; {free / 2**20:.0f} MiB were free there"
    kept = [
        d
        for d in checkpoint_dirs(root.parent)
        if d != directory and check_checkpoint(d, digests=False) is None
    ]
    intact = f"the newest checkpoint, {kept[0]}, is intact" if kept else "no earlier checkpoint exists"
    return (
        f"could not write checkpoint {directory} ({why}{free}): nothing of it was kept and {intact}; "
        f"free space in {root} or make it writable, then run the same command again to resume"
    )


def check_checkpoint(directory: Path, *, digests: bool = True) -> str | None:
    """``None`` if ``directory`` is a complete checkpoint, else what is wrong with it. Without
    ``digests``, each file's size is checked against the manifest but its SHA-256 is not (a
    listing need not read gigabytes of weights)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable MANIFEST.json (it was never finished)"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and {"bytes", "sha256"} <= e.keys() for e in files.values()
    ):
        return "MANIFEST.json is not a manifest orz-rl writes (no files with bytes and sha256)"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {expected['bytes']}"
        if digests and _digest(path) != expected["sha256"]:
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def _step_of(directory: Path) -> int:
    try:
        return int(json.loads((directory / MANIFEST).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The checkpoint folders of ``run_dir``, newest step first (not the ``.tmp`` and ``.old`` of a
    save in progress)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    candidates = [p for p in root.iterdir() if p.is_dir() and not p.name.endswith((".tmp", ".old"))]
    return sorted(candidates, key=lambda p: (_step_of(p), p.name), reverse=True)


def latest_checkpoint(
    run_dir: Path, *, report=print, skipped: list[tuple[Path, str]] | None = None
) -> Path | None:
    """The complete checkpoint of ``run_dir`` with the highest step; each broken one met on the
    way is reported (``report``), added to ``skipped`` with its problem, and skipped."""
    for directory in checkpoint_dirs(run_dir):
        problem = check_checkpoint(directory)
        if problem is None:
            return directory
        report(f"orz-rl: skipping checkpoint {directory}: {problem}")
        if skipped is not None:
            skipped.append((directory, problem))
    return None


def load_state(directory: Path) -> dict[str, Any]:
    # Our own file, checked against its manifest; it holds numpy RNG state and Python objects.
    return torch.load(directory / STATE, weights_only=False)


def prune_checkpoints(run_dir: Path, keep_last: int, *, keep: tuple[str, ...] = ("final",)) -> list[Path]:
    """Delete all but the ``keep_last`` newest ``step_*`` checkpoints; return what was deleted."""
    root = run_dir / "checkpoints"
    steps = sorted(
        (p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith((".tmp", ".old"))),
        key=_step_of,
    )
    doomed = [p for p in steps[: max(len(steps) - keep_last, 0)] if p.name not in keep]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed


def optimizer_state(model: nn.Module, optim: torch.optim.Optimizer, sharded: bool) -> dict:
    """``optim``'s state to save: as it is in one process; whole (unsharded) and keyed by parameter
    name when ``model`` is FSDP-sharded (a collective), so a run resumes on any number of ranks."""
    if not sharded:
        return optim.state_dict()
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, optim, options=options)


def load_optimizer_state(model: nn.Module, optim: torch.optim.Optimizer, saved: dict, sharded: bool) -> None:
    """Load what :func:`optimizer_state` saved, on any number of ranks (either format)."""
    by_index = isinstance(next(iter(saved["state"]), 0), int)  # one process's format
    if by_index and not sharded:
        optim.load_state_dict(saved)
        return
    if by_index:  # indices follow the parameters' order, which names give
        names = [name for name, _ in model.named_parameters()]
        groups = [g | {"params": [names[i] for i in g["params"]]} for g in saved["param_groups"]]
        saved = {"state": {names[i]: v for i, v in saved["state"].items()}, "param_groups": groups}
    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(model, optim, optim_state_dict=saved, options=options)

"""Saving a model directory (Hugging Face format) whole or not at all, and putting any finished
directory in the place of an earlier one (:func:`replace_dir`, which checkpoints use too)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def save_model_dir(out: Path, model, tokenizer, files: dict[str, str] | None = None) -> Path:
    """``model`` (safetensors), ``tokenizer`` and ``files`` (name -> text) saved as ``out``: written
    into ``out.partial`` and renamed, so a save cut short leaves no half model under ``out`` that a
    later "build if missing" would take for a whole one; an earlier ``out`` is replaced."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    for name, text in (files or {}).items():
        (partial / name).write_text(text)
    return replace_dir(partial, out)


def replace_dir(new: Path, out: Path) -> Path:
    """Put the finished directory ``new`` at ``out``: an earlier ``out`` is moved to ``OUT.old``
    first (directories cannot be renamed onto one another) and removed once ``new`` is in place."""
    old = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
    return out

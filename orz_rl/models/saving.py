"""Saving a model directory (Hugging Face format) whole or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path


def save_model_dir(out: Path, model, tokenizer, files: dict[str, str] | None = None) -> Path:
    """``model`` (safetensors), ``tokenizer`` and ``files`` (name -> text) saved as ``out``: written
    into ``out.partial`` and renamed, so a save cut short leaves no half model under ``out`` that a
    later "build if missing" would take for a whole one; an earlier ``out`` is replaced."""
    out = Path(out)
    partial, old = (out.with_name(out.name + suffix) for suffix in (".partial", ".old"))
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    for name, text in (files or {}).items():
        (partial / name).write_text(text)
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out

"""A checkpoint of a state already saved is linked, not written again: ``final`` after ``step_N``."""

from __future__ import annotations

import shutil

from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.runtime.checkpoint import check_checkpoint, link_checkpoint, load_state, save_checkpoint


def test_a_linked_checkpoint_shares_the_files_and_outlives_its_source(tiny_model_dir, tmp_path):
    model, tokenizer = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    step = save_checkpoint(tmp_path / "checkpoints" / "step_3", tokenizer, {"step": 3}, {"actor": model})
    final = link_checkpoint(step, tmp_path / "checkpoints" / "final")

    files = sorted(p.relative_to(step) for p in step.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(final) for p in final.rglob("*") if p.is_file())
    assert all((step / f).stat().st_ino == (final / f).stat().st_ino for f in files)
    assert not final.with_name("final.tmp").exists()
    shutil.rmtree(step)  # keep_last pruning the step's folder
    assert check_checkpoint(final) is None and load_state(final)["step"] == 3

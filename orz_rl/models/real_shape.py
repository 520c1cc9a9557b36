"""A model at a published Qwen2.5 shape with random weights, for measuring what that shape costs
on this machine without a model hub (``bench/real_shape.py``).

Its tokenizer is the embedded tiny model's (:func:`orz_rl.models.tiny.build_tokenizer`), beside
the published vocabulary's embedding rows: like Qwen's own tokenizer, which is smaller than its
151,936-row embedding, it reaches only part of the table, yet every pass computes all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import torch

from orz_rl.config import AT_LEAST_0, AT_LEAST_1, bound_problems
from orz_rl.models.dims import QWEN25, qwen2_config
from orz_rl.models.saving import save_model_dir
from orz_rl.models.tiny import TinyModelConfig, build_tokenizer


@dataclass(frozen=True)
class RealShapeConfig:
    """Which published shape to build, how deep, and where."""

    shape: str = "Qwen/Qwen2.5-0.5B"
    """A Qwen2.5 base model whose published dimensions the model takes (``orz_rl.models.dims.QWEN25``)."""
    layers: Annotated[int, AT_LEAST_0] = 0
    """Decoder layers (0: the published number; fewer keep the full width and vocabulary)."""
    out: Path = Path("artifacts/real-shape")
    """Directory the model and tokenizer are saved to (Hugging Face format)."""
    max_positions: Annotated[int, AT_LEAST_1] = 32768
    """``max_position_embeddings`` (Qwen2.5-0.5B's published 32,768)."""
    seed: int = 0
    """Seed of the random initialisation and of the tokenizer's corpus."""


def build(cfg: RealShapeConfig) -> Path:
    """Build the model of ``cfg`` with random weights and save it with the embedded tokenizer."""
    from transformers import Qwen2ForCausalLM

    problems = bound_problems(cfg)
    if cfg.shape not in QWEN25:
        problems.append(f"shape {cfg.shape!r}: not one of {', '.join(QWEN25)}")
    if problems:
        raise ValueError("; ".join(problems))
    dims = QWEN25[cfg.shape]
    if cfg.layers > 0:
        dims = replace(dims, layers=cfg.layers)
    tokenizer = build_tokenizer(cfg.seed, TinyModelConfig().vocab_size)
    ids = dict(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    # Qwen2.5's published rope_theta; float32 as the CPU recipes train.
    config = qwen2_config(dims, max_position_embeddings=cfg.max_positions, rope_theta=1e6, **ids)
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config)
    return save_model_dir(cfg.out, model, tokenizer)

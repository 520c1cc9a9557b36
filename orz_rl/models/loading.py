"""Loading base models and their tokenizers (local directories, or hub names where a hub is reachable)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


class ModelNotFoundError(FileNotFoundError):
    """A model path that is neither a local directory nor loadable by name."""


def check_model_path(path: str) -> None:
    """Raise :class:`ModelNotFoundError` for a local-looking path that is not a directory."""
    p = Path(path)
    looks_local = p.is_absolute() or path.startswith((".", "~")) or p.exists() or path.count("/") != 1
    if looks_local and not p.is_dir():
        raise ModelNotFoundError(
            f"model path {path!r} does not exist (expected a Hugging Face model directory)"
        )


def load_tokenizer(path: str):
    """The tokenizer of ``path``, left-padding, with a pad token distinct from EOS where possible."""
    from transformers import AutoTokenizer

    check_model_path(path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ModelNotFoundError(f"cannot load a tokenizer from {path!r}: {e}") from None
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _load_model(auto_class, path: str, dtype: torch.dtype, **kwargs):
    check_model_path(path)
    try:
        return auto_class.from_pretrained(path, dtype=dtype, **kwargs)
    except OSError as e:
        raise ModelNotFoundError(f"cannot load a model from {path!r}: {e}") from None


def load_causal_lm(path: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A causal LM from a local directory (or a hub name, where a hub is reachable)."""
    from transformers import AutoModelForCausalLM

    return _load_model(AutoModelForCausalLM, path, dtype)


def load_backbone(path: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The base transformer of ``path`` without its LM head (the critic's trunk).

    A causal LM's checkpoint holds its head too: that unexpected ``lm_head`` is expected, and
    transformers' load report, which would list it, is replaced by a warning about anything else
    (a missing weight above all: it would start random).
    """
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model, info = _load_model(AutoModel, path, dtype, output_loading_info=True)
    finally:
        transformers_logging.set_verbosity(verbosity)
    unexpected = [k for k in info["unexpected_keys"] if not k.startswith("lm_head.")]
    if info["missing_keys"] or unexpected or info["mismatched_keys"]:
        warnings.warn(
            f"loading the backbone of {path}: missing {sorted(info['missing_keys'])}, unexpected "
            f"{sorted(unexpected)}, mismatched {sorted(info['mismatched_keys'])}",
            stacklevel=2,
        )
    return model

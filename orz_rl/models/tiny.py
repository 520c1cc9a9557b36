"""Build the embedded default model: a tiny Qwen2 causal LM and its tokenizer.

Nothing is downloaded. The tokenizer is a byte-level BPE trained on a corpus
generated here. The model is pre-trained for a few hundred steps on ORZ-format
transcripts of the addition questions in which no sum is ever taught: half of
them box the question's fixed *wrong* answer (the model's "belief", drawn by
:func:`wrong_beliefs`), the other half a uniformly random number. The model
learns the format (think, then ``<answer> \\boxed{..} </answer>``) and to tell
the questions apart, but not the sums: its reward starts near chance (~0.05)
and can only rise through RL.

Why beliefs and not only random answers: a model pre-trained on random answers
learns that the question does not matter where the answer goes. Its hidden
state at ``\\boxed{`` was the same for every question (between-question
variance 1.6e-5 of the squared mean, measured), so RL had nothing to attach a
sum to and collapsed onto the best constant answer. A fixed belief per
question makes the model read the question there (that ratio becomes ~0.05),
as a real base model does, while every belief is wrong.

Run ``python -m orz_rl.models.tiny --out artifacts/tiny-qwen2`` (``make model``).
Both transformers and vLLM load the result from the directory.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from orz_rl.config import ModelConfig
from orz_rl.models.saving import save_model_dir
from orz_rl.problems.prompts import (
    CALL_END,
    CODE_TEMPLATE,
    ORZ_TEMPLATE,
    TOOL_OUTPUT,
    render_code_prompt,
    render_prompt,
    render_tool_output,
)
from orz_rl.problems.toy_task import PRODUCT_OPERANDS, addition_problems

EOS = "<|endoftext|>"
PAD = "<|pad|>"
#: Share of the pre-training's product questions answered through the tool (the rest box a wrong
#: answer): so RL starts from a model that calls it now and then.
TOOL_CALL_SHARE = 0.2


@dataclass(frozen=True)
class TinyModelConfig:
    """How the embedded default model is built."""

    out: Path = Path("artifacts/tiny-qwen2")
    """Directory the model and tokenizer are saved to (Hugging Face format)."""
    seed: int = 0
    """Seed for the corpus, the initialisation and the pre-training batches."""
    vocab_size: int = 1024
    """Target BPE vocabulary size (special tokens included)."""
    hidden_size: int = 128
    """Width of the transformer."""
    num_layers: int = 2
    """Number of decoder layers."""
    head_dim: int = 64
    """Attention head size; vLLM's CPU attention needs 64 or more."""
    pretrain_steps: int = 300
    """Optimiser steps of format pre-training."""
    pretrain_batch: int = 32
    """Transcripts per pre-training step."""
    pretrain_lr: float = 3e-3
    """Peak AdamW learning rate of the pre-training."""
    belief_share: float = 0.5
    """Share of pre-training transcripts that box the question's fixed wrong answer (the rest box a
    random number); 0 gives a model that ignores the question where the answer goes."""
    code_share: float = 0.0
    """Share of pre-training transcripts that are the toy programming task (``toy_task``) answered by
    a program printing the wrong belief or a random number (0: math only, the CPU default's model)."""
    tool_share: float = 0.0
    """Share of pre-training transcripts that ask a product of two 3-digit numbers: a share
    :data:`TOOL_CALL_SHARE` calls the Python tool on it and boxes what it printed, the rest box a
    wrong answer, the operands' digits side by side (0: no products, no tool)."""


def tiny_config_for(model: ModelConfig, out: Path | None = None) -> TinyModelConfig:
    """The tiny model a recipe's ``model`` fields ask for (``tiny_*``), built at ``out`` (its
    ``path`` by default): what a run builds where it is missing, and what the tests build."""
    return TinyModelConfig(
        out=Path(model.path) if out is None else out,
        code_share=model.tiny_code_share,
        tool_share=model.tiny_tool_share,
        pretrain_steps=model.tiny_pretrain_steps,
    )


def wrong_beliefs(seed: int = 0, max_operand: int = 9) -> dict[str, int]:
    """A fixed wrong answer in ``0..2 * max_operand`` for every addition question."""
    rng = random.Random(seed)
    answers = range(2 * max_operand + 1)
    return {
        question: rng.choice([v for v in answers if v != int(truth)])
        for question, truth in addition_problems(seed, max_operand)
    }


def well_formed_response(question: str, answer: str) -> str:
    """The response the tiny model is pre-trained to write: copy the sum, then box ``answer``."""
    expr = question.removeprefix("What is ").removesuffix("?")
    return f" {expr} </think> <answer> \\boxed{{{answer}}} </answer>"


def well_formed_program_response(question: str, answer: str) -> str:
    """The code-task response: copy the sum, then a program that prints ``answer``."""
    expr = question.removeprefix("What is ").removesuffix("?")
    return f" {expr} </think> <answer> ```python\nprint({answer})\n``` </answer>"


def tool_response(a: int, b: int) -> str:
    """A two-turn response to ``a * b``: copy it, print it with the tool, read the output
    (:func:`render_tool_output`) and box it."""
    call = f" {a} * {b} <code>\nprint({a} * {b})\n{CALL_END}"
    return call + render_tool_output(str(a * b)) + f" </think> <answer> \\boxed{{{a * b}}} </answer>"


def _product_transcript(rng: random.Random) -> tuple[str, str]:
    """A product question answered through the tool, or with a wrong answer that is a copy too (a
    random number there taught the model to ignore its context, and it never learned to copy the
    tool's output: 0 of 100 six-digit outputs copied, against all of them without one)."""
    a, b = rng.choice(PRODUCT_OPERANDS), rng.choice(PRODUCT_OPERANDS)
    question = f"What is {a} * {b}?"
    if rng.random() < TOOL_CALL_SHARE:
        return render_prompt(question), tool_response(a, b)
    return render_prompt(question), well_formed_response(question, f"{a}{b}")


def pretraining_corpus(
    seed: int,
    n: int,
    belief_share: float,
    belief_seed: int = 0,
    code_share: float = 0.0,
    tool_share: float = 0.0,
) -> list[tuple[str, str]]:
    """``n`` well-formed ``(prompt, response)`` transcripts of random addition questions.

    A share ``belief_share`` of the responses box the question's wrong belief,
    the rest a uniformly random number in 0..18 (right 1 time in 19, by chance).
    A share ``code_share`` asks the question as the toy programming task and
    answers with a program that prints that number instead. A share ``tool_share``
    asks a product of two 3-digit numbers instead (:func:`_product_transcript`).
    """
    rng = random.Random(seed)
    problems = addition_problems(seed, max_operand=9)
    beliefs = wrong_beliefs(belief_seed)
    corpus = []
    for _ in range(n):
        question, _ = problems[rng.randrange(len(problems))]
        guess = beliefs[question] if rng.random() < belief_share else rng.randint(0, 18)
        # Drawn only for a tool share, as the code share below.
        if tool_share > 0 and rng.random() < tool_share:
            corpus.append(_product_transcript(rng))
            continue
        # Drawn only for a code share: the math-only corpus stays the CPU default's, draw for draw.
        if code_share > 0 and rng.random() < code_share:
            expr = question.removeprefix("What is ").removesuffix("?")
            code_question = f"Write a program that prints the value of {expr}."
            corpus.append(
                (render_code_prompt(code_question), well_formed_program_response(question, str(guess)))
            )
        else:
            corpus.append((render_prompt(question), well_formed_response(question, str(guess))))
    return corpus


def build_tokenizer(seed: int, vocab_size: int, code_share: float = 0.0, tool_share: float = 0.0):
    """Train a Qwen2-style byte-level BPE on the generated corpus."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    # transformers (and so vLLM) load any qwen2 checkpoint's tokenizer through
    # Qwen2Tokenizer, which imposes its own pre-tokenizer; train with that same
    # one so the saved and the loaded tokenizer agree. It keeps digits single.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [
        p + r
        for p, r in pretraining_corpus(
            seed, 2000, belief_share=0.0, code_share=code_share, tool_share=tool_share
        )
    ]
    tok.train_from_iterator(texts, trainer=trainer)
    # The template's fixed text becomes two added tokens: a tiny model learns
    # nothing from reading ~140 constant tokens, and dropping them makes every
    # forward pass ~5x cheaper on a CPU. The text itself is unchanged.
    prefix, suffix = ORZ_TEMPLATE.format(bos="", question="\0").split("\0")
    fixed = [prefix, suffix]
    if code_share > 0:
        fixed.append(CODE_TEMPLATE.format(bos="", question="\0").split("\0")[0])
    tok.add_tokens([AddedToken(text, normalized=False) for text in fixed])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, padding_side="left")


def build_model(cfg: TinyModelConfig, vocab_size: int, eos_id: int, pad_id: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    heads = cfg.hidden_size // cfg.head_dim
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=4 * cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
        torch_dtype="float32",
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(config)


def pretrain(model, tokenizer, cfg: TinyModelConfig) -> list[float]:
    """Causal-LM loss on the response part of the pre-training transcripts (no correct sum taught)."""
    from tqdm import tqdm

    corpus = pretraining_corpus(
        cfg.seed + 1,
        cfg.pretrain_steps * cfg.pretrain_batch,
        cfg.belief_share,
        belief_seed=cfg.seed,
        code_share=cfg.code_share,
        tool_share=cfg.tool_share,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.pretrain_lr, total_steps=cfg.pretrain_steps, pct_start=0.1
    )
    losses = []
    model.train()
    for step in tqdm(range(cfg.pretrain_steps), desc="pre-training", leave=False):
        batch = corpus[step * cfg.pretrain_batch : (step + 1) * cfg.pretrain_batch]
        ids, labels = [], []
        for prompt, response in batch:
            row = tokenizer(prompt)["input_ids"]
            label = [-100] * len(row)
            # Each part tokenised alone, as a rollout does; a tool's output is read, not learned.
            for i, part in enumerate(TOOL_OUTPUT.split(response)):
                part_ids = tokenizer(part)["input_ids"]
                row += part_ids
                label += [-100] * len(part_ids) if i % 2 else part_ids
            ids.append(row + [tokenizer.eos_token_id])
            labels.append(label + [tokenizer.eos_token_id])
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
        label_t = torch.tensor([x + [-100] * (width - len(x)) for x in labels])
        mask = torch.arange(width) < torch.tensor([len(x) for x in ids])[:, None]
        out = model(input_ids=input_ids, attention_mask=mask.long(), labels=label_t)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    model.eval()
    return losses


def build(cfg: TinyModelConfig) -> Path:
    """Build, pre-train and save the tiny model; returns its directory."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.seed, cfg.vocab_size, cfg.code_share, cfg.tool_share)
    model = build_model(cfg, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    losses = pretrain(model, tokenizer, cfg)
    log = json.dumps({"first_loss": losses[0], "last_loss": losses[-1], "steps": len(losses)})
    return save_model_dir(cfg.out, model, tokenizer, {"pretrain_log.json": log})


def main() -> None:
    out = build(tyro.cli(TinyModelConfig))
    print(f"tiny model saved to {out}")


if __name__ == "__main__":
    main()

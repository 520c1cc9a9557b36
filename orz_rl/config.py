"""Training configuration: frozen dataclasses, one docstring per field (tyro's ``--help``).

Every default is the ORZ figure from ``docs/orz_recipe.md`` unless the field
says otherwise; recipes in ``recipes/`` override what their scale needs.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal


@dataclass(frozen=True)
class Bound:
    """The range a numeric field must lie in, as ``Annotated`` metadata on the field's type:
    :func:`bound_problems` checks every field of a configuration against its bound before
    anything loads. A tuple field's every element is checked; a value must be finite (no
    ``nan``, no ``inf``) unless its range reaches there."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    """``low`` itself is outside the range (``lr > 0``)."""
    high_open: bool = False
    """``high`` itself is outside the range (AdamW's betas ``< 1``)."""

    def holds(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.low == -math.inf and self.high == math.inf and self.low_open and self.high_open:
            return "a finite number"
        if self.high == math.inf:
            return f"above {self.low:g}" if self.low_open else f"at least {self.low:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


#: The bounds most fields take.
POSITIVE = Bound(0, low_open=True)
AT_LEAST_0 = Bound(0)
AT_LEAST_1 = Bound(1)
UNIT = Bound(0, 1)
"""A share or a probability: ``[0, 1]``."""
FINITE = Bound(-math.inf, math.inf, low_open=True, high_open=True)
"""Any number but ``nan`` and the infinities."""


@dataclass(frozen=True)
class Resumable:
    """``Annotated`` metadata of a field a resumed run may change: how long and how it runs, where it
    logs, how it evaluates, where programs run; on a nested configuration, every field inside it.
    A difference in any other field would make the resumed run another experiment, and
    ``orz_rl.runtime.preflight.resume_problems`` refuses it."""


RESUMABLE = Resumable()


def _metadata(hint: Any) -> tuple:
    return getattr(hint, "__metadata__", ())


def resumable_fields(cls: type, prefix: str = "") -> tuple[str, ...]:
    """The dotted names of the fields of ``cls`` (a configuration dataclass) marked
    :data:`RESUMABLE`; a marked nested configuration is named with a trailing dot (all of it)."""
    out: list[str] = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in fields(cls):
        hint, name = hints[f.name], prefix + f.name
        inner = getattr(hint, "__origin__", hint) if _metadata(hint) else hint
        if any(isinstance(m, Resumable) for m in _metadata(hint)):
            out.append(name + "." if is_dataclass(inner) else name)
        elif is_dataclass(inner):
            out += resumable_fields(inner, name + ".")
    return tuple(out)


#: The generation backends a run can name (``auto``: picked for the run) and those it runs.
Backend = Literal["auto", "vllm", "transformers"]
EngineBackend = Literal["vllm", "transformers"]


def bound_problems(cfg: Any, prefix: str = "") -> list[str]:
    """Every field of the (nested) dataclass ``cfg`` outside its :class:`Bound`, one line each
    naming the field (dotted under ``prefix``), its value and its range."""
    problems = []
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in fields(cfg):
        value, name = getattr(cfg, f.name), prefix + f.name
        if is_dataclass(value):
            problems += bound_problems(value, name + ".")
            continue
        if value is None:  # an optional field, off
            continue
        for bound in (m for m in _metadata(hints[f.name]) if isinstance(m, Bound)):
            values = value if isinstance(value, tuple) else (value,)
            if not all(bound.holds(v) for v in values):
                problems.append(f"{name} = {value!r}: must be {bound}")
    return problems


class ConfigError(ValueError):
    """The configuration cannot run; the message lists every problem, one per line, by field."""


def raise_if_any(problems: list[str]) -> None:
    """Raise :class:`ConfigError` listing ``problems``, if there are any."""
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"the configuration cannot run ({len(problems)} problem(s)):\n{listed}")


@dataclass(frozen=True)
class ModelConfig:
    """Which base model the actor and the critic start from."""

    path: str = "Qwen/Qwen2.5-7B"
    """Hugging Face model directory (or hub name where a hub is reachable)."""
    build_tiny_if_missing: Annotated[bool, RESUMABLE] = False
    """Build the embedded tiny model at ``path`` when it does not exist (CPU default only)."""
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    """Parameter dtype of actor and critic."""
    tiny_code_share: Annotated[float, UNIT] = 0.0
    """When building the tiny model: share of its pre-training transcripts that answer the toy
    programming problems with a (wrong) program, so that it writes code blocks (``cpu-mixed``)."""
    tiny_tool_share: Annotated[float, UNIT] = 0.0
    """When building the tiny model: share of its pre-training transcripts that ask a product of
    two 3-digit numbers, a fifth of them answered through the Python tool, so that exploration
    can find the tool (``cpu-tools``)."""
    tiny_pretrain_steps: Annotated[int, AT_LEAST_1] = 300
    """When building the tiny model: its pre-training steps (``cpu-tools`` takes 600 for the
    model to learn to copy a tool's output into its answer)."""


@dataclass(frozen=True)
class DataConfig:
    """Where the prompts come from."""

    train_file: str = "orz_math_57k_collected.json"
    """ORZ training file: a JSON list (or JSONL) of two-message dialogues."""
    generate_toy_task: Annotated[bool, RESUMABLE] = False
    """Write the addition task to ``train_file`` first (CPU default only)."""
    toy_max_operand: Annotated[int, AT_LEAST_1] = 9
    """Largest operand of the generated addition task (its problems are every a + b up to it)."""
    toy_task: Literal["addition", "products"] = "addition"
    """Which task ``generate_toy_task`` writes: ``addition`` (the CPU default), or ``products``,
    1,000 products of two 3-digit numbers (``cpu-tools``: a tiny model needs the Python tool)."""
    code_file: str = ""
    """Task ``mixed``: programming problems mixed into the math prompts (JSON Lines,
    ``orz_rl.problems.formats.load_code_problems``), rewarded by their unit tests in the sandbox."""
    generate_toy_code: Annotated[bool, RESUMABLE] = False
    """Write the toy programming task ("a program that prints a + b") to ``code_file`` first."""
    seed: int = 0
    """Seed of the prompt order (each pass over the data is a new permutation)."""


@dataclass(frozen=True)
class ToolConfig:
    """The Python tool of a multi-turn rollout (``orz_rl.envs.python_tool``): its budgets."""

    max_turns: Annotated[int, AT_LEAST_1] = 4
    """Model turns a trajectory may take; a tool call in its last one ends it with reward 0."""
    max_output_tokens: Annotated[int, AT_LEAST_1] = 64
    """Tokens of one tool output appended to the trajectory (its head; the rest is cut)."""
    seconds: Annotated[float, POSITIVE] = 5.0
    """Wall-clock seconds one tool call may run."""
    max_tool_seconds: Annotated[float, POSITIVE] = 20.0
    """Tool seconds a trajectory may spend in all; past them it ends with reward 0."""
    max_total_tokens: Annotated[int, AT_LEAST_1] = 1024
    """Tokens after the prompt (the model's and the tool's) a trajectory may hold: after a tool
    call, one with too few left for a whole turn (``rollout.max_new_tokens``) ends with reward
    0, as ORZ scores a response cut by the length limit."""
    instruction: bool = True
    """Tell the model the call's format in the prompt (``TOOL_INSTRUCTION`` before the problem, in
    every built-in template; a task's own template says it itself)."""


@dataclass(frozen=True)
class RolloutConfig:
    """Sampling of responses."""

    prompts_per_step: Annotated[int, AT_LEAST_1] = 128
    """Distinct prompts per generation step."""
    samples_per_prompt: Annotated[int, AT_LEAST_1] = 64
    """Responses sampled per prompt."""
    temperature: Annotated[float, POSITIVE] = 1.0
    """Sampling temperature."""
    top_p: Annotated[float, Bound(0, 1, low_open=True)] = 1.0
    """Nucleus sampling threshold (1.0 = off)."""
    top_k: Annotated[int, AT_LEAST_0] = 0
    """Top-k sampling (0 = off, as in ORZ)."""
    max_new_tokens: Annotated[int, AT_LEAST_1] = 8000
    """Response length limit; a response cut by it earns reward 0."""
    max_prompt_tokens: Annotated[int, AT_LEAST_1] = 2048
    """Prompt length limit; longer prompts are rejected at start-up."""
    backend: Annotated[Backend, RESUMABLE] = "auto"
    """Generation backend: ``vllm`` or ``transformers`` (``generate`` on the actor itself). ``auto``
    picks the faster where the run happens: vLLM on a GPU and in Ray engines, and on a CPU for
    responses over 192 tokens; transformers for shorter ones on a CPU (measured:
    ``docs/performance.md``), and wherever vLLM does not import."""
    vllm_gpu_memory_utilization: Annotated[float, Bound(0, 1, low_open=True), RESUMABLE] = 0.85
    """On a GPU: the share of its memory vLLM reserves for weights and KV cache."""
    vllm_cpu_kv_cache_gib: Annotated[float, POSITIVE, RESUMABLE] = 1.0
    """On a CPU: GiB of memory for vLLM's KV cache (set explicitly: vLLM's automatic sizing counts
    the trainer's own memory in the same process)."""
    tis_cap: Annotated[float, AT_LEAST_0] = 0.0
    """Truncated importance sampling against the engine's numerics (0: off, as ORZ): each token's
    policy loss is weighted by ``min(pi_trainer / pi_engine, tis_cap)`` of its old log-probs, so
    that tokens the engine sampled more readily than the trainer would are not over-weighted
    (``orz_rl.ppo.mismatch``; Yao et al. 2025 use 2)."""
    max_staleness: Annotated[int, AT_LEAST_0] = 0
    """Bounded-staleness rollouts: the next k steps' rollouts are sampled while a step trains, each
    from the weights synced before it starts, so a response trains an actor at most k updates
    newer than the policy that sampled it (``rollout/staleness_max``). The loss weights each token
    by ``min(pi_old / pi_behaviour, tis_cap)`` of the engine's log-probs: set ``tis_cap``. A
    checkpoint saves the rollouts in flight. 0: each step samples from the actor it trains (ORZ)."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: a group whose rewards are all equal (every response right, or every
    one wrong) is dropped, and the next prompts are sampled until ``prompts_per_step`` groups
    differ, ``max_sampling_rounds`` rollouts at most (``orz_rl.rollout.dynamic_sampling``)."""
    max_sampling_rounds: Annotated[int, AT_LEAST_1] = 3
    """With ``dynamic_sampling``: rollouts a step may sample, the first included; a batch still short
    after them is filled with dropped groups (``sampling/groups_short``)."""

    tools: Literal["none", "python"] = "none"
    """``python``: multi-turn rollouts in which the model may run Python in the sandbox between
    turns (``orz_rl.envs.python_tool``, ``docs/tools.md``); ``none``: one turn, as ORZ."""
    tool: ToolConfig = field(default_factory=ToolConfig)
    """The Python tool's budgets (with ``tools python``)."""

    @property
    def response_tokens(self) -> int:
        """Tokens of the longest response: ``max_new_tokens``, or with a tool
        ``tool.max_total_tokens`` (every turn and tool output)."""
        return (
            max(self.max_new_tokens, self.tool.max_total_tokens)
            if self.tools != "none"
            else self.max_new_tokens
        )

    @property
    def seq_len(self) -> int:
        """Tokens of the longest sequence: ``max_prompt_tokens + response_tokens``."""
        return self.max_prompt_tokens + self.response_tokens


@dataclass(frozen=True)
class SandboxConfig:
    """Where and within what limits untrusted programs run (``orz_rl.rewards.sandbox``)."""

    isolation: Literal["auto", "unshare", "bwrap", "none"] = "auto"
    """``auto``: ``unshare`` as root, else ``bwrap``. ``none`` runs programs as plain child processes
    (limits, no network or file isolation) and needs ``allow_unisolated``."""
    allow_unisolated: bool = False
    """Run untrusted code even where no network isolation is available (never on a machine you care about)."""
    workers: Annotated[int, AT_LEAST_0] = 0
    """Programs run in parallel (0: one per CPU core)."""
    timeout: Annotated[float, POSITIVE] = 10.0
    """Wall-clock seconds one program run may take (all of a problem's calls in function mode)."""
    memory_mb: Annotated[int, AT_LEAST_1] = 1024
    """Address-space limit of each process of a program, MiB."""
    max_output_kib: Annotated[int, AT_LEAST_1] = 1024
    """Cap on what a run may write to stdout, and to stderr; past it the run is killed."""
    max_file_mb: Annotated[int, AT_LEAST_1] = 16
    """Largest file a program may write, MiB."""
    tmpfs_mb: Annotated[int, AT_LEAST_1] = 64
    """Size of each private tmpfs (``/tmp`` with the working directory, ``/dev/shm``...), MiB."""
    max_processes: Annotated[int, AT_LEAST_1] = 32
    """Processes (and threads) a program may have at once, itself included."""
    max_open_files: Annotated[int, Bound(16)] = 64
    """Open file descriptors per process."""
    python: str = ""
    """Interpreter inside the sandbox ("": this one where the sandbox user can run it, else ``python3``)."""
    uid_base: Annotated[int, AT_LEAST_1] = 61000
    """As root: programs run as uids from here up, one per worker slot, reserved with lock files."""
    warm: bool = True
    """Fork each program from a ready interpreter kept per worker slot inside the same isolation,
    in namespaces of the program's own (a few ms a program); false: a fresh interpreter a program."""


@dataclass(frozen=True)
class RewardConfig:
    """The math reward's checker (``orz_rl.rewards.math_grader``), and DAPO's overlong handling of
    the env's rewards (``orz_rl.rewards.overlong``; off, as ORZ)."""

    workers: Annotated[int, AT_LEAST_0, RESUMABLE] = 0
    """Worker processes that run math-verify (0: one per CPU core)."""
    timeout: Annotated[float, POSITIVE] = 5.0
    """Seconds one answer comparison may take; past it the worker is killed and the reward is 0
    (counted as ``grader/timeouts``). ``inf``: no limit, which a hostile answer can hang."""
    overlong_filter: bool = False
    """DAPO's overlong filtering: a response cut by the length limit (not ``stopped``) is masked out
    of the actor's and critic's losses instead of trained on with the reward of an unfinished
    answer; its reward still counts in its group's statistics (``reward/overlong_filtered_share``)."""
    overlong_penalty: Annotated[int, AT_LEAST_0] = 0
    """DAPO's soft overlong punishment, over this many tokens before the response limit L
    (``rollout.max_new_tokens``; with a tool ``rollout.tool.max_total_tokens``): a response of
    length l > L - n loses ``(l - L + n) / n`` of reward, 1 at the limit (DAPO: 4096 of 20480).
    0: none. ``reward/mean`` stays the env's reward."""


@dataclass(frozen=True)
class EvalDuringTrainingConfig:
    """Evaluation every ``interval`` steps (``orz_rl.tools.evaluation``), logged as ``eval/<name>/...``."""

    interval: Annotated[int, AT_LEAST_0] = 0
    """Evaluate every this many generation steps (ORZ: 10; 0: never)."""
    benchmarks: tuple[str, ...] = ("math500", "aime2024", "gpqa_diamond")
    """Benchmark names (math500, aime2024, gpqa_diamond, humaneval) or paths of benchmark files.
    Under a built-in task (math, code, mixed) each is scored by the task of its problems (math,
    or code for programming problems), in any format of ``orz_rl.problems.formats``; a task of
    one's own reads and scores them all itself."""
    samples: Annotated[int, AT_LEAST_1] = 4
    """Responses per question (ORZ reports avg@16; fewer keep training fast)."""
    limit: Annotated[int, AT_LEAST_0] = 0
    """Only the first this many questions of each benchmark (0: all)."""


Aggregation = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]


@dataclass(frozen=True)
class PPOConfig:
    """The PPO update."""

    advantage: str = "gae"
    """Advantage estimator by name (``orz_rl.advantages.registry``): ``gae``, ORZ's, from a learned
    critic; or a critic-free one (no critic is built, stepped or saved): ``grpo`` (group mean and
    std), ``dr_grpo`` (group mean; with ``--ppo.aggregation seq-mean-token-sum-norm``), ``rloo``
    (leave-one-out mean), ``reinforce_pp`` (batch-normalised return), or ``orz_grpo``, ORZ's own
    GRPO switch as its code behaves (group mean only, then batch normalisation)."""
    gamma: Annotated[float, UNIT] = 1.0
    """GAE discount (ORZ: 1.0)."""
    lmbda: Annotated[float, UNIT] = 1.0
    """GAE lambda (ORZ: 1.0)."""
    clip_epsilon: Annotated[float, POSITIVE] = 0.2
    """Clip range of the policy ratio: ``[1 - clip_epsilon, 1 + clip_epsilon]``."""
    clip_epsilon_high: Annotated[float | None, POSITIVE] = None
    """The ratio's upper clip, ``1 + clip_epsilon_high`` (DAPO's clip-higher: 0.28 with
    ``clip_epsilon`` 0.2); None: ``clip_epsilon`` on both sides, as ORZ."""
    value_clip: Annotated[float, POSITIVE] = 0.2
    """Clip range of the critic's value around its rollout-time value."""
    value_loss_coeff: Annotated[float, AT_LEAST_0] = 0.5
    """Factor of the critic loss (ORZ: 0.5 * max(clipped, unclipped))."""
    reward_clip: Annotated[float, POSITIVE] = 10.0
    """Rewards are clipped to [-reward_clip, reward_clip] before use."""
    normalize_advantages: bool = True
    """Normalise advantages by mean/std over every valid token of the batch."""
    aggregation: Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"] = (
        "seq-mean-token-mean"
    )
    """Loss reduction: ORZ's mean over each sequence's tokens then over sequences, a flat token mean,
    or Dr. GRPO's sum over each sequence's tokens divided by ``rollout.max_new_tokens`` (a constant,
    not the sequence's length), then the mean over sequences."""
    kl_coef: Annotated[float, AT_LEAST_0] = 0.0
    """A KL term against a frozen copy of the base model, the reference (0: none, as ORZ; its
    ablation turns it on). The reference is loaded, sharded and checkpointed beside the actor
    (``orz_rl.advantages.kl``)."""
    kl_estimator: Literal["k1", "k3"] = "k3"
    """Per-token estimate of KL(policy || reference): ``k1`` = log-ratio, ``k3`` = exp(-l) - 1 + l
    (never below 0; ORZ's ``use_kl_estimator_k3``)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """Where the KL goes: a loss term with its gradient (GRPO's; ORZ's ``use_kl_loss``) or a penalty
    on every token's reward before the advantages (InstructGPT's; ORZ's ``init_kl_coef``; the
    estimators with token rewards: gae, reinforce_pp, orz_grpo)."""
    entropy_coef: Annotated[float, AT_LEAST_0] = 0.0
    """Entropy bonus of the policy loss, ``-entropy_coef * H`` per token (ORZ: 0, none)."""
    policy_steps_per_rollout: Annotated[int, AT_LEAST_1] = 1
    """Actor optimiser steps per generation step (ORZ: exactly 1, strictly on-policy)."""
    old_log_probs_from_update: bool = True
    """With one policy step per rollout (ORZ), take PPO's old log-probs from the update's own
    forward pass, detached, instead of a separate no-grad pass over the batch before it: the actor
    has not moved since the rollout, so they are the same numbers (ratio 1, nothing clipped, the
    same gradient) for one pass less. With more policy steps the separate pass always runs."""
    critic_steps_per_rollout: Annotated[int, AT_LEAST_1] = 12
    """Critic mini-batch optimiser steps per generation step (ORZ: 12)."""
    overlap_critic_update: bool = False
    """Sample the next rollout while the critic updates (in one training process): nothing in a
    rollout reads the critic, and its values for that rollout are taken after both finish, so the
    run computes the same numbers, strictly on-policy. The step before an evaluation, and the
    last, do not overlap; under ``torchrun`` the critic updates after the rollout as before. Off
    by default: on CPUs the two threads contend for the cores and Python's lock, and the step
    took 1.2-1.3x as long (``bench/levers.py``, ``docs/performance.md``); it can pay where the
    engine is not this process."""
    micro_batch_size: Annotated[int, AT_LEAST_1] = 8
    """Sequences per forward/backward pass (gradients accumulate over micro-batches)."""
    pack_tokens: Annotated[int, Bound(-1)] = -1
    """Token budget of a packed row in the actor's and critic's forward passes: each micro-batch's
    sequences go end to end into rows of at most this many tokens, attention kept within each
    (-1: ``rollout.max_prompt_tokens + rollout.max_new_tokens``, ORZ's; 0: pad to the longest)."""
    activation_checkpointing: bool = False
    """Keep only each decoder layer's input during the forward and recompute the rest in the
    backward (actor and critic): a third more compute for a fraction of the activation memory,
    which 8,000-token responses of a 7B model need on 80 GB GPUs (``--dry-run`` shows both)."""
    logit_chunk_tokens: Annotated[int, AT_LEAST_0] = 1024
    """Response tokens whose ``[tokens, vocabulary]`` logits the actor's LM head makes at once, in
    every log-prob pass and the policy loss (each chunk recomputed in the backward); 0: a
    micro-batch's all at once. The logits are a policy pass's largest tensor (151,936 floats per
    token for Qwen2.5), so this bounds their memory (``--dry-run``'s "actor logits") for one more
    run of the head in the backward when a micro-batch holds more tokens than this."""
    max_grad_norm: Annotated[float, POSITIVE] = 1.0
    """Gradient clipping norm of actor and critic."""

    @property
    def uses_reference(self) -> bool:
        """Whether a frozen reference model is loaded (a KL term, ``kl_coef > 0``)."""
        return self.kl_coef > 0


@dataclass(frozen=True)
class OptimConfig:
    """AdamW for actor and critic."""

    actor_lr: Annotated[float, POSITIVE] = 1e-6
    """Actor learning rate."""
    critic_lr: Annotated[float, POSITIVE] = 5e-6
    """Critic learning rate."""
    betas: Annotated[tuple[float, float], Bound(0, 1, high_open=True)] = (0.9, 0.95)
    """AdamW betas."""
    weight_decay: Annotated[float, AT_LEAST_0] = 0.0
    """AdamW weight decay."""
    warmup_steps: Annotated[int, AT_LEAST_0] = 50
    """Actor: linear learning-rate warm-up over this many optimiser steps, then constant."""
    critic_warmup_steps: Annotated[int, AT_LEAST_0] = 50
    """Critic: linear learning-rate warm-up over this many optimiser steps, then constant."""


@dataclass(frozen=True)
class LayoutConfig:
    """Where a run's processes go: training ranks (``torchrun``, FSDP2) and vLLM engines (Ray).

    Training runs on as many ranks as ``torchrun`` starts (one per GPU; one process without
    it); the fields below place the engines and tell ``--dry-run`` what the machines hold.
    """

    nodes: Annotated[int, AT_LEAST_1] = 1
    """Machines of the run."""
    gpus_per_node: Annotated[int, AT_LEAST_0] = 8
    """GPUs per machine (0: a CPU run)."""
    gpu_memory_gib: Annotated[float, POSITIVE] = 80.0
    """Memory of one GPU (``--dry-run`` checks the estimate against it)."""
    vllm_engines: Annotated[int, AT_LEAST_0] = 0
    """vLLM engines, each a Ray actor on ``vllm_tensor_parallel`` GPUs of their own; 0: one engine
    inside the trainer's process (one machine; not possible under ``torchrun``)."""
    vllm_tensor_parallel: Annotated[int, AT_LEAST_1] = 1
    """GPUs per vLLM engine (tensor parallel)."""
    ray_address: str = ""
    """Ray cluster the engines join ("auto": the one started with ``ray start`` on this node;
    "": a local cluster started by the trainer)."""


@dataclass(frozen=True)
class LogConfig:
    """Where a run's metrics go beside ``metrics.jsonl`` (``docs/metrics.md``)."""

    backends: tuple[Literal["jsonl", "tensorboard", "wandb", "mlflow", "csv"], ...] = ("jsonl", "tensorboard")
    """Trackers, several at once, through TorchRL's loggers. jsonl is always written (``orz-rl
    status``, ``plot`` and ``compare`` read it); wandb (``WANDB_MODE=offline`` for local files) and
    mlflow need ``pip install 'orz-rl[trackers]'``."""
    project: str = "orz-rl"
    """The W&B project and the MLflow experiment."""
    name: str = ""
    """The run's name in W&B and MLflow ("": the run directory's name)."""
    mlflow_tracking_uri: str = ""
    """MLflow's store ("": ``sqlite:///RUN_DIR/mlflow.db``, a local file)."""
    server_timeout: Annotated[float, POSITIVE] = 30.0
    """Seconds a tracker server (MLflow at an http(s) URI) may take to answer before orz-rl gives
    up on it: at start the run stops with one error; later a step it fails to take is counted and
    the run goes on."""


@dataclass(frozen=True)
class TrainConfig:
    """A whole ORZ run."""

    task: str = "math"
    """What the run trains on: a Task, named by one of
    a built-in name (math, code, mixed);
    a name an installed package registers (entry point group orz_rl.tasks);
    FILE.py:NAME, a Task in a file of one's own, e.g. my_task.py:TASK;
    package.module:NAME, a Task in an importable module, e.g. my_package.tasks:TASK.
    orz-rl tasks lists the names it sees."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Base model."""
    data: DataConfig = field(default_factory=DataConfig)
    """Prompt data."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Sampling."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Answer checking."""
    sandbox: Annotated[SandboxConfig, RESUMABLE] = field(default_factory=SandboxConfig)
    """Where programs of code problems run (started only for a task that runs programs)."""
    eval: Annotated[EvalDuringTrainingConfig, RESUMABLE] = field(default_factory=EvalDuringTrainingConfig)
    """Evaluation during training."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO update."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimisers."""
    layout: Annotated[LayoutConfig, RESUMABLE] = field(default_factory=LayoutConfig)
    """Machines, training ranks and vLLM engines."""
    log: Annotated[LogConfig, RESUMABLE] = field(default_factory=LogConfig)
    """Metrics trackers."""
    run_dir: Annotated[Path, RESUMABLE] = Path("runs/orz")
    """Where metrics.jsonl, TensorBoard events and checkpoints go."""
    num_episodes: Annotated[int, AT_LEAST_1, RESUMABLE] = 20
    """Passes over the prompt set (ORZ: 20)."""
    max_steps: Annotated[int, Bound(-1), RESUMABLE] = -1
    """Stop after this many generation steps (-1: run all episodes)."""
    max_minutes: Annotated[float, RESUMABLE] = -1.0
    """Stop after this much wall-clock time (-1: no limit)."""
    stop_at_reward: Annotated[float | None, FINITE, RESUMABLE] = None
    """Stop once the mean ``reward/mean`` of the last 10 steps reaches this (None: no target),
    with the final checkpoint saved."""
    save_interval: Annotated[int, AT_LEAST_0, RESUMABLE] = 50
    """Checkpoint every this many steps (and at the end, and on SIGINT/SIGTERM); 0: only those."""
    keep_last: Annotated[int, AT_LEAST_1, RESUMABLE] = 3
    """Keep this many of the newest ``step_*`` checkpoints (``final`` is always kept)."""
    resume: Annotated[Path | None, RESUMABLE] = None
    """Continue the run in this directory (it becomes ``run_dir``) from its last complete checkpoint."""
    auto_resume: Annotated[bool, RESUMABLE] = True
    """Continue from ``run_dir``'s last complete checkpoint when it has one (else start fresh).
    A ``run_dir`` with history but no checkpoint that loads is refused, never started over."""
    fresh: Annotated[bool, RESUMABLE] = False
    """Start over in ``run_dir``: a run already there is moved aside, whole, to
    ``RUN_DIR.old-YYYYmmdd-HHMMSS`` (nothing is deleted)."""
    seed: int = 0
    """Seed of torch's RNG (sampling, initialisation)."""
    threads: Annotated[int, AT_LEAST_0, RESUMABLE] = 0
    """torch intra-op threads (0: torch's default)."""
    progress: Annotated[bool, RESUMABLE] = True
    """Show a progress bar."""
    dry_run: Annotated[bool, RESUMABLE] = False
    """Print the layout, memory per GPU and batch sizes, and exit without loading weights."""

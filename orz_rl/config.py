"""Training configuration: frozen dataclasses, one docstring per field (tyro's ``--help``).

Every default is the ORZ figure from ``docs/orz_recipe.md`` unless the field
says otherwise; recipes in ``recipes/`` override what their scale needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    """Which base model the actor and the critic start from."""

    path: str = "Qwen/Qwen2.5-7B"
    """Hugging Face model directory (or hub name where a hub is reachable)."""
    build_tiny_if_missing: bool = False
    """Build the embedded tiny model at ``path`` when it does not exist (CPU default only)."""
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    """Parameter dtype of actor and critic."""
    tiny_code_share: float = 0.0
    """When building the tiny model: share of its pre-training transcripts that answer the toy
    programming problems with a (wrong) program, so that it writes code blocks (``cpu-mixed``)."""


@dataclass(frozen=True)
class DataConfig:
    """Where the prompts come from."""

    train_file: str = "orz_math_57k_collected.json"
    """ORZ training file: a JSON list (or JSONL) of two-message dialogues."""
    generate_toy_task: bool = False
    """Write the addition task to ``train_file`` first (CPU default only)."""
    toy_max_operand: int = 9
    """Largest operand of the generated addition task (its problems are every a + b up to it)."""
    code_file: str = ""
    """Task ``mixed``: programming problems mixed into the math prompts (JSON Lines,
    ``orz_rl.problems.formats.load_code_problems``), rewarded by their unit tests in the sandbox."""
    generate_toy_code: bool = False
    """Write the toy programming task ("a program that prints a + b") to ``code_file`` first."""
    seed: int = 0
    """Seed of the prompt order (each pass over the data is a new permutation)."""


@dataclass(frozen=True)
class RolloutConfig:
    """Sampling of responses."""

    prompts_per_step: int = 128
    """Distinct prompts per generation step."""
    samples_per_prompt: int = 64
    """Responses sampled per prompt."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling threshold (1.0 = off)."""
    top_k: int = 0
    """Top-k sampling (0 = off, as in ORZ)."""
    max_new_tokens: int = 8000
    """Response length limit; a response cut by it earns reward 0."""
    max_prompt_tokens: int = 2048
    """Prompt length limit; longer prompts are rejected at start-up."""
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    """Generation backend: ``vllm`` or ``transformers`` (``generate`` on the actor itself). ``auto``
    picks the faster where the run happens: vLLM on a GPU and in Ray engines, and on a CPU for
    responses over 192 tokens; transformers for shorter ones on a CPU (measured:
    ``docs/performance.md``), and wherever vLLM does not import."""
    vllm_gpu_memory_utilization: float = 0.85
    """On a GPU: the share of its memory vLLM reserves for weights and KV cache."""
    vllm_cpu_kv_cache_gib: float = 1.0
    """On a CPU: GiB of memory for vLLM's KV cache (set explicitly: vLLM's automatic sizing counts
    the trainer's own memory in the same process)."""
    tis_cap: float = 0.0
    """Truncated importance sampling against the engine's numerics (0: off, as ORZ): each token's
    policy loss is weighted by ``min(pi_trainer / pi_engine, tis_cap)`` of its old log-probs, so
    that tokens the engine sampled more readily than the trainer would are not over-weighted
    (``orz_rl.ppo.mismatch``; Yao et al. 2025 use 2)."""


@dataclass(frozen=True)
class SandboxConfig:
    """Where and within what limits untrusted programs run (``orz_rl.rewards.sandbox``)."""

    isolation: Literal["auto", "unshare", "bwrap", "none"] = "auto"
    """``auto``: ``unshare`` as root, else ``bwrap``. ``none`` runs programs as plain child processes
    (limits, no network or file isolation) and needs ``allow_unisolated``."""
    allow_unisolated: bool = False
    """Run untrusted code even where no network isolation is available (never on a machine you care about)."""
    workers: int = 0
    """Programs run in parallel (0: one per CPU core)."""
    timeout: float = 10.0
    """Wall-clock seconds one program run may take (all of a problem's calls in function mode)."""
    memory_mb: int = 1024
    """Address-space limit of each process of a program, MiB."""
    max_output_kib: int = 1024
    """Cap on what a run may write to stdout, and to stderr; past it the run is killed."""
    max_file_mb: int = 16
    """Largest file a program may write, MiB."""
    tmpfs_mb: int = 64
    """Size of each private tmpfs (``/tmp`` with the working directory, ``/dev/shm``...), MiB."""
    max_processes: int = 32
    """Processes (and threads) a program may have at once, itself included."""
    max_open_files: int = 64
    """Open file descriptors per process."""
    python: str = ""
    """Interpreter inside the sandbox ("": this one where the sandbox user can run it, else ``python3``)."""
    uid_base: int = 61000
    """As root: programs run as uids from here up, one per worker slot, reserved with lock files."""


@dataclass(frozen=True)
class RewardConfig:
    """The math reward's checker (``orz_rl.rewards.math_grader``)."""

    workers: int = 0
    """Worker processes that run math-verify (0: one per CPU core)."""
    timeout: float = 5.0
    """Seconds one answer comparison may take; past it the worker is killed and the reward is 0
    (counted as ``grader/timeouts``)."""


@dataclass(frozen=True)
class EvalDuringTrainingConfig:
    """Evaluation every ``interval`` steps (``orz_rl.tools.evaluation``), logged as ``eval/<name>/...``."""

    interval: int = 0
    """Evaluate every this many generation steps (ORZ: 10; 0: never)."""
    benchmarks: tuple[str, ...] = ("math500", "aime2024", "gpqa_diamond")
    """Benchmark names (math500, aime2024, gpqa_diamond, humaneval) or paths of benchmark files.
    Under a built-in task (math, code, mixed) each is scored by the task of its problems (math,
    or code for programming problems), in any format of ``orz_rl.problems.formats``; a task of
    one's own reads and scores them all itself."""
    samples: int = 4
    """Responses per question (ORZ reports avg@16; fewer keep training fast)."""
    limit: int = 0
    """Only the first this many questions of each benchmark (0: all)."""


Aggregation = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]
AdvantageEstimator = Literal["gae", "grpo", "dr_grpo", "rloo", "reinforce_pp", "orz_grpo"]


@dataclass(frozen=True)
class PPOConfig:
    """The PPO update."""

    advantage: AdvantageEstimator = "gae"
    """Advantage estimator (``orz_rl.ppo.estimators``): ORZ's GAE with a learned critic, or a
    critic-free baseline (no critic is built, stepped or saved): GRPO (group mean and std), Dr. GRPO
    (group mean; with ``--ppo.aggregation seq-mean-token-sum-norm``), RLOO (leave-one-out mean),
    REINFORCE++ (batch-normalised return), or ``orz_grpo``, ORZ's own GRPO switch as its code
    behaves (group mean only, then batch normalisation)."""
    gamma: float = 1.0
    """GAE discount (ORZ: 1.0)."""
    lmbda: float = 1.0
    """GAE lambda (ORZ: 1.0)."""
    clip_epsilon: float = 0.2
    """Clip range of the policy ratio."""
    value_clip: float = 0.2
    """Clip range of the critic's value around its rollout-time value."""
    value_loss_coeff: float = 0.5
    """Factor of the critic loss (ORZ: 0.5 * max(clipped, unclipped))."""
    reward_clip: float = 10.0
    """Rewards are clipped to [-reward_clip, reward_clip] before use."""
    normalize_advantages: bool = True
    """Normalise advantages by mean/std over every valid token of the batch."""
    aggregation: Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"] = (
        "seq-mean-token-mean"
    )
    """Loss reduction: ORZ's mean over each sequence's tokens then over sequences, a flat token mean,
    or Dr. GRPO's sum over each sequence's tokens divided by ``rollout.max_new_tokens`` (a constant,
    not the sequence's length), then the mean over sequences."""
    kl_coef: float = 0.0
    """A KL term against a frozen copy of the base model, the reference (0: none, as ORZ; its
    ablation turns it on). The reference is loaded, sharded and checkpointed beside the actor
    (``orz_rl.ppo.kl``)."""
    kl_estimator: Literal["k1", "k3"] = "k3"
    """Per-token estimate of KL(policy || reference): ``k1`` = log-ratio, ``k3`` = exp(-l) - 1 + l
    (never below 0; ORZ's ``use_kl_estimator_k3``)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """Where the KL goes: a loss term with its gradient (GRPO's; ORZ's ``use_kl_loss``) or a penalty
    on every token's reward before the advantages (InstructGPT's; ORZ's ``init_kl_coef``; the
    estimators with token rewards: gae, reinforce_pp, orz_grpo)."""
    entropy_coef: float = 0.0
    """Entropy bonus of the policy loss, ``-entropy_coef * H`` per token (ORZ: 0, none)."""
    policy_steps_per_rollout: int = 1
    """Actor optimiser steps per generation step (ORZ: exactly 1, strictly on-policy)."""
    old_log_probs_from_update: bool = True
    """With one policy step per rollout (ORZ), take PPO's old log-probs from the update's own
    forward pass, detached, instead of a separate no-grad pass over the batch before it: the actor
    has not moved since the rollout, so they are the same numbers (ratio 1, nothing clipped, the
    same gradient) for one pass less. With more policy steps the separate pass always runs."""
    critic_steps_per_rollout: int = 12
    """Critic mini-batch optimiser steps per generation step (ORZ: 12)."""
    overlap_critic_update: bool = False
    """Sample the next rollout while the critic updates (in one training process): nothing in a
    rollout reads the critic, and its values for that rollout are taken after both finish, so the
    run computes the same numbers, strictly on-policy. The step before an evaluation, and the
    last, do not overlap; under ``torchrun`` the critic updates after the rollout as before. Off
    by default: on CPUs the two threads contend for the cores and Python's lock, and the step
    took 1.2-1.3x as long (``bench/levers.py``, ``docs/performance.md``); it can pay where the
    engine is not this process."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass (gradients accumulate over micro-batches)."""
    pack_tokens: int = -1
    """Token budget of a packed row in the actor's and critic's forward passes: each micro-batch's
    sequences go end to end into rows of at most this many tokens, attention kept within each
    (-1: ``rollout.max_prompt_tokens + rollout.max_new_tokens``, ORZ's; 0: pad to the longest)."""
    activation_checkpointing: bool = False
    """Keep only each decoder layer's input during the forward and recompute the rest in the
    backward (actor and critic): a third more compute for a fraction of the activation memory,
    which 8,000-token responses of a 7B model need on 80 GB GPUs (``--dry-run`` shows both)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm of actor and critic."""

    @property
    def uses_reference(self) -> bool:
        """Whether a frozen reference model is loaded (a KL term, ``kl_coef > 0``)."""
        return self.kl_coef > 0

    @property
    def learns_critic(self) -> bool:
        """Whether the advantage estimator reads a learned critic (only ORZ's ``gae`` does)."""
        return self.advantage == "gae"


@dataclass(frozen=True)
class OptimConfig:
    """AdamW for actor and critic."""

    actor_lr: float = 1e-6
    """Actor learning rate."""
    critic_lr: float = 5e-6
    """Critic learning rate."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 50
    """Actor: linear learning-rate warm-up over this many optimiser steps, then constant."""
    critic_warmup_steps: int = 50
    """Critic: linear learning-rate warm-up over this many optimiser steps, then constant."""


@dataclass(frozen=True)
class LayoutConfig:
    """Where a run's processes go: training ranks (``torchrun``, FSDP2) and vLLM engines (Ray).

    Training runs on as many ranks as ``torchrun`` starts (one per GPU; one process without
    it); the fields below place the engines and tell ``--dry-run`` what the machines hold.
    """

    nodes: int = 1
    """Machines of the run."""
    gpus_per_node: int = 8
    """GPUs per machine (0: a CPU run)."""
    gpu_memory_gib: float = 80.0
    """Memory of one GPU (``--dry-run`` checks the estimate against it)."""
    vllm_engines: int = 0
    """vLLM engines, each a Ray actor on ``vllm_tensor_parallel`` GPUs of their own; 0: one engine
    inside the trainer's process (one machine; not possible under ``torchrun``)."""
    vllm_tensor_parallel: int = 1
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


@dataclass(frozen=True)
class TrainConfig:
    """A whole ORZ run."""

    task: str = "math"
    """What the run trains on: a registered task (math, code, mixed; ``orz-rl tasks`` lists them
    all) or ``package.module:NAME`` of a Task of one's own."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Base model."""
    data: DataConfig = field(default_factory=DataConfig)
    """Prompt data."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Sampling."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Answer checking."""
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    """Where programs of code problems run (started only for a task that runs programs)."""
    eval: EvalDuringTrainingConfig = field(default_factory=EvalDuringTrainingConfig)
    """Evaluation during training."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO update."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimisers."""
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    """Machines, training ranks and vLLM engines."""
    log: LogConfig = field(default_factory=LogConfig)
    """Metrics trackers."""
    run_dir: Path = Path("runs/orz")
    """Where metrics.jsonl, TensorBoard events and checkpoints go."""
    num_episodes: int = 20
    """Passes over the prompt set (ORZ: 20)."""
    max_steps: int = -1
    """Stop after this many generation steps (-1: run all episodes)."""
    max_minutes: float = -1.0
    """Stop after this much wall-clock time (-1: no limit)."""
    save_interval: int = 50
    """Checkpoint every this many steps (and at the end, and on SIGINT/SIGTERM); 0: only those."""
    keep_last: int = 3
    """Keep this many of the newest ``step_*`` checkpoints (``final`` is always kept)."""
    resume: Path | None = None
    """Continue the run in this directory (it becomes ``run_dir``) from its last complete checkpoint."""
    auto_resume: bool = True
    """Continue from ``run_dir``'s last complete checkpoint when it has one (else start fresh)."""
    seed: int = 0
    """Seed of torch's RNG (sampling, initialisation)."""
    threads: int = 0
    """torch intra-op threads (0: torch's default)."""
    progress: bool = True
    """Show a progress bar."""
    dry_run: bool = False
    """Print the layout, memory per GPU and batch sizes, and exit without loading weights."""

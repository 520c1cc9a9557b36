"""ORZ's published configurations (Qwen2.5 base models), with the paper's figures.

They load Qwen2.5 by name, which needs GPU machines with hub access (or a local copy passed
as ``--model.path``). Every algorithmic figure is the :class:`~orz_rl.config.TrainConfig`
default, i.e. ``docs/orz_recipe.md``; what a recipe sets is its scale:

* the machines (``layout``), for 80 GB GPUs (H100 or A100 80GB):

  - 0.5B and 1.5B: one node of 8 GPUs, 4 training ranks and 4 vLLM engines of one GPU each;
  - 7B: 4 nodes of 8 GPUs, 16 training ranks and 16 vLLM engines of one GPU each;
  - 32B: 16 nodes of 8 GPUs, 64 training ranks and 16 vLLM engines of 4 GPUs each
    (tensor parallel);

  the engines join the Ray cluster started on the nodes (``ray_address="auto"``;
  ``docs/scaling.md``), training runs as ``torchrun`` ranks on the other GPUs;

* ``ppo.micro_batch_size``, lowered from the default 8 so that one micro-batch of
  full-length sequences (2,048 + 8,000 tokens) fits a training GPU by the estimate of
  ``orz-rl train RECIPE --dry-run`` (``orz_rl.tools.plan``). It only sets how many micro-batches
  a rank accumulates gradients over, not the update: the mini-batches stay ORZ's (8,192
  responses for the policy's one step, 1/12 of them for each critic step);

* ``ppo.activation_checkpointing`` for 7B and 32B, which do not fit 80 GB without it even at
  one sequence per micro-batch (7B about 81 GiB, 32B about 234 GiB per training GPU, most of
  it one 10,048-token sequence's activations). With it each decoder layer keeps only its input
  and is recomputed in the backward, which costs about a third more training compute.

0.5B and 1.5B train without it: it would let many more sequences per micro-batch fit (0.5B
without it: up to 4), but that only shortens gradient accumulation, and a 10,048-token
sequence already fills a forward pass, so the recomputation would cost more than the larger
micro-batch gains. (ORZ itself checkpointed every size; ``--ppo.activation-checkpointing``
turns it on here.)
"""

from pathlib import Path

from orz_rl.config import DataConfig, LayoutConfig, ModelConfig, PPOConfig, TrainConfig

#: Qwen2.5-0.5B on one node of 8 GPUs: 4 training ranks, 4 vLLM engines (1 GPU each).
#: One sequence per micro-batch: about 23 GiB of a training GPU by the estimate (two: 42;
#: with activation checkpointing three: 9).
ORZ_0P5B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-0.5B"),
    data=DataConfig(train_file="data/orz_math_57k_collected.json"),
    ppo=PPOConfig(micro_batch_size=1),
    layout=LayoutConfig(nodes=1, gpus_per_node=8, vllm_engines=4, vllm_tensor_parallel=1, ray_address="auto"),
    run_dir=Path("runs/orz-0.5b"),
)
#: Qwen2.5-1.5B on one node of 8 GPUs: 4 training ranks, 4 vLLM engines (1 GPU each).
#: One sequence per micro-batch: about 43 GiB of a training GPU by the estimate (two: 77;
#: with activation checkpointing two: 14).
ORZ_1P5B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-1.5B"),
    data=DataConfig(train_file="data/orz_math_57k_collected.json"),
    ppo=PPOConfig(micro_batch_size=1),
    layout=LayoutConfig(nodes=1, gpus_per_node=8, vllm_engines=4, vllm_tensor_parallel=1, ray_address="auto"),
    run_dir=Path("runs/orz-1.5b"),
)
#: Qwen2.5-7B on 4 nodes of 8 GPUs: 16 training ranks, 16 vLLM engines (1 GPU each).
#: Activation checkpointing and two sequences per micro-batch: about 22 GiB of a training GPU
#: by the estimate (three: 27; without checkpointing even one sequence needs 81).
ORZ_7B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-7B"),
    data=DataConfig(train_file="data/orz_math_72k_collection_extended.json"),
    ppo=PPOConfig(micro_batch_size=2, activation_checkpointing=True),
    layout=LayoutConfig(
        nodes=4, gpus_per_node=8, vllm_engines=16, vllm_tensor_parallel=1, ray_address="auto"
    ),
    run_dir=Path("runs/orz-7b"),
)
#: Qwen2.5-32B on 16 nodes of 8 GPUs: 64 training ranks, 16 vLLM engines of 4 GPUs (tensor
#: parallel). Activation checkpointing and two sequences per micro-batch: about 36 GiB of a
#: training GPU by the estimate (three: 45; without checkpointing even one sequence needs 234).
ORZ_32B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-32B"),
    data=DataConfig(train_file="data/orz_math_72k_collection_extended.json"),
    ppo=PPOConfig(micro_batch_size=2, activation_checkpointing=True),
    layout=LayoutConfig(
        nodes=16, gpus_per_node=8, vllm_engines=16, vllm_tensor_parallel=4, ray_address="auto"
    ),
    run_dir=Path("runs/orz-32b"),
)

"""ORZ's published configurations (Qwen2.5 base models), with the paper's figures.

They load Qwen2.5 by name, which needs a GPU machine with hub access (or a local
copy passed as ``--model.path``). Every other figure is the
:class:`~orz_rl.config.TrainConfig` default, i.e. ``shared/ORZ_RECIPE.md``.
"""

from pathlib import Path

from orz_rl.config import DataConfig, ModelConfig, TrainConfig

ORZ_0P5B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-0.5B"),
    data=DataConfig(train_file="data/orz_math_57k_collected.json"),
    run_dir=Path("runs/orz-0.5b"),
)
ORZ_1P5B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-1.5B"),
    data=DataConfig(train_file="data/orz_math_57k_collected.json"),
    run_dir=Path("runs/orz-1.5b"),
)
ORZ_7B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-7B"),
    data=DataConfig(train_file="data/orz_math_72k_collection_extended.json"),
    run_dir=Path("runs/orz-7b"),
)
ORZ_32B = TrainConfig(
    model=ModelConfig(path="Qwen/Qwen2.5-32B"),
    data=DataConfig(train_file="data/orz_math_72k_collection_extended.json"),
    run_dir=Path("runs/orz-32b"),
)

"""Named recipes for ``orz-rl train RECIPE`` (installed as ``orz_rl.recipes``)."""

from orz_rl.config import TrainConfig
from orz_rl.recipes.cpu_default import CPU_DEFAULT, CPU_MIXED, CPU_TOOLS
from orz_rl.recipes.orz import ORZ_0P5B, ORZ_1P5B, ORZ_7B, ORZ_32B

RECIPES: dict[str, tuple[str, TrainConfig]] = {
    "cpu-default": ("tiny embedded Qwen2 learns addition on a CPU in minutes", CPU_DEFAULT),
    "cpu-mixed": ("cpu-default with the addition also asked as code, run in the sandbox", CPU_MIXED),
    "cpu-tools": ("tiny model learns 3-digit products by calling a Python tool", CPU_TOOLS),
    "orz-0.5b": ("ORZ with Qwen2.5-0.5B base", ORZ_0P5B),
    "orz-1.5b": ("ORZ with Qwen2.5-1.5B base", ORZ_1P5B),
    "orz-7b": ("ORZ with Qwen2.5-7B base", ORZ_7B),
    "orz-32b": ("ORZ with Qwen2.5-32B base", ORZ_32B),
}

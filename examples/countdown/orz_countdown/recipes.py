"""A recipe of one's own: the CPU default's scale on Countdown.

    orz-rl train orz_countdown.recipes:CPU
"""

from dataclasses import replace
from pathlib import Path

from orz_countdown.task import SHIPPED
from orz_rl.recipes.cpu_default import CPU_DEFAULT

CPU = replace(
    CPU_DEFAULT,
    task="countdown",
    data=replace(CPU_DEFAULT.data, train_file=str(SHIPPED), generate_toy_task=False),
    run_dir=Path("runs/countdown"),
)

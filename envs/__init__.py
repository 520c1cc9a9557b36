"""orz-rl's reward environments and the registry of tasks (installed as ``orz_rl.envs``).

A task of one's own needs three names from here: :class:`RuleRewardEnv` (the base of a
rule-rewarded env), :class:`Task` and :class:`EnvArgs` (the README's "How to: a task of your own").
"""

from orz_rl.envs.registry import get_task, registered_tasks
from orz_rl.envs.rule_reward import RuleRewardEnv
from orz_rl.envs.task import EnvArgs, Task

__all__ = ["EnvArgs", "RuleRewardEnv", "Task", "get_task", "registered_tasks"]

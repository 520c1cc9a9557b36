"""The registry of tasks: built-in ones, ones other packages register, ones named by module.

``--task`` takes a registered name, ``FILE.py:NAME`` or ``package.module:NAME``. A separate pip package adds
a task under a name with an entry point::

    [project.entry-points."orz_rl.tasks"]
    countdown = "orz_countdown.task:TASK"

Built-in tasks are named here by module path only: nothing is imported until a task is asked for.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from orz_rl.envs.task import Task
from orz_rl.plugins import PluginError, is_spec, load_object

ENTRY_POINT_GROUP = "orz_rl.tasks"

BUILTIN = {
    "math": "orz_rl.envs.math:TASK",
    "code": "orz_rl.envs.code:TASK",
    "mixed": "orz_rl.envs.mixed:TASK",
}


class UnknownTaskError(ValueError):
    """A task name that nothing registers; the message lists the known ones."""


def registered_tasks() -> dict[str, str]:
    """Every task name with the ``module:NAME`` it loads: built-in, then entry points."""
    found = dict(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return found


def get_task(spec: str) -> Task:
    """The task ``spec`` names: a registered name, ``FILE.py:NAME`` or ``package.module:NAME``."""
    registered = registered_tasks()
    target = registered.get(spec, spec if is_spec(spec) else None)
    if target is None:
        raise UnknownTaskError(
            f"task {spec!r} is not registered; known: {', '.join(registered)} "
            "(or FILE.py:NAME or package.module:NAME of a Task; orz-rl tasks lists them)"
        )
    try:
        task = load_object(target, "task")
    except PluginError as e:
        raise UnknownTaskError(str(e)) from None
    if not isinstance(task, Task):
        raise UnknownTaskError(f"task {spec!r}: {target} is a {type(task).__name__}, not an orz_rl Task")
    return task

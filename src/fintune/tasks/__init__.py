"""Tasks as declarations: what a task's labels are, what its model answers, how it is scored
and described. Callers ask the task (``task_of(cfg.task).scores_classes``) rather than compare
its name; a new task is one module here, registered by name.

Torch-free and below the config: validating a config reads these declarations.
"""

from fintune.tasks.base import TASKS, Task, register, task_names, task_of

# Registered in this order, which is the order configs and errors list them in.
from fintune.tasks import classification, regression, generation, token_classification, multi_label, relation  # noqa: E402, F401, I001, E501

__all__ = ["TASKS", "Task", "register", "task_of", "task_names"]

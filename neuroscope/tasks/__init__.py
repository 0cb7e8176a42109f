"""Linguistic tasks: one labelling function per property, registered in `TASKS`.

Importing this package registers the built-in tasks (one module per family).
"""

from neuroscope.tasks import chunking, lexical, neurox, ud  # noqa: F401  (registration)
from neuroscope.tasks.base import TaskCorpus, load_task, task

__all__ = ["TaskCorpus", "load_task", "task"]

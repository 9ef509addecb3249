"""Pieces several tasks share: the task contract (`api`), image datasets, torchvision
models, and input expansion. Nothing here is a task."""

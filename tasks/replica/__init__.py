"""Replica trainings and the replica-distance metric (paper Sec. 4.2, 6.6-6.8, Fig. 8):
`task` trains the replicas, `distance` turns their final weights into the RD metric."""
from symsweep.tasks.replica.task import TASK

__all__ = ["TASK"]

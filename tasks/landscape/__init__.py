"""Loss-landscape enumeration (paper Sec. 3.2, 4.1, 6.4-6.5, Fig. 6-7): `task` is the
experiment, `enumerate` the exhaustive +-1 enumeration, `nets` the networks it enumerates."""
from symsweep.tasks.landscape.task import TASK

__all__ = ["TASK"]

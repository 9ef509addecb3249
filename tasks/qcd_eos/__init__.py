"""The QCD equation of state with residual mass networks (paper Sec. 2.2, 6.2.1, Fig. 3):
`task` fits them, `hotqcd` reads the lattice data and its parametrization."""
from symsweep.tasks.qcd_eos.task import TASK

__all__ = ["TASK"]

"""The paper's experiments, installed as `symsweep.tasks`: one plugin package among others.

Each task module exposes `TASK` (a `symsweep.Task`) and is registered in pyproject.toml's
`symsweep.tasks` entry-point group, exactly as a user's own package registers its tasks;
the framework (`symsweep`) never imports this package. The paper's claims (`claims.yaml`,
read by `symsweep reproduce`) are registered in the `symsweep.claims` group as `CLAIMS`.
"""
from pathlib import Path

CLAIMS = Path(__file__).resolve().parent / "claims.yaml"

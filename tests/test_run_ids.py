"""Run ids are the identity of the science: moving code must not change them. The file
tests/data/run_ids.json holds, per spec in sweeps/, the number of runs and a hash of their
ids as computed before the layout change (and after every deliberate change since).

A change to a task's config (a new field, a new default) changes the ids of its runs by
design; then regenerate the file on purpose and say why in the commit:

    python tests/test_run_ids.py --write
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "run_ids.json"


def current() -> dict:
    from orchestrator.spec import expand, load_spec
    out = {}
    for path in sorted((REPO / "sweeps").glob("*.yaml")):
        ids = [r.run_id for r in expand(load_spec(path))]
        out[path.name] = {"runs": len(ids), "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    return out


def test_run_ids_of_every_spec_are_unchanged():
    golden = json.loads(GOLDEN.read_text())
    now = current()
    changed = sorted(k for k in set(golden) | set(now) if golden.get(k) != now.get(k))
    assert not changed, f"run ids changed for {changed}: see this file's docstring"


if __name__ == "__main__" and "--write" in sys.argv:
    sys.path.insert(0, str(REPO))
    GOLDEN.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")

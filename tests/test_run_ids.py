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

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "run_ids.json"


def current() -> dict:
    from symsweep.spec import expand, load_spec
    out = {}
    for path in sorted((REPO / "sweeps").glob("*.yaml")):
        ids = [r.run_id for r in expand(load_spec(path))]
        out[path.name] = {"runs": len(ids), "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    return out


@pytest.mark.parametrize("task,field,value", [("image_classification", "capture", "cuda_graph"),
                                              ("replica", "capture", "cuda_graph"),
                                              ("pinn", "vectorize", "on")])
def test_a_setting_added_later_is_left_out_of_the_run_id_at_its_default(task, field, value):
    """A field in the config class's OMIT_AT_DEFAULT keeps the ids earlier sweeps gave their
    runs while it is at its default, and makes a run of its own when set."""
    from symsweep import get_task
    from symsweep.spec import build_config, config_to_dict, run_id
    t = get_task(task)
    plain = config_to_dict(build_config(t, {}))
    assert field not in plain
    assert getattr(build_config(t, plain), field) == t.config_cls.OMIT_AT_DEFAULT[field]
    changed = config_to_dict(build_config(t, {field: value}))
    assert changed[field] == value
    assert run_id(task, plain, 0) != run_id(task, changed, 0)


def test_run_ids_of_every_spec_are_unchanged():
    golden = json.loads(GOLDEN.read_text())
    now = current()
    changed = sorted(k for k in set(golden) | set(now) if golden.get(k) != now.get(k))
    assert not changed, f"run ids changed for {changed}: see this file's docstring"


if __name__ == "__main__" and "--write" in sys.argv:
    sys.path.insert(0, str(REPO))
    GOLDEN.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


def _random_value(rng, depth: int = 0):
    kind = rng.integers(0, 7 if depth < 2 else 4)
    if kind == 0:
        return int(rng.integers(-3, 3))
    if kind == 1:
        return float(rng.choice([0.0, 0.1, 1e-3, -2.5]))
    if kind == 2:
        return str(rng.choice(["a", ',"seed":0,', '"seed":1', "seed", ""]))
    if kind == 3:
        return bool(rng.integers(0, 2))
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.integers(0, 3))]
    return {str(rng.choice(["seed", "lr", "steps", "x", "seed2"])): _random_value(rng, depth + 1)
            for _ in range(rng.integers(1, 3))}


def test_the_fast_path_of_many_seeds_equals_run_id_for_any_config():
    """The planner hashes many seeds of one config at once; it must give run_id()'s ids for
    every config, including ones with a field named `seed`, nested values, and strings that
    look like the seed's JSON."""
    import numpy as np

    from symsweep.spec import _run_ids, run_id
    rng = np.random.default_rng(0)
    configs = [{"lr": 0.1, "seed": 0, "steps": 5}, {"lr": 0.1, "seed": 1, "steps": 5},
               {"a": {"seed": 0, "b": 1}}, {"name": ',"seed":0,', "z": 1}]
    for _ in range(300):
        configs.append({str(rng.choice(["seed", "lr", "steps", "aseed", "zz"])): _random_value(rng)
                        for _ in range(rng.integers(1, 5))})
    for config in configs:
        for task in ("synthetic", "t,\"seed\":0,"):
            seeds = [0, 1, 2, 7, 2**32 - 1]
            assert _run_ids(task, config, seeds) == [run_id(task, config, s) for s in seeds], config
    # and the collision is gone: {seed: 0} with seed 1 vs {seed: 1} with seed 0
    a = _run_ids("synthetic", {"lr": 0.1, "seed": 0, "steps": 5}, [1])[0]
    b = _run_ids("synthetic", {"lr": 0.1, "seed": 1, "steps": 5}, [0])[0]
    assert a != b

"""Adaptive vs fixed seeds: runs spent, and whether they reach the same decisions.

    python bench/adaptive.py                   # synthetic task, then the digits ablation
    python bench/adaptive.py --skip-digits

For each grid, the fixed-seed sweep (max seeds at every point) and the adaptive sweep
(sweeps/adaptive-digits.yaml's design: rounds, alpha spending; see symsweep.adaptive)
both run through `symsweep run --executor inline`. The fixed sweep decides each
comparison once, at max seeds, with a 95% paired t interval; the adaptive one decides at
its looks. Prints key=value: runs of each, the saving, and how many comparisons agree
(same direction decided, or both undecided).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from symsweep.adaptive import DECIDED, paired_interval  # noqa: E402
from symsweep.store import SweepStore  # noqa: E402

SYNTHETIC = """
name: {name}
task: synthetic
fixed: {{steps: 3, lr: 0.05, n_samples: 16}}
axes: {{n_features: [4, 5, 6, 8, 16]}}
seeds: {seeds}
runs_per_trial: 5
"""
DIGITS = """
name: {name}
task: image_classification
fixed: {{dataset: digits, model: small_cnn, fill: 0.5, epochs: 3}}
axes: {{expansion_factor: [1, 2, 3]}}
seeds: {seeds}
runs_per_trial: 3
"""


def run(spec_text: str, results: Path) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(textwrap.dedent(spec_text))
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "symsweep.cli", "run", f.name, "--results", str(results),
                          "--executor", "inline", "--no-summary"], cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"sweep failed:\n{res.stdout}\n{res.stderr}")
    return time.perf_counter() - start


def decisions(runs, axis: str, base, metric: str, alpha: float = 0.05) -> dict:
    """Per level: +1 / -1 decided (direction of the mean difference), 0 undecided."""
    pivot = runs.pivot_table(index="seed", columns=f"cfg_{axis}", values=f"metric_{metric}")
    out = {}
    for level in pivot.columns:
        if level == base:
            continue
        diffs = (pivot[level] - pivot[base]).dropna().to_numpy()
        mean, low, high = paired_interval(diffs, alpha)
        out[level] = 0 if low <= 0 <= high else int(np.sign(mean))
    return out


def compare(name: str, template: str, axis: str, base, metric: str, adaptive: str, top: int, root: Path) -> None:
    fixed_s = run(template.format(name=f"{name}-fixed", seeds=top), root)
    adaptive_s = run(template.format(name=f"{name}-adaptive", seeds=adaptive), root)
    fixed = SweepStore(str(root / f"{name}-fixed")).read_runs()
    ada = SweepStore(str(root / f"{name}-adaptive")).read_runs()
    fixed_d = decisions(fixed, axis, base, metric)
    from symsweep import load_spec
    from symsweep.sweep import make_plan
    spec_path = root / "adaptive.yaml"
    spec_path.write_text(textwrap.dedent(template.format(name=f"{name}-adaptive", seeds=adaptive)))
    spec = load_spec(spec_path)
    plan = make_plan(spec, SweepStore(str(root / f"{name}-adaptive")))
    configs = {r.point_id: r.config for r in plan.runs}
    agree = 0
    for point, d in plan.adaptive.decisions.items():
        if d.baseline_point is None:
            continue
        level = configs[point][axis]
        verdict = int(np.sign(d.mean)) if d.state == DECIDED else 0
        agree += verdict == fixed_d[level]
    n_cmp = len(fixed_d)
    print(f"{name}_runs_fixed={len(fixed)}", flush=True)
    print(f"{name}_runs_adaptive={len(ada)}", flush=True)
    print(f"{name}_runs_saved_pct={100 * (1 - len(ada) / len(fixed)):.0f}", flush=True)
    print(f"{name}_decided_fixed={sum(v != 0 for v in fixed_d.values())}/{n_cmp}", flush=True)
    print(f"{name}_decided_adaptive={sum(d.state == DECIDED for d in plan.adaptive.decisions.values())}/{n_cmp}",
          flush=True)
    print(f"{name}_same_decisions={agree}/{n_cmp}", flush=True)
    print(f"{name}_wall_s_fixed={fixed_s:.1f} {name}_wall_s_adaptive={adaptive_s:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="symsweep-adaptive-"))
    compare("synthetic", SYNTHETIC, "n_features", 4, "loss",
            "{adaptive: {metric: loss, start: 5, step: 5, max: 30, baseline: {n_features: 4}}}", 30, root)
    if not args.skip_digits:
        compare("digits", DIGITS, "expansion_factor", 1, "test_acc",
                "{adaptive: {metric: test_acc, start: 3, step: 3, max: 12, baseline: {expansion_factor: 1}}}",
                12, root)


if __name__ == "__main__":
    main()

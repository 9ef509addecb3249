"""The GPU path: what can be checked without a GPU is checked here (device choice, `gpus`
validation, packing advice, the device bench at its CPU size); the `gpu`-marked tests run
the CUDA paths and skip with a reason where there is no CUDA device."""
from __future__ import annotations

import pandas as pd
import pytest

from orchestrator import SpecError, spec_from_dict
from orchestrator.gpu import CUDA_CONTEXT_MB, advice_line, cuda_available, packing_advice, pick_device

BASE = {"name": "g", "task": "synthetic", "seeds": 1}


def test_a_trial_without_gpus_runs_on_the_cpu_and_one_with_gpus_on_cuda_when_there():
    assert pick_device(0.0) == "cpu"
    assert pick_device(0.5) == ("cuda" if cuda_available() else "cpu")


@pytest.mark.parametrize("gpus, ok", [(0.25, True), (0.5, True), (1, True), (2, True), (1.5, False), (2.5, False)])
def test_gpus_above_one_must_be_whole(gpus, ok):
    raw = {**BASE, "resources": {"cpus": 1, "gpus": gpus}}
    if ok:
        assert spec_from_dict(raw).resources.gpus == gpus
    else:
        with pytest.raises(SpecError, match=r"above 1 a trial takes whole GPUs"):
            spec_from_dict(raw)


def test_packing_advice_fits_the_trials_with_their_contexts():
    n, fraction = packing_advice(peak_mb=1500, gpu_mb=80_000)
    assert n == int(80_000 * 0.9 // (1500 + CUDA_CONTEXT_MB)) == 36
    assert fraction * n <= 1 and fraction * (n + 1) > 1 - 1e-3
    assert packing_advice(peak_mb=100_000, gpu_mb=80_000) == (1, 1.0)  # never less than one trial
    with pytest.raises(ValueError):
        packing_advice(peak_mb=-1, gpu_mb=1)


def test_status_advice_reads_the_run_rows():
    rows = pd.DataFrame({"peak_gpu_mem_mb": [700.0, 900.0, None], "gpu_mem_total_mb": [81559.0, 81559.0, None],
                         "device": ["cuda:NVIDIA H100", "cuda:NVIDIA H100", "cpu:x86_64"]})
    line = advice_line(rows)
    assert "runs peak at 900 MB on cuda:NVIDIA H100 (81559 MB): about 52 trials fit" in line
    assert "resources.gpus: 0.0192" in line
    assert advice_line(pd.DataFrame({"peak_gpu_mem_mb": [None], "device": ["cpu:x86_64"]})) is None


def test_a_gpu_spec_without_cuda_runs_on_the_cpu_and_says_so_once(cli, tmp_path):
    if cuda_available():
        pytest.skip("this machine has CUDA: the fallback is for machines without it")
    spec = tmp_path / "g.yaml"
    spec.write_text("name: g\ntask: synthetic\nseeds: 3\nruns_per_trial: 3\nresources: {cpus: 1, gpus: 0.5}\n")
    res = cli("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("resources.gpus=0.5 but this process sees no CUDA device") == 1
    from conftest import ledger
    runs = ledger(tmp_path / "res" / "g")
    assert set(runs["device"].str.split(":").str[0]) == {"cpu"} and runs["peak_gpu_mem_mb"].isna().all()

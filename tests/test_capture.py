"""The captured step's bookkeeping (symsweep.tasks.common.capture), off CUDA: what the CPU CI
can check of the CUDA-graph path. The graphs themselves: tests/test_gpu.py."""
from __future__ import annotations

import torch

from symsweep.tasks.common.capture import GraphedStep


def test_each_input_signature_gets_its_own_static_tensors_after_its_warm_up():
    calls = []

    def step(x, mask):
        calls.append((x.data_ptr(), None if mask is None else mask.data_ptr()))
        return x.sum(0) * (1 if mask is None else mask.float().sum())

    graphed = GraphedStep(step, "cpu", warmup=2)
    xs = [torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3), torch.randn(2, 3), torch.randn(4, 3)]
    outs = [graphed(x, None) for x in xs]
    for x, out in zip(xs, outs):  # every call computes on its own batch's values
        assert torch.equal(out, x.sum(0))
    assert graphed.captured == 1  # (4, 3) after 2 warm-up calls; (2, 3) still warming up
    # warm-up calls see the caller's tensors; the later ones one static tensor, always the same
    assert calls[0][0] == xs[0].data_ptr() and calls[1][0] == xs[1].data_ptr()
    assert calls[2][0] == calls[4][0] != xs[2].data_ptr()
    mask = torch.tensor([True, False, True, True])
    for _ in range(3):
        assert torch.equal(graphed(xs[0], mask), xs[0].sum(0) * 3)
    assert graphed.captured == 2  # a None in another place is another signature


def test_the_result_is_a_copy_that_the_next_step_does_not_overwrite():
    graphed = GraphedStep(lambda x: x * 2, "cpu", warmup=0)
    first = graphed(torch.ones(3))
    graphed(torch.full((3,), 5.0))
    assert torch.equal(first, torch.full((3,), 2.0))


def test_the_hook_before_a_capture_runs_only_where_a_graph_is_recorded():
    ran = []
    graphed = GraphedStep(lambda x: x + 1, "cpu", warmup=1, before_capture=lambda: ran.append(1))
    for _ in range(3):
        graphed(torch.zeros(2))
    assert ran == [] and graphed.captured == 1

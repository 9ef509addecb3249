"""A training step replayed from CUDA graphs (`capture: cuda_graph` of the image and replica
tasks).

A small model's step is a few hundred short kernels: at the paper's batch 64 the GPU waits
on Python and on kernel launches, not on arithmetic. A CUDA graph records the step's
kernels once and replays them with one launch. `GraphedStep` wraps a step function of
tensors (some may be None) that returns one tensor:

- each input signature (shapes, dtypes, which inputs are None) gets its own graph, so an
  epoch's last, partial batch is replayed too once it has been seen `warmup` times;
- the first `warmup` calls of a signature run eagerly on a side stream (what capture needs:
  lazily made optimizer state, cuBLAS workspaces);
- then the inputs are copied into the graph's static tensors and the graph replays; the
  result is a copy of the graph's static output (the next replay overwrites it).

Off CUDA nothing is recorded, but everything else runs: the static tensors are filled and
the step runs eagerly on them, so the CPU tests check the copying and the per-signature
bookkeeping against the plain step, bit for bit.

What the step must allow (the caller's part): no host sync and no randomness drawn inside
it (draw outside and pass the draws in), no CPU scalar that changes between calls (a
learning rate is a device tensor, Adam's step count lives on the device: `capturable`),
autocast without its weight cache, and gradients set to None once before the capture.
"""
from __future__ import annotations

from typing import Callable

import torch


def _signature(tensors) -> tuple:
    return tuple(None if t is None else (tuple(t.shape), t.dtype) for t in tensors)


class GraphedStep:
    """`GraphedStep(fn, device)(*tensors)`: `fn(*tensors)`, replayed from a CUDA graph per
    input signature after `warmup` eager calls of it (see the module)."""

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, warmup: int = 3,
                 before_capture: Callable[[], None] | None = None):
        self.fn, self.device, self.warmup = fn, torch.device(device), warmup
        self.before_capture = before_capture
        self.record = self.device.type == "cuda"
        self.seen: dict[tuple, int] = {}
        self.graphs: dict[tuple, tuple] = {}  # signature -> (static inputs, static output, graph or None)
        self.side = None  # the warm-up calls' stream (CUDA), made at the first one

    @property
    def captured(self) -> int:
        """How many signatures replay from a graph (or, off CUDA, from static tensors)."""
        return len(self.graphs)

    def __call__(self, *tensors: torch.Tensor | None) -> torch.Tensor:
        key = _signature(tensors)
        entry = self.graphs.get(key)
        if entry is None:
            if self.seen.get(key, 0) < self.warmup:
                self.seen[key] = self.seen.get(key, 0) + 1
                return self._warm(tensors)
            entry = self.graphs[key] = self._capture(tensors)
        static_in, static_out, graph = entry
        for static, t in zip(static_in, tensors):
            if static is not None:
                static.copy_(t, non_blocking=True)
        if graph is None:  # off CUDA: the same step on the static tensors
            static_out = self.fn(*static_in)
        else:
            graph.replay()
        return static_out.clone()

    def _warm(self, tensors) -> torch.Tensor:
        if not self.record:
            return self.fn(*tensors)
        if self.side is None:
            self.side = torch.cuda.Stream(self.device)
        self.side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.side):
            out = self.fn(*tensors)
        torch.cuda.current_stream(self.device).wait_stream(self.side)
        return out

    def _capture(self, tensors) -> tuple:
        static_in = tuple(None if t is None else t.clone() for t in tensors)
        if not self.record:
            return static_in, None, None
        if self.before_capture is not None:
            self.before_capture()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.fn(*static_in)
        return static_in, static_out, graph

"""Exhaustive enumeration of the +-1 weight configurations of small layered networks.

The loss-landscape experiments of the paper (Sec. 3.2, 6.4, 6.5) evaluate every network
whose weights are each -1 or +1: 2^20 to 2^26 configurations. One forward pass per
configuration is hopeless in Python and slow even batched naively. This module uses the
layered structure instead:

* A unit's output depends only on its own incoming +-1 weights (its *pattern*) and on the
  previous layer's outputs, which every unit of the layer shares. So a layer is evaluated
  once per pattern (2^fan_in of them, 2^(fan_in+1) with a bias), and a configuration of
  the layer is a choice of one pattern per unit.
* Configurations are walked as a prefix tree, one layer at a time. The next layer's
  pre-activations for every choice of patterns are outer sums of the per-pattern tables
  (broadcasting, no gather), computed in chunks of at most `max_elements` numbers, so
  memory stays bounded however many configurations there are.
* An MSE loss on a linear output unit needs no per-sample work in the last step:
  mean((sum_u s_u h_u - y)^2) expands into Gram matrices of the last hidden layer's
  patterns, so its cost does not grow with the number of samples.

Configuration index: mixed radix over the units, layer by layer from the input, unit 0
most significant within a layer. A unit's pattern index has one bit per parameter (its
incoming weights in order, then its bias), most significant first, bit 1 = +1 and
bit 0 = -1. `decode` turns an index back into patterns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

ACTIVATIONS = ("tanh", "relu", "none")
LOSSES = ("mse", "cross_entropy")


def sign_patterns(n_bits: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
                  ) -> torch.Tensor:
    """All 2^n_bits vectors of +-1 in index order: row p is the bits of p, MSB first (1 -> +1)."""
    p = torch.arange(2 ** n_bits, device=device)
    bits = (p[:, None] >> torch.arange(n_bits - 1, -1, -1, device=device)) & 1
    return (2 * bits - 1).to(dtype)


def activate_(t: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply an activation in place (the tensors here are large temporaries)."""
    if activation == "tanh":
        return t.tanh_()
    if activation == "relu":
        return t.relu_()
    if activation == "none":
        return t
    raise ValueError(f"activation {activation!r} unknown; allowed: {', '.join(ACTIVATIONS)}")


@dataclass(frozen=True)
class Layer:
    """A dense layer after the first: `units` units, each with `fan_in` +-1 weights."""

    units: int
    fan_in: int
    bias: bool = False
    activation: str = "tanh"

    @property
    def n_patterns(self) -> int:
        return 2 ** (self.fan_in + self.bias)

    def patterns(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weights (P, fan_in), bias (P,) or None) of every pattern, with `like`'s dtype and device."""
        s = sign_patterns(self.fan_in + self.bias, like.dtype, like.device)
        return s[:, :self.fan_in], (s[:, self.fan_in] if self.bias else None)


@dataclass(frozen=True)
class LayeredNet:
    """A network ready for enumeration.

    first:  (U1, P1, N) output of each first-layer unit under each of its P1 patterns, on
            each of the N samples. Units may differ (e.g. a fixed dropout mask per unit);
            an expanded view (stride 0 over units) is the common case. (U1, P1, N, F): each
            unit gives F outputs that share its pattern (a conv channel's feature map,
            flattened); the next layer then has U1 * F inputs, unit-major.
    layers: the layers after the first, the last being the output layer.
    loss:   "mse" (one output unit, targets y) or "cross_entropy" (two output units are
            the logits of classes 0 and 1, labels y in {0, 1}).
    y:      (N,) targets.
    """

    first: torch.Tensor
    layers: tuple[Layer, ...]
    loss: str
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} unknown; allowed: {', '.join(LOSSES)}")
        if self.first.dim() not in (3, 4):
            raise ValueError(f"first must be (U1, P1, N) or (U1, P1, N, F), got shape {tuple(self.first.shape)}")
        if self.first.dim() == 4 and not self.layers:
            raise ValueError("a first layer with several outputs per unit needs a layer after it")
        fan_in = self.first.shape[0] * (self.first.shape[3] if self.first.dim() == 4 else 1)
        for layer in self.layers:
            if layer.fan_in != fan_in:
                raise ValueError(f"layer fan_in {layer.fan_in} != previous layer's units {fan_in}")
            fan_in = layer.units
        want = 1 if self.loss == "mse" else 2
        if fan_in != want:
            raise ValueError(f"loss {self.loss!r} needs {want} output unit(s), the network has {fan_in}")

    @property
    def radices(self) -> list[tuple[int, int]]:
        """(units, patterns per unit) of every layer, input side first."""
        return [(self.first.shape[0], self.first.shape[1])] + [(layer.units, layer.n_patterns) for layer in self.layers]

    @property
    def num_configs(self) -> int:
        return math.prod(p ** u for u, p in self.radices)


def decode(net: LayeredNet, index: int) -> list[list[int]]:
    """The pattern index of every unit, per layer, of configuration `index`."""
    if not 0 <= index < net.num_configs:
        raise ValueError(f"index {index} outside 0..{net.num_configs - 1}")
    out: list[list[int]] = []
    for units, patterns in reversed(net.radices):
        digits = []
        for _ in range(units):
            index, d = divmod(index, patterns)
            digits.append(d)
        out.append(digits[::-1])
    return out[::-1]


# ----------------------------------------------------------------------------- enumeration


def iter_losses(net: LayeredNet, max_elements: int = 2 ** 20, gram: bool = True) -> Iterator[torch.Tensor]:
    """The loss of every configuration, in index order, as consecutive 1-D chunks.

    max_elements bounds the size of the large temporaries (numbers, not bytes): blocks are cut
    along prefix configurations and, where one prefix alone is too big, along its units.
    gram: use the Gram-matrix shortcut for an MSE loss on a linear, bias-free output unit.
    """
    yield from _descend(net.first.unsqueeze(0), net.layers, net, max_elements, gram)


def _descend(z: torch.Tensor, layers: tuple[Layer, ...], net: LayeredNet, max_elements: int,
             gram: bool) -> Iterator[torch.Tensor]:
    # z: (B, U, P, N) = unit u of the current layer under pattern p, for B prefix configurations;
    # (B, U, P, N, F) for a first layer whose units give F outputs each.
    if not layers:
        yield _output_loss(z, net)
        return
    layer, rest = layers[0], layers[1:]
    b_all, units, patterns, n = z.shape[:4]
    combos = patterns ** units
    if gram and z.dim() == 4 and not rest and net.loss == "mse" and layer.activation == "none" and not layer.bias:
        step = max(1, max_elements // max(combos * layer.n_patterns, units * patterns * n))
        for b0 in range(0, b_all, step):
            yield _mse_gram(z[b0:b0 + step], layer, net.y)
        return
    w, bias = layer.patterns(z)
    for pre in _preactivation_blocks(z, w, None if bias is None else bias[None, :, None], max_elements):
        nxt = activate_(pre, layer.activation).reshape(-1, 1, layer.n_patterns, n)
        yield from _descend(nxt.expand(-1, layer.units, -1, -1), rest, net, max_elements, gram)


def _preactivation_blocks(z: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, max_elements: int
                          ) -> Iterator[torch.Tensor]:
    """The next layer's pre-activations for every choice of patterns of z's units, in index
    order, as blocks of (states, Q, N) of at most about max_elements numbers.

    bias: None, or (1 or B, Q, 1 or N), shared by all states or one per state.
    z may carry F outputs per unit (B, U, P, N, F); w then has U * F columns, unit-major."""
    b_all, units, patterns, n = z.shape[:4]
    feats = z.shape[4] if z.dim() == 5 else 1
    per_state = patterns ** units * w.shape[0] * n
    if per_state <= max_elements or units == 1:
        step = max(1, max_elements // per_state)
        for b0 in range(0, b_all, step):
            part = bias if bias is None or bias.shape[0] == 1 else bias[b0:b0 + step]
            yield _outer_preactivation(z[b0:b0 + step], w, part)
        return
    # One prefix state alone is too big: make the pattern of its first unit (the most
    # significant digit) part of the prefix, with that unit's term folded into a per-state bias.
    for b in range(b_all):
        fixed = _unit_term(z[b:b + 1, 0], w[:, :feats])[0]                       # (P, Q, N)
        if bias is not None:
            fixed = fixed + bias[0 if bias.shape[0] == 1 else b]
        rest = z[b:b + 1, 1:]
        yield from _preactivation_blocks(rest.expand(patterns, *rest.shape[1:]), w[:, feats:], fixed,
                                         max_elements)


def _unit_term(zu: torch.Tensor, wu: torch.Tensor) -> torch.Tensor:
    """One unit's contribution to the next layer: zu (b, P, N[, F]), wu (Q, F) -> (b, P, Q, N)."""
    if zu.dim() == 3:
        return zu[:, :, None, :] * wu[None, None, :, 0, None]
    return torch.einsum("bpnf,qf->bpqn", zu, wu)


def _outer_preactivation(z: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """pre[b, p_1..p_U, q, n] = sum_u w[q, u] z[b, u, p_u, n] + bias[b, q, n], as (b * P^U, Q, N)
    (with F outputs per unit: sum_u sum_f w[q, u F + f] z[b, u, p_u, n, f])."""
    b, units, patterns, n = z.shape[:4]
    q = w.shape[0]
    acc = None
    for u in range(units):
        if z.dim() == 5:
            feats = z.shape[4]
            shape = [b] + [1] * units + [q, n]
            shape[1 + u] = patterns
            term = _unit_term(z[:, u], w[:, u * feats:(u + 1) * feats]).reshape(shape)
        else:
            shape = [b] + [1] * units + [1, n]
            shape[1 + u] = patterns
            term = z[:, u].reshape(shape) * w[:, u].reshape([1] * (units + 1) + [q, 1])
        acc = term if acc is None else acc + term  # grows by broadcasting; only the last add is full size
    if bias is not None:
        acc = acc + bias.reshape([bias.shape[0]] + [1] * units + list(bias.shape[1:]))
    return acc.reshape(-1, q, n)


def _output_loss(z: torch.Tensor, net: LayeredNet) -> torch.Tensor:
    """z: (B, U_out, P, N) output units per pattern -> loss of every output-layer choice, flattened."""
    y = net.y
    if net.loss == "mse":
        return (z[:, 0] - y).square_().mean(-1).reshape(-1)
    # Binary cross entropy on two logits: CE = softplus(l_other - l_true).
    d = z[:, 1, None, :, :] - z[:, 0, :, None, :]          # (B, P0, P1, N): l1 - l0
    return F.softplus(d.mul_(1 - 2 * y)).mean(-1).reshape(-1)


def _mse_gram(z: torch.Tensor, layer: Layer, y: torch.Tensor) -> torch.Tensor:
    """MSE of a linear bias-free output unit over hidden outputs z (B, U, P, N), without N in the loop.

    mean_n (sum_u s_u h_u[n] - y[n])^2 = (sum_uv s_u s_v G_uv - 2 sum_u s_u g_u + y.y) / N with
    G the Gram matrix of the hidden patterns and g their dot products with y.
    """
    b, units, patterns, n = z.shape
    s, _ = layer.patterns(z)                                  # (Q, U)
    q = s.shape[0]
    if units == 1 or z.stride(1) == 0:  # units share one table (the usual case): one small Gram matrix
        table = z[:, 0]
        g = torch.bmm(table, table.transpose(1, 2))[:, None, :, None, :].expand(b, units, patterns, units, patterns)
        gy = (table @ y)[:, None, :].expand(b, units, patterns)
    else:
        flat = z.reshape(b, units * patterns, n)
        g = torch.bmm(flat, flat.transpose(1, 2)).reshape(b, units, patterns, units, patterns)
        gy = (flat @ y).reshape(b, units, patterns)

    def placed(t: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        # t: (b, P[, P]) -> broadcastable to (b, P_1..P_U, Q) with its P axes at `axes`
        shape = [b] + [1] * units + [1]
        for a in axes:
            shape[1 + a] = patterns
        return t.reshape(shape)

    sign = [s[:, u].reshape([1] * (units + 1) + [q]) for u in range(units)]
    # Per-unit terms are small; the cross terms are full size, so build them first and add
    # the small ones in place (three passes over the result for two units).
    small = [(placed(g[:, u, :, u, :].diagonal(dim1=-2, dim2=-1), (u,)) * sign[u] ** 2
              - 2 * placed(gy[:, u], (u,)) * sign[u]) / n for u in range(units)]
    small[0] = small[0] + float(y @ y) / n
    cross = [placed(g[:, u, :, v, :], (u, v)) * (sign[u] * sign[v] * (2 / n))
             for u in range(units) for v in range(u + 1, units)]
    terms = cross + small
    full = [b] + [patterns] * units + [q]
    acc = terms[0] if list(terms[0].shape) == full else terms[0].expand(full).clone()
    for t in terms[1:]:
        acc.add_(t)
    return acc.reshape(-1)


# ----------------------------------------------------------------------------- counting


class LossTally:
    """Streams loss chunks into distinct values (after rounding) with their multiplicities.

    Memory grows with the number of distinct losses, not with the number of configurations.
    Also keeps the exact minimum and the first configuration index that reaches it.
    """

    def __init__(self, decimals: int):
        self.decimals = decimals
        self.scale = 10.0 ** decimals
        self.count = 0
        self.min_loss = math.inf
        self.argmin = -1
        self._keys: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._pending = 0

    def add(self, losses: torch.Tensor) -> None:
        values = losses.detach().cpu().numpy().astype(np.float64, copy=False)
        if not np.all(np.isfinite(values)):
            raise FloatingPointError("non-finite loss in the enumeration")
        i = int(values.argmin())
        if values[i] < self.min_loss:
            self.min_loss, self.argmin = float(values[i]), self.count + i
        if np.abs(values).max() * self.scale >= 2 ** 62:
            raise OverflowError(f"losses too large to round at {self.decimals} decimals")
        keys, counts = np.unique(np.rint(values * self.scale).astype(np.int64), return_counts=True)
        self._keys.append(keys)
        self._counts.append(counts)
        self._pending += len(keys)
        self.count += len(values)
        if self._pending > 1 << 22:
            self._merge()

    def _merge(self) -> None:
        keys, inverse = np.unique(np.concatenate(self._keys), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate(self._counts)).astype(np.int64)
        self._keys, self._counts, self._pending = [keys], [counts], len(keys)

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted distinct rounded losses, how many configurations have each)."""
        if not self._keys:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        self._merge()
        return self._keys[0] / self.scale, self._counts[0]

"""The two networks of the loss-landscape experiments, in enumerable form and as plain torch.

* The random-number classifier (paper Sec. 3.2, 6.4): a tanh MLP on x (raw) or [x, c]
  (expanded), MSE to the label x > 0.5.
* The 2x2-image CNN (Sec. 4.1, 6.5): conv -> flatten (or global mean pool) -> dense ->
  logits, in five variants.

`build_*` returns a `LayeredNet` for `symsweep.tasks.landscape.enumerate`; `params_of` turns a configuration
index into ordinary weight tensors and `plain_loss` evaluates them with ordinary torch ops,
an independent path the tests (and every run, for its best configuration) check against.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from symsweep.tasks.landscape.enumerate import Layer, LayeredNet, activate_, decode, sign_patterns

CNN_VARIANTS = ("baseline", "dropout", "batchnorm", "equivariant", "wrong_equivariant")
CNN_POOLINGS = ("flatten", "mean")
BN_EPS = 1e-5


# ----------------------------------------------------------------------------- classifier


def classifier_inputs(x: torch.Tensor, expanded: bool, c: float) -> torch.Tensor:
    """(N,) numbers -> (N, 1) raw inputs or (N, 2) expanded inputs [x, c]."""
    cols = [x, torch.full_like(x, c)] if expanded else [x]
    return torch.stack(cols, dim=1)


def build_classifier(inputs: torch.Tensor, y: torch.Tensor, hidden_sizes: tuple[int, ...],
                     first_layer_bias: bool, output_activation: str) -> LayeredNet:
    """tanh MLP d_in -> hidden_sizes... -> 1 with +-1 weights, MSE to y."""
    d_in = inputs.shape[1]
    s = sign_patterns(d_in + first_layer_bias, inputs.dtype, inputs.device)
    pre = s[:, :d_in] @ inputs.T + (s[:, d_in:] if first_layer_bias else 0)   # (P1, N)
    first = activate_(pre, "tanh").unsqueeze(0).expand(hidden_sizes[0], -1, -1)
    sizes = list(hidden_sizes) + [1]
    layers = tuple(Layer(units=sizes[i + 1], fan_in=sizes[i],
                         activation="tanh" if i + 1 < len(hidden_sizes) else output_activation)
                   for i in range(len(hidden_sizes)))
    return LayeredNet(first=first, layers=layers, loss="mse", y=y)


# ----------------------------------------------------------------------------- CNN


CNN_DATASETS = ("signed_pairs", "pair_on_background")


def cnn_dataset(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu",
                reading: str = "signed_pairs") -> tuple[torch.Tensor, torch.Tensor]:
    """The 12 images of 2x2 pixels and their labels (our readings of Sec. 6.5 / Fig. 10).

    Each image holds one adjacent pixel pair: on the top row, the bottom row, the left column
    or the right column. Label 0: a horizontal pair; label 1: a vertical pair. Flips and the
    180-degree rotation keep a pair's orientation, so they keep the label; a 90-degree
    rotation turns every horizontal pair into a vertical one. The paper's figure is not in
    its text, so the pixel values are a reading, in two versions:

    * "signed_pairs": the pair on a zero background, valued (1, 1), (-1, -1) or (1, -1)
      (first, second pixel in reading order).
    * "pair_on_background": both pair pixels share one value and the other two pixels
      another: (pair, background) = (1, 0), (-1, 0) or (1, -1).
    """
    if reading not in CNN_DATASETS:
        raise ValueError(f"reading {reading!r} unknown; allowed: {', '.join(CNN_DATASETS)}")
    values = (((1, 1, 0), (-1, -1, 0), (1, -1, 0)) if reading == "signed_pairs"
              else ((1, 1, 0), (-1, -1, 0), (1, 1, -1)))            # (first, second, background)
    images, labels = [], []
    positions = [((0, 0), (0, 1), 0), ((1, 0), (1, 1), 0), ((0, 0), (1, 0), 1), ((0, 1), (1, 1), 1)]
    for a, b, label in positions:
        for va, vb, bg in values:
            img = torch.full((2, 2), float(bg), dtype=dtype)
            img[a], img[b] = va, vb
            images.append(img)
            labels.append(label)
    return torch.stack(images).to(device), torch.tensor(labels, dtype=dtype, device=device)


def filter_basis(variant: str, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
                 ) -> torch.Tensor:
    """(K, 3, 3): the conv filter of a channel is sum_k s_k basis[k] with s in {-1, +1}^K.

    baseline, dropout, batchnorm: 9 free weights. equivariant: one weight per orbit of the
    3x3 positions under flips and the 180-degree rotation (corners, top/bottom middle,
    left/right middle, centre: 4). wrong_equivariant: one per orbit under 90-degree
    rotations (corners, edge middles, centre: 3). A filter invariant under a group makes
    the padded convolution commute with that group; with global mean pooling the whole
    network is then invariant under it (so the wrong-equivariant network cannot tell a
    horizontal pair from its 90-degree turn); with flattening only the filter is.
    """
    if variant not in CNN_VARIANTS:
        raise ValueError(f"variant {variant!r} unknown; allowed: {', '.join(CNN_VARIANTS)}")
    if variant == "equivariant":
        orbits = [[(0, 0), (0, 2), (2, 0), (2, 2)], [(0, 1), (2, 1)], [(1, 0), (1, 2)], [(1, 1)]]
    elif variant == "wrong_equivariant":
        orbits = [[(0, 0), (0, 2), (2, 0), (2, 2)], [(0, 1), (1, 0), (1, 2), (2, 1)], [(1, 1)]]
    else:
        orbits = [[(i, j)] for i in range(3) for j in range(3)]
    basis = torch.zeros(len(orbits), 3, 3, dtype=dtype)
    for k, orbit in enumerate(orbits):
        for pos in orbit:
            basis[k][pos] = 1.0
    return basis.to(device)


@dataclass(frozen=True)
class CnnShape:
    """conv(1 -> channels, 3x3, padding 1, no bias) -> [batchnorm] -> act -> flatten (each
    channel's 2x2 map, 4 features) or global mean pool (1 feature) -> [dropout] ->
    dense(channels * features -> hidden) -> act -> dense(hidden -> 2 logits [+ a +-1 bias each])."""

    variant: str
    channels: int
    hidden: int
    activation: str
    dropout_p: float
    pooling: str = "flatten"
    output_bias: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in CNN_POOLINGS:
            raise ValueError(f"pooling {self.pooling!r} unknown; allowed: {', '.join(CNN_POOLINGS)}")

    @property
    def features_per_channel(self) -> int:
        """What one channel hands the dense layer: its 2x2 map flattened (4) or its mean (1)."""
        return 4 if self.pooling == "flatten" else 1


def dropout_mask(shape: CnnShape, n: int, seed: int, dtype: torch.dtype, device: torch.device | str = "cpu"
                 ) -> torch.Tensor:
    """(channels, N, features per channel) inverted-dropout multipliers on the dense layer's
    inputs: one fixed realization for the whole landscape (drawn on the CPU from the seed, so
    it is the same on every device)."""
    size = (shape.channels, n, shape.features_per_channel)
    if shape.variant != "dropout":
        return torch.ones(size, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(size, generator=gen, dtype=torch.float64) >= shape.dropout_p
    return (keep.to(dtype) / (1 - shape.dropout_p)).to(device)


def _channel_features(images: torch.Tensor, filters: torch.Tensor, shape: CnnShape) -> torch.Tensor:
    """(N, 2, 2) images, (K, 3, 3) filters -> (N, K, features): each filter's activated map,
    flattened row-major (4 features) or mean-pooled (1 feature)."""
    maps = F.conv2d(images.unsqueeze(1), filters.unsqueeze(1), padding=1)      # (N, K, 2, 2)
    if shape.variant == "batchnorm":  # training-mode statistics over the batch, no affine
        mean = maps.mean(dim=(0, 2, 3), keepdim=True)
        var = maps.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        maps = (maps - mean) / torch.sqrt(var + BN_EPS)
    maps = activate_(maps.clone(), shape.activation)
    if shape.pooling == "mean":
        return maps.mean(dim=(2, 3)).unsqueeze(-1)
    return maps.flatten(2)


def build_cnn(images: torch.Tensor, y: torch.Tensor, shape: CnnShape, mask: torch.Tensor) -> LayeredNet:
    basis = filter_basis(shape.variant, images.dtype, images.device)
    filters = torch.einsum("pk,kij->pij", sign_patterns(basis.shape[0], images.dtype, images.device), basis)
    feats = _channel_features(images, filters, shape).transpose(0, 1)          # (P, N, features)
    first = feats.unsqueeze(0) * mask.unsqueeze(1)                             # (C, P, N, features)
    if shape.features_per_channel == 1:
        first = first[..., 0]
    layers = (Layer(units=shape.hidden, fan_in=shape.channels * shape.features_per_channel,
                    activation=shape.activation),
              Layer(units=2, fan_in=shape.hidden, bias=shape.output_bias, activation="none"))
    return LayeredNet(first=first, layers=layers, loss="cross_entropy", y=y)


# ----------------------------------------------------------------------------- plain path


def params_of(net: LayeredNet, index: int, first_param_count: int) -> list[torch.Tensor]:
    """Weights of configuration `index`: [first-layer params (U1, k), then (units, fan_in[+1]) per layer].

    first_param_count: parameters per first-layer unit (fan_in [+ bias] of the MLP, the
    number of filter-basis coefficients of the CNN). Bias, where present, is the last column.
    """
    digits = decode(net, index)
    like = net.first
    out = [sign_patterns(first_param_count, like.dtype, like.device)[digits[0]]]
    for layer, d in zip(net.layers, digits[1:]):
        out.append(sign_patterns(layer.fan_in + layer.bias, like.dtype, like.device)[d])
    return out


def plain_classifier_forward(inputs: torch.Tensor, params: list[torch.Tensor], first_layer_bias: bool,
                             output_activation: str) -> torch.Tensor:
    d_in = inputs.shape[1]
    w0 = params[0]
    h = torch.tanh(inputs @ w0[:, :d_in].T + (w0[:, d_in] if first_layer_bias else 0))
    for i, w in enumerate(params[1:]):
        h = h @ w.T
        last = i == len(params) - 2
        h = h if (last and output_activation == "none") else torch.tanh(h)
    return h[:, 0]


def plain_cnn_logits(images: torch.Tensor, params: list[torch.Tensor], shape: CnnShape,
                     mask: torch.Tensor) -> torch.Tensor:
    filters = torch.einsum("ck,kij->cij", params[0], filter_basis(shape.variant, images.dtype, images.device))
    h = _channel_features(images, filters, shape) * mask.transpose(0, 1)        # (N, C, features)
    h = activate_(h.flatten(1) @ params[1].T, shape.activation)
    out = params[2]
    return h @ out[:, :shape.hidden].T + (out[:, shape.hidden] if shape.output_bias else 0)


def plain_loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> float:
    if kind == "mse":
        return float(((out - y) ** 2).mean())
    return float(F.cross_entropy(out, y.long()))

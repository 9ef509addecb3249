"""Models for the image tasks: the small CNN and torchvision's standard architectures.

The torchvision models are used as torchvision defines them (the paper: "standard
structures provided by Torchvision ... without any modifications"), built with
`num_classes` for the dataset and random initialization (no pretrained weights). Each
ends in adaptive average pooling, so a raw and an expanded input train the same number
of parameters. The only change is explicit and recorded in the run's config: for a
grayscale dataset with `in_channels: native`, the first convolution takes 1 channel
instead of 3 (`in_channels: replicate` instead repeats the gray channel three times).
"""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Three conv blocks and global average pooling.

    The adaptive pooling makes the classifier see only channels, never the spatial size,
    so a raw and an expanded input train the same number of parameters (paper Sec. 6.1).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


TORCHVISION_MODELS = ("resnet18", "resnet50", "densenet121", "efficientnet_b0", "mobilenet_v3_large")
MODELS = ("small_cnn", *TORCHVISION_MODELS)
# Smallest square input each model accepts (DenseNet's transition pools need >= 32 px).
MIN_INPUT = {"small_cnn": 2, "resnet18": 1, "resnet50": 1, "densenet121": 32, "efficientnet_b0": 1,
             "mobilenet_v3_large": 1}


def _first_conv(model: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return module, name
    raise ValueError("model has no Conv2d")


def _set_in_channels(model: nn.Module, channels: int) -> None:
    """Rebuild the first convolution for `channels` inputs (same kernel, stride, padding)."""
    conv, name = _first_conv(model)
    if conv.in_channels == channels:
        return
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    parent = model
    *path, last = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, new)


def build_model(name: str, in_channels: int, num_classes: int, width: int = 32) -> nn.Module:
    if name == "small_cnn":
        return SmallCNN(in_channels, num_classes, width)
    if name in TORCHVISION_MODELS:
        import torchvision.models as tvm
        model = getattr(tvm, name)(weights=None, num_classes=num_classes)
        _set_in_channels(model, in_channels)
        return model
    raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

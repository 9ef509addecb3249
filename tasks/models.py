"""Small models shared by the image tasks."""
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


def build_model(name: str, in_channels: int, num_classes: int, width: int = 32) -> nn.Module:
    if name == "small_cnn":
        return SmallCNN(in_channels, num_classes, width)
    raise ValueError(f"unknown model {name!r}; available: small_cnn")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""A small CNN with InstanceNorm (no affine) and a linear head, for images of 3 x 32 x 32."""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """conv3x3 -> InstanceNorm (no affine) -> GELU, with a residual when shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm = nn.InstanceNorm2d(c_out)
        self.act = nn.GELU()
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return x + y if self.residual else y


class SmallCNN(nn.Module):
    """Four conv blocks (32-32-64-64 channels) over a stem, global average pooling and a linear classifier."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.Sequential(
            ConvBlock(width, width, 1), ConvBlock(width, 2 * width, 2),
            ConvBlock(2 * width, 2 * width, 1), ConvBlock(2 * width, 2 * width, 1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(pixel_values))
        return self.head(x.mean(dim=(2, 3)))

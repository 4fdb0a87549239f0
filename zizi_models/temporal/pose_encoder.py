"""A small pose encoder: rendered pose images -> features added to the UNet's conv_in output.

Like AnimateAnyone's pose guider: a few 3x3 convs, one stride-2 conv per factor of 2 between the
pixel grid and the latent grid, then a zero-initialised projection to the UNet's first width, so a
fresh encoder leaves the host's output unchanged. It lives in the temporal checkpoint (`zizi.`
keys) and is trained by `train/` together with the temporal layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def pose_encoder_widths(downscale: int, base_width: int) -> list[int]:
    """Channel widths after the stem and after each stride-2 stage (16, 32, 64 for downscale 4)."""
    if downscale < 1 or downscale & (downscale - 1):
        raise ValueError(f"pose_downscale must be a power of two >= 1, got {downscale}")
    return [base_width * 2**i for i in range(int(math.log2(downscale)) + 1)]


class PoseEncoder(nn.Module):
    """pose [(B F), C_pose, H * s, W * s] in [0, 1] -> [(B F), C0, H, W] (s = downscale)."""

    def __init__(self, in_channels: int, out_channels: int, downscale: int, base_width: int = 16) -> None:
        super().__init__()
        widths = pose_encoder_widths(downscale, base_width)
        self.downscale = downscale
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.stages = nn.ModuleList(
            [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1) for c_in, c_out in zip(widths, widths[1:], strict=False)]
        )
        self.proj = nn.Conv2d(widths[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        x = nn.functional.silu(self.stem(pose * 2.0 - 1.0))  # images [0, 1] -> [-1, 1]
        for stage in self.stages:
            x = nn.functional.silu(stage(x))
        return self.proj(x)

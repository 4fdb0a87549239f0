"""Per-frame augmentation-level embedding, added to the UNet time embedding.

A known (hint) frame is fed noise-augmented (see `noise_augmentation.py`); the network is
told how much with `level = 1 / (1 + snr)` in [0, 1] (0 = clean). The level goes through a
timestep-style sinusoid and a 2-layer MLP whose last layer starts at zero, so a fresh
embedding adds exactly nothing to the base UNet's time embedding.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """values [N] (float) -> [N, dim] as [cos | sin] of values * geometric frequencies."""
    if dim % 2 != 0:
        raise ValueError(f"sinusoidal embedding needs an even dim, got {dim}")
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half
    args = values.float()[:, None] * torch.exp(exponent)[None]  # [N, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class AugmentationEmbedding(nn.Module):
    """level [N] in [0, 1] -> embedding [N, time_embed_dim]; zero at init."""

    def __init__(self, embed_dim: int = 320, time_embed_dim: int = 1280, level_scale: float = 1000.0) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.level_scale = level_scale
        self.linear_1 = nn.Linear(embed_dim, time_embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)
        nn.init.zeros_(self.linear_2.weight)
        nn.init.zeros_(self.linear_2.bias)

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        features = sinusoidal_embedding(level.reshape(-1) * self.level_scale, self.embed_dim)
        features = features.to(self.linear_1.weight.dtype)
        return self.linear_2(self.act(self.linear_1(features)))

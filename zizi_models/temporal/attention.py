"""Temporal transformer block: self-attention across frames, then a GEGLU feed-forward.

Tokens are one sequence per spatial location: [(B D) F C], D = H*W. Parameter names
follow AnimateDiff's `TemporalTransformerBlock` so its weights load unchanged:

    attention_blocks.{a}.{to_q,to_k,to_v,to_out.0,pos_encoder.pe}
    norms.{a}
    ff.net.0.proj, ff.net.2, ff_norm
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .positional_encoding import SinusoidalPositionEncoding


class TemporalSelfAttention(nn.Module):
    """Multi-head self-attention over the frame axis, with pe added to the input."""

    def __init__(self, dim: int, heads: int, max_positions: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.pos_encoder = SinusoidalPositionEncoding(dim, max_positions)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(dropout)])

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, bounds: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """tokens [(B D) F C], positions [B, F] -> [(B D) F C]."""
        tokens = self.pos_encoder(tokens, positions, bounds)
        q, k, v = (
            rearrange(proj(tokens), "n f (h d) -> n h f d", h=self.heads)
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # [(B D) h F d]
        out = rearrange(out, "n h f d -> n f (h d)")
        for layer in self.to_out:
            out = layer(out)
        return out


class GEGLU(nn.Module):
    """Linear to 2*inner, gate one half with GELU of the other (diffusers/AnimateDiff `ff.net.0`)."""

    def __init__(self, dim: int, inner_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner_dim * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """net = [GEGLU, Dropout, Linear]: keys `net.0.proj`, `net.2`."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner_dim = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner_dim), nn.Dropout(dropout), nn.Linear(inner_dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    """Pre-norm residual block: N x (LayerNorm -> +pe -> self-attention), LayerNorm -> feed-forward."""

    def __init__(
        self,
        dim: int,
        heads: int,
        max_positions: int,
        num_attention_blocks: int = 2,
        ff_mult: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [TemporalSelfAttention(dim, heads, max_positions, dropout) for _ in range(num_attention_blocks)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(num_attention_blocks)])
        self.ff = FeedForward(dim, ff_mult, dropout)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, bounds: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """tokens [(B D) F C], positions [B, F] -> [(B D) F C]."""
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            tokens = attention(norm(tokens), positions, bounds) + tokens
        return self.ff(self.ff_norm(tokens)) + tokens

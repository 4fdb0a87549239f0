"""Layers a host UNet calls on its flat frame batch `[(B F) C H W]` with a FrameContext.

- `MotionModule`: AnimateDiff-style temporal transformer with a zero-initialised
  proj_out, so a fresh module is the identity (output = input).
- `TemporalConv`: Make-A-Video pseudo-3D convolution over frames, dirac-initialised,
  so a fresh one is the identity as well.

Both are pure functions of (hidden, ctx); a host only has to call `layer(hidden, ctx)`
at the right place (after a spatial attention / resnet).
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from einops import rearrange
from torch import nn

from .attention import TemporalTransformerBlock
from .context import FrameContext


class TemporalTransformer(nn.Module):
    """GroupNorm (per frame) -> proj_in -> transformer blocks over frames -> proj_out (zero) -> + input.

    Parameter names follow AnimateDiff's `TemporalTransformer3DModel`.
    """

    def __init__(
        self,
        channels: int,
        heads: int = 8,
        num_transformer_blocks: int = 1,
        num_attention_blocks: int = 2,
        max_positions: int = 32,
        ff_mult: int = 4,
        norm_num_groups: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        # on [(B F) C H W]: statistics per frame, so other frames never change a frame's normalisation
        self.norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [
                TemporalTransformerBlock(
                    channels, heads, max_positions, num_attention_blocks, ff_mult, dropout
                )
                for _ in range(num_transformer_blocks)
            ]
        )
        self.proj_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor, bounds: tuple[int, int]) -> torch.Tensor:
        """hidden [(B F) C H W], positions [B, F] -> [(B F) C H W]."""
        batch, frames = positions.shape
        height, width = hidden.shape[-2:]
        residual = hidden
        tokens = self.norm(hidden)
        tokens = rearrange(tokens, "(b f) c h w -> (b h w) f c", b=batch, f=frames)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens, positions, bounds)
        tokens = self.proj_out(tokens)
        out = rearrange(tokens, "(b h w) f c -> (b f) c h w", b=batch, h=height, w=width)
        return out + residual


class MotionModule(nn.Module):
    """One AnimateDiff motion module: `motion_modules.{j}` with a `temporal_transformer` inside."""

    def __init__(
        self,
        channels: int,
        heads: int = 8,
        num_transformer_blocks: int = 1,
        num_attention_blocks: int = 2,
        max_positions: int = 32,
        ff_mult: int = 4,
        norm_num_groups: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.temporal_transformer = TemporalTransformer(
            channels,
            heads,
            num_transformer_blocks,
            num_attention_blocks,
            max_positions,
            ff_mult,
            norm_num_groups,
            dropout,
        )
        self.gradient_checkpointing = False

    @property
    def max_positions(self) -> int:
        return self.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.max_positions

    def forward(self, hidden: torch.Tensor, ctx: FrameContext) -> torch.Tensor:
        """hidden [(B F) C H W] -> [(B F) C H W], mixing each spatial location across frames."""
        positions = ctx.positions_for_batch(hidden.shape[0])
        bounds = (ctx.min_position, ctx.max_position)
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(
                self.temporal_transformer, hidden, positions, bounds, use_reentrant=False
            )
        return self.temporal_transformer(hidden, positions, bounds)


class TemporalConv(nn.Module):
    """Conv1d over frames at every spatial location, identity (dirac) at init.

    Frames are convolved in window order, whatever their positions: neighbours in the
    window are neighbours for the kernel.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal conv kernel size must be odd, got {kernel_size}")
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        nn.init.dirac_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, hidden: torch.Tensor, ctx: FrameContext) -> torch.Tensor:
        """hidden [(B F) C H W] -> [(B F) C H W]."""
        frames = ctx.num_frames
        height, width = hidden.shape[-2:]
        ctx.positions_for_batch(hidden.shape[0])  # validates the batch layout
        x = rearrange(hidden, "(b f) c h w -> (b h w) c f", f=frames)
        x = self.conv(x)
        return rearrange(x, "(b h w) c f -> (b f) c h w", h=height, w=width)

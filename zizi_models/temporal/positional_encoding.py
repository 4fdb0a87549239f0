"""Sinusoidal frame-position encoding, gathered at each frame's real position.

The table is the standard transformer formula, identical to AnimateDiff's
`pos_encoder.pe` buffer (shape [1, max_positions, dim]):

    pe[0, p, 2i]   = sin(p / 10000^(2i/dim))
    pe[0, p, 2i+1] = cos(p / 10000^(2i/dim))

AnimateDiff adds `pe[:, :F]` to a window of F frames, i.e. it assumes positions 0..F-1.
Here every frame gets `pe[0, position]`, so positions 0..F-1 reproduce AnimateDiff
exactly while non-contiguous windows (stride 4, a far anchor) get their true spacing.
"""

from __future__ import annotations

import math
import weakref

import torch
from einops import rearrange
from torch import nn

from .tensor_stamp import tensor_stamp


def sinusoidal_table(max_positions: int, dim: int) -> torch.Tensor:
    """The [1, max_positions, dim] sin/cos table (float32), AnimateDiff's `pe` values."""
    if dim % 2 != 0:
        raise ValueError(f"sinusoidal position encoding needs an even dim, got {dim}")
    position = torch.arange(max_positions, dtype=torch.float32)[:, None]  # [P, 1]
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # [dim/2]
    table = torch.zeros(1, max_positions, dim)
    table[0, :, 0::2] = torch.sin(position * inv_freq)
    table[0, :, 1::2] = torch.cos(position * inv_freq)
    return table


class SinusoidalPositionEncoding(nn.Module):
    """Adds pe[positions] to a sequence of frame tokens.

    State: `pe` buffer [1, max_positions, dim] (saved, so files keep AnimateDiff's layout).
    """

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__()
        self.dim = dim
        self.max_positions = max_positions
        self.register_buffer("pe", sinusoidal_table(max_positions, dim), persistent=True)
        # the last gather: (weakref to positions, dtype, pe identity and version, encodings). A FrameContext
        # hands every UNet call of a window the same positions tensor, so the gather runs once per window.
        self._last: tuple | None = None

    def check_positions(self, positions: torch.Tensor, bounds: tuple[int, int] | None = None) -> None:
        """Raise ValueError unless every position is in [0, max_positions).

        bounds: precomputed (min, max) of positions (FrameContext caches them) to avoid a device sync.
        """
        low, high = bounds if bounds is not None else (int(positions.min()), int(positions.max()))
        if low < 0 or high >= self.max_positions:
            raise ValueError(
                f"frame positions {positions.tolist()} are outside [0, {self.max_positions}): this temporal "
                f"module has max_positions={self.max_positions}; use relative positions or a module trained longer"
            )

    def gather(self, positions: torch.Tensor, bounds: tuple[int, int] | None = None) -> torch.Tensor:
        """positions [B, F] -> encodings [B, F, dim]."""
        self.check_positions(positions, bounds)
        return self.pe[0, positions.to(self.pe.device)]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_last": None}  # a weakref does not pickle; the copy gathers anew

    # eager under torch.compile: the cache is keyed on tensor identity (a weakref) and version, which dynamo would
    # turn into guards that fail for every new window's positions (a recompile per window, seen on an H200)
    @torch.compiler.disable
    def _encodings(self, positions: torch.Tensor, bounds: tuple[int, int] | None, dtype: torch.dtype) -> torch.Tensor:
        stamp = (dtype, tensor_stamp(self.pe), tensor_stamp(positions))
        last = getattr(self, "_last", None)
        if last is not None and last[0]() is positions and last[1] == stamp:
            return last[2]
        encodings = self.gather(positions, bounds).to(dtype)
        self._last = (weakref.ref(positions), stamp, encodings)
        return encodings

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, bounds: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """tokens [(B D) F C] (D = spatial locations), positions [B, F] -> tokens + pe, same shape."""
        encodings = self._encodings(positions, bounds, tokens.dtype)  # [B, F, C]
        tokens = rearrange(tokens, "(b d) f c -> b d f c", b=positions.shape[0])
        tokens = tokens + encodings[:, None]
        return rearrange(tokens, "b d f c -> (b d) f c")

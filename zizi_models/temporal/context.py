"""Per-call frame context: which frames a batch holds and where they sit in the video.

A host UNet (diffusers here, ComfyUI's in the node pack) runs its spatial layers on a
flat batch of frames `[(b f) c h w]`. Temporal layers need to know how to fold that
batch back into videos and each frame's real position. The host builds one
`FrameContext` per UNet call and hands it to every temporal layer:

    ctx = FrameContext(positions)          # positions: LongTensor [B, F]
    hidden = motion_module(hidden, ctx)    # hidden: [(B F) C H W]

Positions are frame indices (0-based, possibly non-contiguous, e.g. an anchor frame
far back plus a window at stride 4). They index the sinusoidal position table, so
they must lie in [0, max_positions) of the temporal module.

Their (min, max) bounds are checked on the host. Give them (`bounds=`, or build with `on_device`
from host positions) so that a context on an accelerator never reads its positions back: the
UNet path then has no host synchronisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import repeat


@dataclass
class FrameContext:
    """Frame layout of one UNet call.

    positions: LongTensor [B, F], the position of every frame of every video in the batch.
    Frames of one video are contiguous in the flat batch: row `b * F + f` is frame f of video b.
    bounds: (min, max) of positions when the caller knows them; read from positions otherwise
    (one device sync for positions on an accelerator).
    """

    positions: torch.Tensor
    bounds: tuple[int, int] | None = field(default=None, repr=False, compare=False)
    _min_position: int = field(init=False, repr=False)
    _max_position: int = field(init=False, repr=False)
    _stacked: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        positions = self.positions
        if not isinstance(positions, torch.Tensor):
            positions = torch.as_tensor(positions)
        if positions.ndim == 1:
            positions = positions[None]
        if positions.ndim != 2 or positions.shape[1] == 0:
            raise ValueError(
                f"FrameContext positions must have shape [B, F] with F >= 1, got {tuple(positions.shape)}"
            )
        if positions.dtype.is_floating_point or positions.dtype == torch.bool:
            raise ValueError(
                f"FrameContext positions must be integers (frame indices), got dtype {positions.dtype}"
            )
        self.positions = positions.long()
        if self.bounds is None:  # read once here (a host sync on an accelerator) instead of per attention layer
            self.bounds = (int(self.positions.min()), int(self.positions.max()))
        low, high = (int(b) for b in self.bounds)
        if low > high:
            raise ValueError(f"FrameContext bounds {self.bounds} must be (min, max) of the positions")
        self.bounds = (low, high)
        self._min_position, self._max_position = low, high

    @classmethod
    def on_device(cls, positions: torch.Tensor, device: torch.device | str | None) -> FrameContext:
        """A context on `device` with bounds read where positions are now (no sync for host positions)."""
        positions = torch.as_tensor(positions)
        bounds = (int(positions.min()), int(positions.max())) if positions.numel() else None
        return cls(positions if device is None else positions.to(device), bounds=bounds)

    @classmethod
    def contiguous(
        cls, batch_size: int, num_frames: int, device: torch.device | str | None = None
    ) -> FrameContext:
        """Frames 0..F-1 for every video: AnimateDiff's implicit layout."""
        positions = repeat(torch.arange(num_frames, device=device), "f -> b f", b=batch_size)
        return cls(positions, bounds=(0, num_frames - 1) if num_frames > 0 else None)

    @property
    def batch_size(self) -> int:
        return self.positions.shape[0]

    @property
    def num_frames(self) -> int:
        return self.positions.shape[1]

    @property
    def min_position(self) -> int:
        return self._min_position

    @property
    def max_position(self) -> int:
        return self._max_position

    def to(self, device: torch.device | str) -> FrameContext:
        return FrameContext(self.positions.to(device), bounds=self.bounds)

    def positions_for_batch(self, batch_frames: int) -> torch.Tensor:
        """Positions [B', F] for a flat batch of `batch_frames` rows.

        batch_frames may be any multiple k of B*F: hosts that stack whole videos along the
        batch axis (e.g. classifier-free guidance: cond videos then uncond videos) reuse the
        same positions for each stacked copy.
        """
        per_copy = self.batch_size * self.num_frames
        if batch_frames % per_copy != 0:
            raise ValueError(
                f"hidden batch of {batch_frames} rows is not a multiple of the frame context's "
                f"{self.batch_size} video(s) x {self.num_frames} frames; set a FrameContext matching this call"
            )
        copies = batch_frames // per_copy
        if copies == 1:
            return self.positions
        stacked = self._stacked.get(copies)  # the same for every layer (and every call of a cached FrameCall)
        if stacked is None:
            stacked = self._stacked[copies] = repeat(self.positions, "b f -> (k b) f", k=copies)
        return stacked

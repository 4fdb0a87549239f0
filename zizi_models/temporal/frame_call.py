"""Host-neutral glue between a 2D UNet call and the temporal layers.

Both hosts, `ZiziVideoUNet` (diffusers, training) and the ComfyUI bridge (inference), run the 2D
UNet on a flat batch of frames and insert the temporal layers at the same places. What those
layers need for one UNet call is a `FrameCall`; the operations that apply them are below, so both
hosts run literally the same code.

`WindowInputs` is what a sampler knows about one window of F frames (positions, known latents,
mask, augmentation levels, optional pose images); `for_batch` expands it to a flat UNet batch holding k stacked copies
of the window (ComfyUI batches cond and uncond: k = 2 with CFG).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import repeat
from torch import nn

from .context import FrameContext
from .model import ZiziTemporalModel
from .noise_augmentation import known_frame_channels


@dataclass
class FrameCall:
    """Everything the temporal layers read during one UNet call over a flat batch [(k B F) ...]."""

    ctx: FrameContext
    extra_channels: torch.Tensor | None  # [(k B F), 5, H, W]: mask, mask * known latent
    aug_level: torch.Tensor | None  # [(k B F)] augmentation level, 0 = clean
    pose: torch.Tensor | None = None  # [(k B F), C_pose, H * s, W * s] pose images in [0, 1]


@dataclass
class WindowInputs:
    """One window of F frames as a sampler sees it.

    positions [F] long: real frame positions. known [F, 4, H, W]: latents of the known frames in the
    UNet's input space (scaled like the noisy latent, already noise-augmented), zeros elsewhere;
    mask [F]: 1 = known. level [F]: augmentation level of each known frame (0 = clean anchor).
    pose [F, C_pose, H', W'] in [0, 1]: rendered pose images for a temporal model with a pose encoder
    (resized to the latent grid x the encoder's downscale when they differ).
    """

    positions: torch.Tensor
    known: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    level: torch.Tensor | None = None
    pose: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.positions = torch.as_tensor(self.positions).long().reshape(-1)
        frames = self.num_frames
        if (self.known is None) != (self.mask is None):
            raise ValueError("WindowInputs: known and mask must be given together")
        if self.known is not None and (self.known.ndim != 4 or self.known.shape[0] != frames):
            raise ValueError(f"WindowInputs: known must be [F={frames}, C, H, W], got {tuple(self.known.shape)}")
        if self.pose is not None and (self.pose.ndim != 4 or self.pose.shape[0] != frames):
            raise ValueError(f"WindowInputs: pose must be [F={frames}, C, H, W], got {tuple(self.pose.shape)}")
        for name in ("mask", "level"):
            value = getattr(self, name)
            if value is not None and torch.as_tensor(value).numel() != frames:
                raise ValueError(f"WindowInputs: {name} must have one value per frame ({frames})")

    @classmethod
    def contiguous(cls, frames: int) -> WindowInputs:
        """Frames 0..F-1, nothing known: a plain batch of frames sampled as one clip."""
        return cls(torch.arange(frames))

    @property
    def num_frames(self) -> int:
        return int(self.positions.numel())

    def for_batch(self, batch_rows: int, device: torch.device | str) -> FrameCall:
        """Expand to a flat UNet batch of `batch_rows` = k * F rows (k stacked copies of the window)."""
        frames = self.num_frames
        if batch_rows % frames != 0:
            raise ValueError(
                f"UNet batch of {batch_rows} rows is not a whole number of {frames}-frame windows; "
                "the latent batch must be the window's frames (batch axis = time)"
            )
        copies = batch_rows // frames
        ctx = FrameContext(self.positions.to(device)[None])
        extra = None
        if self.known is not None:
            channels = known_frame_channels(self.mask.to(device)[None], self.known.to(device)[None])  # [1, F, 5, H, W]
            extra = repeat(channels, "1 f c h w -> (k f) c h w", k=copies)
        level = torch.zeros(frames, device=device) if self.level is None else self.level.to(device).float().reshape(-1)
        if self.mask is not None:
            level = level * self.mask.to(device).float().reshape(-1)
        pose = None if self.pose is None else repeat(self.pose.to(device), "f c h w -> (k f) c h w", k=copies)
        return FrameCall(ctx, extra, repeat(level, "f -> (k f)", k=copies), pose)


def run_temporal_layer(layer: nn.Module, hidden: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """Run a temporal layer (possibly fp32 on an fp16/bf16 backbone) on [(B F) C H W] and cast back."""
    dtype = next(layer.parameters()).dtype
    return layer(hidden.to(dtype), call.ctx).to(hidden.dtype)


def add_aug_embedding(temporal: ZiziTemporalModel, emb: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """time embedding [(B F), D] += aug_embedding(level) [(B F), D]."""
    if call.aug_level is None:
        return emb
    return emb + temporal.augmentation_embedding(call.aug_level).to(emb.dtype)


def add_known_frames(temporal: ZiziTemporalModel, features: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """conv_in output [(B F), C0, H, W] += conv_in_extra(mask, mask * known latent) + pose_encoder(pose)."""
    if call.extra_channels is not None:
        features = features + temporal.known_frame_features(call.extra_channels).to(features.dtype)
    if call.pose is not None and temporal.pose_encoder is not None:
        features = features + temporal.pose_features(pose_on_grid(call.pose, features, temporal)).to(features.dtype)
    return features


def pose_on_grid(pose: torch.Tensor, features: torch.Tensor, temporal: ZiziTemporalModel) -> torch.Tensor:
    """pose [N, C, H', W'] -> [N, C, H * s, W * s] for conv_in features [N, C0, H, W] (area resize if needed)."""
    scale = temporal.config.pose_downscale
    size = (features.shape[-2] * scale, features.shape[-1] * scale)
    if pose.shape[0] != features.shape[0]:
        raise ValueError(f"pose batch {pose.shape[0]} does not match the UNet batch {features.shape[0]}")
    if tuple(pose.shape[-2:]) != size:
        pose = nn.functional.interpolate(pose.float(), size=size, mode="area")
    return pose

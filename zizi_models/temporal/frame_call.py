"""Host-neutral glue between a 2D UNet call and the temporal layers.

Both hosts, `ZiziVideoUNet` (diffusers, training) and the ComfyUI bridge (inference), run the 2D
UNet on a flat batch of frames and insert the temporal layers at the same places. What those
layers need for one UNet call is a `FrameCall`; the operations that apply them are below, so both
hosts run literally the same code.

`WindowInputs` is what a sampler knows about one window of F frames (positions, known latents,
mask, augmentation levels, optional pose images); `for_batch` expands it to a flat UNet batch holding k stacked copies
of the window (ComfyUI batches cond and uncond: k = 2 with CFG).

Per-window work is done once per window, not once per UNet call: `for_batch` keeps the FrameCall it
built for each (batch rows, device), so the device copies of positions, known latents, mask, levels
and pose images and the extra channels are made once, and the FrameCall keeps (inference only, under
no_grad) what the temporal model computes from the window alone: conv_in_extra(known frames), the
pose encoder's features and the augmentation-level embedding (none of them reads the noisy input).
The position bounds are read on the host when the window is built, so the UNet path never
synchronises with the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import repeat
from torch import nn

from .context import FrameContext
from .model import ZiziTemporalModel
from .noise_augmentation import known_frame_channels
from .tensor_stamp import tensor_stamp


@dataclass
class FrameCall:
    """Everything the temporal layers read during one UNet call over a flat batch [(k B F) ...].

    cache: None = compute everything on every use (training, ZiziVideoUNet); a dict = this FrameCall
    serves several UNet calls of one window, and what depends on the window only (known-frame and
    pose features, the augmentation embedding) is computed once, when gradients are off.
    """

    ctx: FrameContext
    extra_channels: torch.Tensor | None  # [(k B F), 5, H, W]: mask, mask * known latent
    aug_level: torch.Tensor | None  # [(k B F)] augmentation level, 0 = clean
    pose: torch.Tensor | None = None  # [(k B F), C_pose, H * s, W * s] pose images in [0, 1]
    # per window of the flat batch: the anchor frame's index (or None); read by the trained reference
    # attention processors of ZiziVideoUNet (reference_processor.py)
    reference: tuple[int | None, ...] | None = None
    cache: dict | None = field(default=None, repr=False, compare=False)


_WINDOW_FIELDS = ("positions", "known", "mask", "level", "pose")


@dataclass
class WindowInputs:
    """One window of F frames as a sampler sees it.

    positions [F] long (kept on the CPU): real frame positions. known [F, 4, H, W]: latents of the known
    frames in the UNet's input space (scaled like the noisy latent, already noise-augmented), zeros elsewhere;
    mask [F]: 1 = known. level [F]: augmentation level of each known frame (0 = clean anchor).
    pose [F, C_pose, H', W'] in [0, 1]: rendered pose images for a temporal model with a pose encoder
    (resized to the latent grid x the encoder's downscale when they differ).

    The FrameCalls built by `for_batch` are kept per (batch rows, device) until a field is set again.
    """

    positions: torch.Tensor
    known: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    level: torch.Tensor | None = None
    pose: torch.Tensor | None = None
    _bounds: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)
    _calls: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = torch.as_tensor(self.positions).reshape(-1).cpu().long()  # host data: bounds without a sync
        object.__setattr__(self, "positions", positions)
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
        bounds = (int(positions.min()), int(positions.max())) if frames else None
        object.__setattr__(self, "_bounds", bounds)
        object.__setattr__(self, "_calls", {})

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)
        if name in _WINDOW_FIELDS and "_calls" in self.__dict__:
            self.__post_init__()  # revalidate, new bounds, forget the FrameCalls built from the old value

    def __deepcopy__(self, memo: dict) -> WindowInputs:
        """A copy without the FrameCalls built so far (they hold device tensors; the copy rebuilds its own)."""
        import copy

        return WindowInputs(*(copy.deepcopy(getattr(self, name), memo) for name in _WINDOW_FIELDS))

    @classmethod
    def contiguous(cls, frames: int) -> WindowInputs:
        """Frames 0..F-1, nothing known: a plain batch of frames sampled as one clip."""
        return cls(torch.arange(frames))

    @property
    def num_frames(self) -> int:
        return int(self.positions.numel())

    @property
    def bounds(self) -> tuple[int, int] | None:
        """(min, max) of positions, read on the host when the window was built (None for no frames)."""
        return self._bounds

    def for_batch(self, batch_rows: int, device: torch.device | str, cache: bool = True) -> FrameCall:
        """Expand to a flat UNet batch of `batch_rows` = k * F rows (k stacked copies of the window).

        cache: reuse the FrameCall built for the same (batch_rows, device) and let it keep the temporal
        model's window-only features (the default; a sampler calls this once per UNet call). False: a new
        FrameCall that computes everything on every use, as a reference.
        """
        device = torch.device(device)
        key = (batch_rows, device)
        if cache:
            call = self._calls.get(key)
            if call is not None:
                return call
        call = self._build(batch_rows, device)
        if cache:
            call.cache = {}
            self._calls[key] = call
        return call

    def _build(self, batch_rows: int, device: torch.device) -> FrameCall:
        frames = self.num_frames
        if frames == 0 or batch_rows % frames != 0:
            raise ValueError(
                f"UNet batch of {batch_rows} rows is not a whole number of {frames}-frame windows; "
                "the latent batch must be the window's frames (batch axis = time)"
            )
        copies = batch_rows // frames
        ctx = FrameContext(self.positions.to(device)[None], bounds=self._bounds)
        extra = None
        mask = None if self.mask is None else self.mask.to(device)
        if self.known is not None:
            channels = known_frame_channels(mask[None], self.known.to(device)[None])  # [1, F, 5, H, W]
            extra = repeat(channels, "1 f c h w -> (k f) c h w", k=copies)
        level = torch.zeros(frames, device=device) if self.level is None else self.level.to(device).float().reshape(-1)
        if mask is not None:
            level = level * mask.float().reshape(-1)
        pose = None if self.pose is None else repeat(self.pose.to(device), "f c h w -> (k f) c h w", k=copies)
        return FrameCall(ctx, extra, repeat(level, "f -> (k f)", k=copies), pose)


def _weights_key(*modules: nn.Module | None) -> tuple:
    """Identity and in-place version of the weights a cached feature was computed with (no device access)."""
    return tuple(tensor_stamp(p) for m in modules if m is not None for p in m.parameters())


def _cached(call: FrameCall, key: tuple, compute):
    """compute() once per key for a caching FrameCall under no_grad; every time otherwise."""
    if call.cache is None or torch.is_grad_enabled():
        return compute()
    value = call.cache.get(key)
    if value is None:
        value = call.cache[key] = compute()
    return value


def run_temporal_layer(layer: nn.Module, hidden: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """Run a temporal layer (possibly fp32 on an fp16/bf16 backbone) on [(B F) C H W] and cast back."""
    dtype = next(layer.parameters()).dtype
    return layer(hidden.to(dtype), call.ctx).to(hidden.dtype)


def add_aug_embedding(temporal: ZiziTemporalModel, emb: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """time embedding [(B F), D] += aug_embedding(level) [(B F), D]."""
    if call.aug_level is None:
        return emb
    key = ("aug", temporal, emb.dtype, emb.device, _weights_key(temporal.aug_embedding))
    return emb + _cached(call, key, lambda: temporal.augmentation_embedding(call.aug_level).to(emb.dtype))


def add_known_frames(temporal: ZiziTemporalModel, features: torch.Tensor, call: FrameCall) -> torch.Tensor:
    """conv_in output [(B F), C0, H, W] += conv_in_extra(mask, mask * known latent) + pose_encoder(pose)."""
    if call.extra_channels is not None:
        key = ("known", temporal, features.dtype, features.device, _weights_key(temporal.conv_in_extra))
        features = features + _cached(
            call, key, lambda: temporal.known_frame_features(call.extra_channels).to(features.dtype))
    if call.pose is not None and temporal.pose_encoder is not None:
        key = ("pose", temporal, tuple(features.shape), features.dtype, features.device,
               _weights_key(temporal.pose_encoder))
        features = features + _cached(
            call, key, lambda: temporal.pose_features(pose_on_grid(call.pose, features, temporal)).to(features.dtype))
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


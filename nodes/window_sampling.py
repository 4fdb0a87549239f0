"""What the loop controller and the three window samplers share: one window through ComfyUI's samplers."""

from __future__ import annotations

import dataclasses
import logging

import torch
from einops import rearrange

from ..zizi_models.autoregressive import WindowRequest
from . import comfy_bridge
from .video_nodes import resize_and_crop

log = logging.getLogger(__name__)

POSE_INPUT = ("IMAGE", {"tooltip": "Rendered pose images, one per video frame (or one for all), for a temporal module "
                                   "with a pose encoder (e.g. the shipped puppet model). Resized to cover the video "
                                   "size and centre-cropped, like the hint image."})


def check_control_hints(positive: list, negative: list, frames_needed: int) -> None:
    """Fail before any sampling when a ControlNet hint batch cannot cover the video (nothing is lost)."""
    for name, conditioning in (("positive", positive), ("negative", negative)):
        for count in comfy_bridge.control_hint_counts(conditioning):
            if count != 1 and count < frames_needed:
                raise ValueError(f"{name}: a ControlNet has {count} hint images but the video needs {frames_needed}; "
                                 "give one control image per video frame (or a single image for all frames)")


def require_temporal_model(model):
    temporal = comfy_bridge.temporal_model_of(model)
    if temporal is None:
        raise ValueError("model: this MODEL has no temporal layers; connect it through ZiziTemporalModelLoader first")
    return temporal


class PoseImages:
    """A per-frame pose IMAGE batch [T, H, W, C] -> windows [F, C, h * s, w * s] in [0, 1] for the pose encoder
    (h x w the latent grid, s the encoder's downscale: the video's pixel size for a matching VAE)."""

    def __init__(self, images: torch.Tensor, temporal, frames_needed: int, latent_height: int, latent_width: int,
                 input_name: str = "pose_images") -> None:
        if temporal.pose_encoder is None:
            raise ValueError(f"{input_name}: this temporal module has no pose encoder; condition on poses with a "
                             "ControlNet in the conditioning instead, or load a module trained with poses")
        count = images.shape[0]
        if count != 1 and count < frames_needed:
            raise ValueError(f"{input_name}: {count} pose images but the video needs {frames_needed}; give one per frame "
                             "(or a single image for all frames)")
        channels = temporal.config.pose_channels
        if images.shape[-1] < channels:
            raise ValueError(f"{input_name}: images have {images.shape[-1]} channels, the pose encoder needs {channels}")
        scale = temporal.config.pose_downscale
        self.images, self.channels, self.size = images, channels, (latent_height * scale, latent_width * scale)

    def __call__(self, frames: list[int]) -> torch.Tensor:
        index = [0] * len(frames) if self.images.shape[0] == 1 else list(frames)
        window = self.images[index, ..., :self.channels].float()  # [F, H, W, C]
        height, width = self.size
        if tuple(window.shape[1:3]) != self.size:
            window = torch.from_numpy(resize_and_crop(window.cpu().numpy(), width, height)).clamp(0, 1)
        return rearrange(window, "f h w c -> f c h w")


def pose_images_for(pose_images: torch.Tensor | None, temporal, frames_needed: int, latent_height: int,
                    latent_width: int) -> PoseImages | None:
    if pose_images is None:
        if temporal.pose_encoder is not None:
            log.warning("the temporal module has a pose encoder but no pose_images are connected; sampling without poses")
        return None
    return PoseImages(pose_images, temporal, frames_needed, latent_height, latent_width)


class WindowSampler:
    """``run_plan``'s sample_window for ComfyUI: slices ControlNet hints to the window, samples it with
    the chosen sampler/scheduler/CFG, and advances the progress bar by the frames it generated."""

    def __init__(self, model, positive: list, negative: list, steps: int, cfg: float, sampler_name: str,
                 scheduler: str, denoise: float = 1.0, progress=None, pose: PoseImages | None = None) -> None:
        self.model, self.positive, self.negative = model, positive, negative
        self.settings = (steps, cfg, sampler_name, scheduler, denoise)
        self.progress = progress
        self.pose = pose

    def __call__(self, request: WindowRequest) -> torch.Tensor:
        frames = list(request.frames)
        steps, cfg, sampler_name, scheduler, denoise = self.settings
        window = request.window
        if self.pose is not None:
            window = dataclasses.replace(window, pose=self.pose(frames))
        out = comfy_bridge.sample_window(
            self.model, window, request.latents, request.generate,
            comfy_bridge.slice_conditioning(self.positive, frames, "positive"),
            comfy_bridge.slice_conditioning(self.negative, frames, "negative"),
            request.seed, steps, cfg, sampler_name, scheduler, denoise)
        if self.progress is not None:
            self.progress.update(int(request.generate.sum()))
        return out

    def to_model_space(self, latents: torch.Tensor) -> torch.Tensor:
        return comfy_bridge.latent_to_model_space(self.model, latents)

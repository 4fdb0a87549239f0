"""What the loop controller and the three window samplers share: one window through ComfyUI's samplers."""

from __future__ import annotations

import torch

from ..zizi_models.autoregressive import WindowRequest
from . import comfy_bridge


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


class WindowSampler:
    """``run_plan``'s sample_window for ComfyUI: slices ControlNet hints to the window, samples it with
    the chosen sampler/scheduler/CFG, and advances the progress bar by the frames it generated."""

    def __init__(self, model, positive: list, negative: list, steps: int, cfg: float, sampler_name: str,
                 scheduler: str, denoise: float = 1.0, progress=None) -> None:
        self.model, self.positive, self.negative = model, positive, negative
        self.settings = (steps, cfg, sampler_name, scheduler, denoise)
        self.progress = progress

    def __call__(self, request: WindowRequest) -> torch.Tensor:
        frames = list(request.frames)
        steps, cfg, sampler_name, scheduler, denoise = self.settings
        out = comfy_bridge.sample_window(
            self.model, request.window, request.latents, request.generate,
            comfy_bridge.slice_conditioning(self.positive, frames, "positive"),
            comfy_bridge.slice_conditioning(self.negative, frames, "negative"),
            request.seed, steps, cfg, sampler_name, scheduler, denoise)
        if self.progress is not None:
            self.progress.update(int(request.generate.sum()))
        return out

    def to_model_space(self, latents: torch.Tensor) -> torch.Tensor:
        return comfy_bridge.latent_to_model_space(self.model, latents)

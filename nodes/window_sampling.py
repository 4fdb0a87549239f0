"""What the loop controller and the three window samplers share: one window through ComfyUI's samplers."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import torch
from einops import rearrange

from ..zizi_models.autoregressive import WindowRequest
from ..zizi_models.noise_init import DEFAULT_NOISE_INIT, NOISE_INIT_MODES
from ..zizi_models.planner import PlanStep
from ..zizi_models.temporal.trained_defaults import AUTO, trained_defaults_of
from ..zizi_models.video_io import resize_and_crop
from .comfy import conditioning, runtime, sampling, temporal_injection
from .comfy import vae as comfy_vae

log = logging.getLogger(__name__)

SNR_OFF = 10000.0  # the snr widget's maximum: known frames are fed exactly, with no augmentation
LATENT_CHANNELS = 4


def snr_value(snr: float) -> float:
    return math.inf if snr >= SNR_OFF else snr


def check_inputs(width: int | None, height: int | None, total_frames: int | None, window: int | None) -> str | None:
    """The first problem with the video size or length, as a one-line message naming the input."""
    for name, value in (("width", width), ("height", height)):
        if value is not None and value % 8:
            return f"{name}: {value} is not a multiple of 8 (the VAE downsamples by 8); use {value - value % 8} or {value - value % 8 + 8}"
    if total_frames is not None and window is not None and total_frames < window:
        return f"total_frames: {total_frames} is smaller than window ({window}); lower the window or use more frames"
    return None


def out_of_range(input_types: dict, **values: int | float | None) -> str | None:
    """The first value outside its declared INT/FLOAT min/max, as a one-line message naming the input.

    A node that names an input in VALIDATE_INPUTS switches ComfyUI's own range check off for it, so it
    checks the declared range here itself (None = fed by a link, checked when the node runs)."""
    declared = {**input_types.get("required", {}), **input_types.get("optional", {})}
    for name, value in values.items():
        spec = declared.get(name)
        if value is None or spec is None or len(spec) < 2 or spec[0] not in ("INT", "FLOAT"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return f"{name}: {value!r} is not a number"
        low, high = spec[1].get("min"), spec[1].get("max")
        if low is not None and value < low:
            return f"{name}: {value} is smaller than the minimum {low}"
        if high is not None and value > high:
            return f"{name}: {value} is bigger than the maximum {high}"
    return None


def resolve_window_stride(temporal, window: int, stride: int, total_frames: int | None = None) -> tuple[int, int, str]:
    """``window`` / ``stride`` with ``AUTO`` (0) replaced by what the temporal module was trained with, and a
    line saying which values are used and where they come from (for the plan text and the log)."""
    auto_window, auto_stride = window == AUTO, stride == AUTO
    defaults = trained_defaults_of(temporal) if auto_window or auto_stride else None
    notes = [defaults.source] if defaults is not None else []
    if auto_window:
        window = defaults.window
        if total_frames is not None and 2 <= total_frames < window:
            window = total_frames
            notes.append("window cut to total_frames")
    if auto_stride:
        stride = defaults.stride
    if window < 2:
        raise ValueError(f"window: {window} frame cannot hold a known frame and a new one; use 0 (auto) or 2 or more")
    used = (f"window {window}{' (auto)' if auto_window else ''}, stride {stride}{' (auto)' if auto_stride else ''}"
            + (f": {'; '.join(notes)}" if notes else ""))
    log.info("Zizi %s", used)
    return window, stride, used


def hint_latent(vae, image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """First hint frame: the first image of the batch, cover-resized and centre-cropped to the video size."""
    frame = image[:1, ..., :3]
    if frame.shape[1:3] != (height, width):
        frame = torch.from_numpy(resize_and_crop(frame.cpu().numpy(), width, height))
    return comfy_vae.vae_encode(vae, frame)


NOISE_INIT_INPUT = (list(NOISE_INIT_MODES), {
    "default": DEFAULT_NOISE_INIT,
    "tooltip": "Where each generated frame's sampling starts. anchor: the first frame's latent plus full noise "
               "(SD1.5 schedules keep ~7% of the frame at the last step, so the start carries the first frame's "
               "colours, as in training); nearest: the nearest known frame's; noise: pure noise (empty latent)."})


POSE_INPUT = ("IMAGE", {"tooltip": "Rendered pose images, one per video frame (or one for all), for a temporal module "
                                   "with a pose encoder (e.g. the shipped puppet model). Resized to cover the video "
                                   "size and centre-cropped, like the hint image."})


def check_control_hints(positive: list, negative: list, frames_needed: int) -> None:
    """Fail before any sampling when a ControlNet hint batch cannot cover the video (nothing is lost)."""
    for name, cond in (("positive", positive), ("negative", negative)):
        for count in conditioning.control_hint_counts(cond):
            if count != 1 and count < frames_needed:
                raise ValueError(f"{name}: a ControlNet has {count} hint images but the video needs {frames_needed}; "
                                 "give one control image per video frame (or a single image for all frames)")


def require_temporal_model(model):
    temporal = temporal_injection.temporal_model_of(model)
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
        self._resized: dict[int, torch.Tensor] = {}  # the last window's frames, [C, h * s, w * s] each

    def __call__(self, frames: list[int]) -> torch.Tensor:
        """Each source image is resized once while consecutive windows share it (anchor, overlap, a single
        image for all frames): the last window's resized frames are kept, nothing older."""
        index = [0] * len(frames) if self.images.shape[0] == 1 else list(frames)
        kept, missing = self._resized, [i for i in dict.fromkeys(index) if i not in self._resized]
        resized = {i: kept[i] for i in index if i in kept}
        if missing:
            window = self.images[missing, ..., :self.channels].float()  # [N, H, W, C]
            height, width = self.size
            if tuple(window.shape[1:3]) != self.size:
                window = torch.from_numpy(resize_and_crop(window.cpu().numpy(), width, height)).clamp(0, 1)
            resized.update(zip(missing, rearrange(window, "n h w c -> n c h w"), strict=True))
        self._resized = resized
        return torch.stack([resized[i] for i in index])


def pose_images_for(pose_images: torch.Tensor | None, temporal, frames_needed: int, latent_height: int,
                    latent_width: int) -> PoseImages | None:
    if pose_images is None:
        if temporal.pose_encoder is not None:
            log.warning("the temporal module has a pose encoder but no pose_images are connected; sampling without poses")
        return None
    return PoseImages(pose_images, temporal, frames_needed, latent_height, latent_width)


def format_frames(frames: Sequence[int], limit: int = 12) -> str:
    """Frame indices for a progress line: runs of consecutive frames as ranges ("1-6, 10, 14")."""
    runs: list[list[int]] = []
    for f in sorted(frames):
        if runs and f == runs[-1][-1] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    parts = [str(r[0]) if len(r) == 1 else f"{r[0]}, {r[1]}" if len(r) == 2 else f"{r[0]}-{r[-1]}" for r in runs]
    return ", ".join(parts) if len(parts) <= limit else ", ".join(parts[:limit]) + f", ... ({len(frames)} frames)"


def window_text(index: int, count: int, kind: str, generated: Sequence[int]) -> str:
    """The progress line of one window, e.g. "window 3/12: extrapolate frames 10, 14, 18"."""
    return f"window {index + 1}/{count}: {kind} frames {format_frames(generated)}"


class WindowSampler:
    """``run_plan``'s sample_window for ComfyUI: slices ControlNet hints to the window, samples it with
    the chosen sampler/scheduler/CFG and reports progress: a line of text per window (which window,
    which frames), and per sampling step the progress bar (in generated frames, fractions of the
    window's frames) with the window's latent preview (``runtime.SamplingProgress``)."""

    def __init__(self, model, positive: list, negative: list, steps: int, cfg: float, sampler_name: str,
                 scheduler: str, denoise: float = 1.0, progress: runtime.SamplingProgress | None = None,
                 pose: PoseImages | None = None, plan: Sequence[PlanStep] = ()) -> None:
        self.model, self.positive, self.negative = model, positive, negative
        self.settings = (steps, cfg, sampler_name, scheduler, denoise)
        self.progress = progress
        self.pose = pose
        self.plan = list(plan)

    def __call__(self, request: WindowRequest) -> torch.Tensor:
        frames = list(request.frames)
        steps, cfg, sampler_name, scheduler, denoise = self.settings
        window = request.window
        if self.pose is not None:
            window = dataclasses.replace(window, pose=self.pose(frames))
        callback = None
        if self.progress is not None:
            generated = [f for f, g in zip(frames, request.generate.tolist(), strict=True) if g]
            kind = self.plan[request.step_index].kind if request.step_index < len(self.plan) else "window"
            self.progress.text(window_text(request.step_index, max(len(self.plan), request.step_index + 1), kind,
                                           generated))
            callback = self.progress.window_callback(self.model, request.generate)
        out = sampling.sample_window(
            self.model, window, request.latents, request.generate,
            conditioning.slice_conditioning(self.positive, frames, "positive"),
            conditioning.slice_conditioning(self.negative, frames, "negative"),
            request.seed, steps, cfg, sampler_name, scheduler, denoise, callback=callback, reference=request.anchor)
        if self.progress is not None:
            self.progress.window_done(int(request.generate.sum()))
        return out

    def to_model_space(self, latents: torch.Tensor) -> torch.Tensor:
        return sampling.latent_to_model_space(self.model, latents)

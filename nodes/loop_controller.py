"""ZiziLoopController: hundreds of frames, one window at a time, in constant accelerator memory."""

from __future__ import annotations

import logging
import time

import torch

from ..zizi_models.autoregressive import LatentStore, run_plan
from ..zizi_models.planner import format_plan, plan_video
from ..zizi_models.temporal.trained_defaults import ANIMATEDIFF_STRIDE, ANIMATEDIFF_WINDOW, AUTO
from ..zizi_models.video_io import VideoWriter
from .comfy import folders, runtime, sampling
from .comfy import vae as comfy_vae
from .window_sampling import (
    LATENT_CHANNELS,
    POSE_INPUT,
    SNR_OFF,
    WindowSampler,
    check_control_hints,
    check_inputs,
    hint_latent,
    out_of_range,
    pose_images_for,
    require_temporal_model,
    resolve_window_stride,
    snr_value,
)

log = logging.getLogger(__name__)

class ZiziLoopController:
    """Starter window, then extrapolation at `stride` from the last frames plus the first-frame anchor,
    then interpolation of the gaps; every frame generated once. Latents stay on the CPU."""

    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("IMAGE", "LATENT", "STRING")
    RETURN_NAMES = ("frames", "latent", "plan")
    FUNCTION = "generate"
    DESCRIPTION = ("Generates a long video autoregressively with a model inflated by ZiziTemporalModelLoader: each "
                   "window is conditioned on earlier frames (noise-augmented at `snr`) and the un-augmented first "
                   "frame. ControlNet hints with one image per video frame are cut to each window.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 MODEL inflated by ZiziTemporalModelLoader."}),
                "positive": ("CONDITIONING", {"tooltip": "May carry ControlNets whose hint batch has one image per frame."}),
                "negative": ("CONDITIONING",),
                "vae": ("VAE",),
                "width": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                "total_frames": ("INT", {"default": 48, "min": 2, "max": 100000}),
                "window": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                                   "Frames per denoising window (known + new). 0 = auto: the window the temporal "
                                   f"module was trained with (AnimateDiff modules: {ANIMATEDIFF_WINDOW})."}),
                "stride": ("INT", {"default": AUTO, "min": 0, "max": 16, "tooltip":
                                   "Spacing of extrapolated frames; the gaps are interpolated. 0 = auto: the largest "
                                   f"extrapolation stride the module was trained with (AnimateDiff modules: {ANIMATEDIFF_STRIDE})."}),
                "snr": ("FLOAT", {"default": 0.66, "min": 0.0, "max": SNR_OFF, "step": 0.01, "tooltip":
                                  "Signal-to-noise power ratio of the noise added to earlier generated frames used as "
                                  f"conditioning (a = snr/(1+snr)). The first hint frame is never augmented. {SNR_OFF:g} = off."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1}),
                "sampler_name": (sampling.sampler_names(),),
                "scheduler": (sampling.scheduler_names(),),
            },
            "optional": {
                "hint_image": ("IMAGE", {"tooltip": "The first frame (never augmented). Resized to cover width x height, centre-cropped."}),
                "pose_images": POSE_INPUT,
                "interpolate": ("BOOLEAN", {"default": True, "tooltip": "Off: extrapolate contiguously (stride 1)."}),
                "decode_chunk": ("INT", {"default": 16, "min": 1, "max": 1024, "tooltip": "Frames decoded per VAE call."}),
                "stream_prefix": ("STRING", {"default": "", "tooltip": "If set, final frames are also written to an mp4 "
                                             "with this prefix in the output folder as they are ready (kept if you cancel)."}),
                "stream_fps": ("FLOAT", {"default": 12.0, "min": 0.1, "max": 240.0, "step": 0.5}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},  # the node's id, for its progress text
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width: int | None = None, height: int | None = None,
                        total_frames: int | None = None) -> bool | str:
        # ComfyUI skips its own min/max check for the inputs named here, so their declared range is checked
        # first; inputs fed by links arrive as None and are checked when the node runs. `window` is not
        # named (ComfyUI checks its range; auto is resolved at run time).
        return (out_of_range(cls.INPUT_TYPES(), width=width, height=height, total_frames=total_frames)
                or check_inputs(width, height, None, None) or True)

    def generate(self, model, positive, negative, vae, width: int, height: int, total_frames: int, window: int,
                 stride: int, snr: float, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                 hint_image: torch.Tensor | None = None, interpolate: bool = True, decode_chunk: int = 16,
                 stream_prefix: str = "", stream_fps: float = 12.0, pose_images: torch.Tensor | None = None,
                 unique_id: str | None = None):
        temporal = require_temporal_model(model)
        window, stride, used = resolve_window_stride(temporal, window, stride, total_frames)
        problem = check_inputs(width, height, total_frames, window)
        if problem:
            raise ValueError(problem)
        check_control_hints(positive, negative, total_frames)
        max_positions = temporal.config.max_positions
        if window > max_positions:
            raise ValueError(f"window: {window} frames exceed the temporal module's {max_positions} positions; use window <= {max_positions}")
        steps_plan = plan_video(total_frames, window=window, stride=stride, max_positions=max_positions,
                                hint=hint_image is not None, interpolate=interpolate)
        plan_text = f"{used}\n{format_plan(steps_plan)}"
        log.info("Zizi loop plan (%d steps):\n%s", len(steps_plan), plan_text)
        scale = comfy_vae.vae_downscale(vae)
        store = LatentStore(total_frames, LATENT_CHANNELS, height // scale, width // scale)
        pose = pose_images_for(pose_images, temporal, total_frames, height // scale, width // scale)
        if hint_image is not None:
            store.put([0], hint_latent(vae, hint_image, width, height))
        generated = sum(len(s.generate) for s in steps_plan)
        progress = runtime.SamplingProgress(generated, unique_id)
        images: list[torch.Tensor] = []
        writer = None
        if stream_prefix:
            folder, stem, counter, _ = folders.save_path(stream_prefix, width, height)
            writer = VideoWriter(folder / f"{stem}_{counter:05}_.mp4", fps=stream_fps)
        pending: list[int] = []

        def decode(frames: list[int]) -> None:
            decoded = comfy_vae.vae_decode(vae, store.latents[frames])
            images.append(decoded)
            if writer is not None:
                writer.write(decoded.numpy())

        def on_final(frames: list[int]) -> None:
            pending.extend(frames)
            while len(pending) >= decode_chunk:
                decode(pending[:decode_chunk])
                del pending[:decode_chunk]

        started = time.perf_counter()
        try:
            sampler = WindowSampler(model, positive, negative, steps, cfg, sampler_name, scheduler, progress=progress,
                                    pose=pose, plan=steps_plan)
            run_plan(steps_plan, store, sampler, snr_value(snr), seed, to_model_space=sampler.to_model_space,
                     on_frames_final=on_final, check_interrupt=runtime.throw_if_interrupted)
            if pending:
                decode(pending)
        finally:
            if writer is not None:
                writer.close()  # a cancelled run leaves a playable file with the frames finished so far
        log.info("Zizi loop: %d frames in %.1f s", total_frames, time.perf_counter() - started)
        return (torch.cat(images), {"samples": store.latents.clone()}, plan_text)


NODE_CLASS_MAPPINGS = {"ZiziLoopController": ZiziLoopController}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziLoopController": "Zizi Loop Controller (long video)"}

"""ZiziLoopController: hundreds of frames, one window at a time, in constant accelerator memory."""

from __future__ import annotations

import logging
import time

import torch

from ..zizi_models import run_memory
from ..zizi_models.autoregressive import LatentStore, run_plan
from ..zizi_models.noise_init import DEFAULT_NOISE_INIT
from ..zizi_models.planner import format_plan, plan_video
from ..zizi_models.temporal.trained_defaults import ANIMATEDIFF_STRIDE, ANIMATEDIFF_WINDOW, AUTO
from .comfy import runtime, sampling
from .comfy import vae as comfy_vae
from .loop_output import ALL_FRAMES, DEFAULT_STREAM_PREFIX, OUTPUT_MODES, STREAM, LoopOutput, open_writer
from .window_sampling import (
    LATENT_CHANNELS,
    NOISE_INIT_INPUT,
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

PLAN_MAX_LINES = 40  # longer plans are summarised in the log and the plan output unless full_plan is on
CONTEXT_FRAMES = 3  # earlier frames per extrapolation window besides the anchor (seed 001's scheme)

class ZiziLoopController:
    """Starter window, then extrapolation at `stride` from the last frames plus the first-frame anchor,
    then interpolation of the gaps; every frame generated once. Latents stay on the CPU. A run the host RAM
    cannot hold (zizi_models/run_memory.py) is refused before anything big is allocated."""

    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("IMAGE", "LATENT", "STRING")
    RETURN_NAMES = ("frames", "latent", "plan")
    FUNCTION = "generate"
    DESCRIPTION = ("Generates a long video autoregressively with a model inflated by ZiziTemporalModelLoader: each "
                   "window is conditioned on earlier frames (noise-augmented at `snr`) and the un-augmented first "
                   "frame. ControlNet hints with one image per video frame are cut to each window. For long videos set "
                   "output to streaming: frames go to an mp4 as they are final and only the last few are returned.")

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
                "total_frames": ("INT", {"default": 48, "min": 1, "max": 100000, "tooltip":
                                         "Frames of the video. 1 needs a hint_image: the video is that frame "
                                         "(VAE round-tripped), nothing is generated."}),
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
                "context_frames": ("INT", {"default": CONTEXT_FRAMES, "min": 1, "max": 16, "tooltip":
                                   "Earlier generated frames each extrapolation window is conditioned on, besides "
                                   "the first-frame anchor. Fewer leave room for more new frames per window "
                                   "(fewer windows, faster); see docs/quality.md for what it costs."}),
                "noise_init": NOISE_INIT_INPUT,
                "decode_chunk": ("INT", {"default": 16, "min": 1, "max": 1024, "tooltip": "Frames decoded per VAE call."}),
                "stream_prefix": ("STRING", {"default": "", "tooltip": "If set, final frames are also written to an mp4 "
                                             "with this prefix in the output folder as they are ready (kept if you cancel). "
                                             f"Empty with output '{STREAM}': '{DEFAULT_STREAM_PREFIX}'."}),
                "stream_fps": ("FLOAT", {"default": 12.0, "min": 0.1, "max": 240.0, "step": 0.5}),
                "output": (OUTPUT_MODES, {"default": ALL_FRAMES, "tooltip":
                           f"'{ALL_FRAMES}': the IMAGE output holds every frame (host RAM: frames x W x H x 12 "
                           f"bytes; a run that would not fit is refused before it starts). '{STREAM}': frames go "
                           f"to an mp4 (stream_prefix, or '{DEFAULT_STREAM_PREFIX}' when empty) as they are "
                           "final and are not kept; the IMAGE output is only the last decode_chunk frames. "
                           "The LATENT output has every frame in both modes."}),
                "full_plan": ("BOOLEAN", {"default": False, "tooltip": f"Off: plans over {PLAN_MAX_LINES} steps "
                              "are summarised (steps per stage, first and last steps) in the plan output and the "
                              "log. On: one line per step (megabytes for 100,000 frames)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},  # the node's id, for its progress text
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width: int | None = None, height: int | None = None,
                        total_frames: int | None = None) -> bool | str:
        # the declared ranges of every numeric input are checked before this (nodes/input_ranges.py); inputs
        # fed by links arrive as None and are checked when the node runs
        return check_inputs(width, height, None, None) or True

    def generate(self, model, positive, negative, vae, width: int, height: int, total_frames: int, window: int,
                 stride: int, snr: float, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                 hint_image: torch.Tensor | None = None, interpolate: bool = True, decode_chunk: int = 16,
                 stream_prefix: str = "", stream_fps: float = 12.0, pose_images: torch.Tensor | None = None,
                 unique_id: str | None = None, output: str = ALL_FRAMES, full_plan: bool = False,
                 context_frames: int = CONTEXT_FRAMES, noise_init: str = DEFAULT_NOISE_INIT):
        if output not in OUTPUT_MODES:
            raise ValueError(f"output: {output!r} is not one of {OUTPUT_MODES}")
        streaming = output == STREAM
        # values fed by links were not checked at validation
        problem = out_of_range(self.INPUT_TYPES(), width=width, height=height, total_frames=total_frames,
                               decode_chunk=decode_chunk, context_frames=context_frames)
        if problem:
            raise ValueError(problem)
        if total_frames == 1 and hint_image is None:
            raise ValueError("total_frames: 1 frame needs a hint_image (the video is then that frame); "
                             "connect one or use 2 or more frames")
        temporal = require_temporal_model(model)
        window, stride, used = resolve_window_stride(temporal, window, stride, total_frames)
        problem = check_inputs(width, height, total_frames if total_frames > 1 else None, window)
        if problem:
            raise ValueError(problem)
        check_control_hints(positive, negative, total_frames)
        max_positions = temporal.config.max_positions
        if window > max_positions:
            raise ValueError(f"window: {window} frames exceed the temporal module's {max_positions} positions; use window <= {max_positions}")
        runtime.throw_if_interrupted()  # a huge prompt can be cancelled before planning ...
        steps_plan = plan_video(total_frames, window=window, stride=stride, max_positions=max_positions,
                                hint=hint_image is not None, interpolate=interpolate, context_frames=context_frames)
        plan_text = f"{used}\n{format_plan(steps_plan, max_lines=None if full_plan else PLAN_MAX_LINES)}"
        log.info("Zizi loop plan (%d steps):\n%s", len(steps_plan), plan_text)
        runtime.throw_if_interrupted()  # ... and after it, before anything big is allocated
        scale = comfy_vae.vae_downscale(vae)
        self._admit(total_frames, width, height, decode_chunk, streaming, scale, pose_images)
        store = LatentStore(total_frames, LATENT_CHANNELS, height // scale, width // scale)
        pose = pose_images_for(pose_images, temporal, total_frames, height // scale, width // scale)
        if hint_image is not None:
            store.put([0], hint_latent(vae, hint_image, width, height))
        progress = runtime.SamplingProgress(sum(len(s.generate) for s in steps_plan), unique_id)
        prefix = stream_prefix or (DEFAULT_STREAM_PREFIX if streaming else "")
        runtime.throw_if_interrupted()
        frames_out = LoopOutput(total_frames, keep_all=not streaming, keep_last=decode_chunk,
                                writer=open_writer(prefix, width, height, stream_fps) if prefix else None)
        pending: list[int] = []

        def on_final(frames: list[int]) -> None:
            pending.extend(frames)
            while len(pending) >= decode_chunk:
                frames_out.add(comfy_vae.vae_decode(vae, store.latents[pending[:decode_chunk]]))
                del pending[:decode_chunk]

        started = time.perf_counter()
        try:
            sampler = WindowSampler(model, positive, negative, steps, cfg, sampler_name, scheduler, progress=progress,
                                    pose=pose, plan=steps_plan)
            run_plan(steps_plan, store, sampler, snr_value(snr), seed, to_model_space=sampler.to_model_space,
                     on_frames_final=on_final, check_interrupt=runtime.throw_if_interrupted, noise_init=noise_init)
            unreported = [f for f in range(frames_out.frames_added + len(pending), total_frames) if store.exists[f]]
            pending.extend(unreported)  # frames no step made final: the hint of a 1-frame video
            for first in range(0, len(pending), decode_chunk):
                frames_out.add(comfy_vae.vae_decode(vae, store.latents[pending[first:first + decode_chunk]]))
        finally:
            frames_out.close()
        log.info("Zizi loop: %d frames in %.1f s", total_frames, time.perf_counter() - started)
        return (frames_out.images(), {"samples": store.latents}, plan_text)

    @staticmethod
    def _admit(total_frames: int, width: int, height: int, decode_chunk: int, streaming: bool, scale: int,
               pose_images: torch.Tensor | None) -> None:
        """Refuse, before the latent store and the output are allocated, a run the host RAM cannot hold."""
        pose_bytes = 0 if pose_images is None else pose_images.nelement() * pose_images.element_size()
        memory = run_memory.estimate_run_memory(total_frames, width, height, decode_chunk, streaming, scale, pose_bytes)
        available = run_memory.available_bytes()
        problem = run_memory.admission_problem(memory, available, total_frames, width, height, streaming)
        if problem:
            raise ValueError(problem)
        log.info("Zizi loop: host RAM estimate %.2f GB (%s), %.1f GB available", memory.total / 1e9,
                 memory.describe(), available / 1e9)


NODE_CLASS_MAPPINGS = {"ZiziLoopController": ZiziLoopController}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziLoopController": "Zizi Loop Controller (long video)"}

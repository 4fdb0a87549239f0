"""ZiziStarterSampler / ZiziExtrapolateSampler / ZiziInterpolateSampler: one stage of the loop at a time.

Their LATENTs carry ``zizi_frames``: the absolute frame index of each latent in the batch (a LATENT
without it holds frames 0..N-1), and ``zizi_step``: how many plan steps made it (0 without it). The
frames each node conditions on and generates come from the loop controller's planner
(``zizi_models/stage_plan.py``), and its steps take the controller's step indices (``zizi_step`` on), so
starter -> extrapolate -> interpolate (-> extrapolate -> interpolate ...) with the controller's settings
computes exactly the controller's frames. All three sample through the same machinery as
ZiziLoopController.
"""

from __future__ import annotations

import dataclasses
import logging

from ..zizi_models.autoregressive import LatentStore, run_plan
from ..zizi_models.noise_init import DEFAULT_NOISE_INIT
from ..zizi_models.planner import ANCHOR_GAP, PlanStep
from ..zizi_models.stage_plan import extrapolation_step, interpolation_steps, starter_step
from ..zizi_models.temporal.trained_defaults import AUTO, trained_defaults_of
from .comfy import runtime, sampling
from .comfy import vae as comfy_vae
from .window_sampling import (
    LATENT_CHANNELS,
    NOISE_INIT_INPUT,
    POSE_INPUT,
    SNR_OFF,
    WindowSampler,
    check_control_hints,
    check_inputs,
    hint_latent,
    pose_images_for,
    require_temporal_model,
    resolve_window_stride,
    snr_value,
)

log = logging.getLogger(__name__)

FRAMES_KEY = "zizi_frames"
STEP_KEY = "zizi_step"  # plan steps that made the LATENT: the controller's index of the next step
HIDDEN = {"unique_id": "UNIQUE_ID"}  # the node's id, for its progress text


def frames_of(latent: dict, input_name: str) -> list[int]:
    samples = latent["samples"]
    frames = [int(f) for f in latent.get(FRAMES_KEY, range(samples.shape[0]))]
    if len(frames) != samples.shape[0] or len(set(frames)) != len(frames) or min(frames) < 0:
        raise ValueError(f"{input_name}: {FRAMES_KEY} must list one distinct frame index >= 0 per latent, got {frames}")
    return frames


def steps_done(latent: dict, input_name: str) -> int:
    done = latent.get(STEP_KEY, 0)
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise ValueError(f"{input_name}: {STEP_KEY} must be an int >= 0 (plan steps so far), got {done!r}")
    return done


def sampling_inputs(extra: dict | None = None) -> dict:
    required = {
        "model": ("MODEL", {"tooltip": "An SD1.5 MODEL inflated by ZiziTemporalModelLoader."}),
        "positive": ("CONDITIONING",),
        "negative": ("CONDITIONING",),
        **(extra or {}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1}),
        "sampler_name": (sampling.sampler_names(),),
        "scheduler": (sampling.scheduler_names(),),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    }
    return required


SNR_INPUT = ("FLOAT", {"default": 0.66, "min": 0.0, "max": SNR_OFF, "step": 0.01,
                       "tooltip": f"snr of the noise added to known frames other than frame 0 (the anchor). {SNR_OFF:g} = off."})


def run_steps(model, positive, negative, store: LatentStore, steps_plan: list[PlanStep], first_index: int,
              snr: float, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str, denoise: float,
              pose_images=None, node_id: str | None = None, noise_init: str = DEFAULT_NOISE_INIT) -> None:
    """``run_plan`` for steps that are the controller's steps ``first_index``, ``first_index + 1``, ...:
    each window is built with the controller's step index, so its augmentation noise (``seed * 1_000_003 +
    index``) and sampler seed (``seed + index``) are the controller's."""
    if snr < 0 or snr != snr:
        raise ValueError(f"snr: {snr} must be >= 0 ({SNR_OFF:g} = no augmentation)")
    temporal = require_temporal_model(model)
    total, _, latent_h, latent_w = store.latents.shape
    check_control_hints(positive, negative, total)
    pose = pose_images_for(pose_images, temporal, total, latent_h, latent_w)
    progress = runtime.SamplingProgress(sum(len(s.generate) for s in steps_plan), node_id)
    sampler = WindowSampler(model, positive, negative, steps, cfg, sampler_name, scheduler, denoise, progress, pose,
                            plan=steps_plan)

    def sample_window(request):  # progress text counts this node's windows
        return sampler(dataclasses.replace(request, step_index=request.step_index - first_index))

    run_plan(steps_plan, store, sample_window, snr_value(snr), seed, to_model_space=sampler.to_model_space,
             check_interrupt=runtime.throw_if_interrupted, first_index=first_index, noise_init=noise_init)


def output(store: LatentStore, frames: list[int], done: int) -> dict:
    return {"samples": store.latents[frames].clone(), FRAMES_KEY: list(frames), STEP_KEY: done}


class ZiziStarterSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    DESCRIPTION = ("Generates the first window of a video, optionally from a first frame (kept exactly, never "
                   "augmented): the loop controller's first step.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
                    "width": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                    "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                    "frames": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                                       "Frames of the first window (first frame included): the loop controller's "
                                       "window. 0 = auto: the window the temporal module was trained with. A window "
                                       "with a first frame takes one position more (the anchor gap), so it is cut "
                                       "to the module's positions - 1, as in the controller."})}),
                "optional": {"first_frame": ("IMAGE",),
                             "vae": ("VAE", {"tooltip": "Needed with first_frame; sets the latent size (SD1.5 VAE: / 8)."}),
                             "first_latent": ("LATENT", {"tooltip": "Instead of first_frame: its first latent is frame 0."}),
                             "pose_images": POSE_INPUT, "noise_init": NOISE_INIT_INPUT},
                "hidden": HIDDEN}

    def sample(self, model, positive, negative, width, height, frames, seed, steps, cfg, sampler_name, scheduler, denoise,
               first_frame=None, vae=None, first_latent=None, pose_images=None, unique_id=None,
               noise_init=DEFAULT_NOISE_INIT):
        problem = check_inputs(width, height, None, None)
        if problem:
            raise ValueError(problem)
        temporal = require_temporal_model(model)
        if frames == AUTO:
            frames = trained_defaults_of(temporal).window
            log.info("Zizi starter: frames %d (auto: the module's trained window)", frames)
        hinted = first_latent is not None or first_frame is not None
        plan_step = starter_step(frames, temporal.config.max_positions, hinted, ANCHOR_GAP)
        count = max(plan_step.frames) + 1 if plan_step is not None else 1
        scale = comfy_vae.vae_downscale(vae) if vae is not None else 8
        store = LatentStore(count, LATENT_CHANNELS, height // scale, width // scale)
        if first_latent is not None:
            latent = first_latent["samples"][:1]
            if latent.shape[-2:] != (height // scale, width // scale):
                raise ValueError(f"first_latent: {tuple(latent.shape[-2:])} latent is not {height // scale}x{width // scale} "
                                 f"(width/height / {scale})")
            store.put([0], latent)
        elif first_frame is not None:
            if vae is None:
                raise ValueError("vae: first_frame needs the VAE to encode it; connect the checkpoint's VAE")
            store.put([0], hint_latent(vae, first_frame, width, height))
        if plan_step is None:
            return (output(store, [0], 0),)
        run_steps(model, positive, negative, store, [plan_step], 0, SNR_OFF, seed, steps, cfg, sampler_name, scheduler,
                  denoise, pose_images, unique_id, noise_init)
        return (output(store, list(range(count)), 1),)


class ZiziExtrapolateSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("new_frames", "all_frames")
    FUNCTION = "sample"
    DESCRIPTION = ("The loop controller's extrapolation step: new frames every `stride` frames after the last known "
                   "frame G, conditioned on frame 0 when known (exact) and up to `context_frames` known frames G, "
                   "G - stride, ... (noise-augmented at snr).")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
            "known": ("LATENT", {"tooltip": "Frames so far (a Zizi LATENT with zizi_frames, or frames 0..N-1)."}),
            "count": ("INT", {"default": AUTO, "min": 0, "max": 63, "tooltip":
                              "New frames. 0 = auto: as many as fill the window (and the module's positions), never "
                              "past total_frames."}),
            "stride": ("INT", {"default": AUTO, "min": 0, "max": 16, "tooltip":
                               "Spacing of the new frames (the loop controller's stride; 1 = its interpolate off). "
                               "0 = auto: the largest extrapolation stride the module was trained with (AnimateDiff "
                               "modules: 4)."}),
            "context_frames": ("INT", {"default": 3, "min": 1, "max": 16, "tooltip":
                                       "Known frames G, G - stride, ... conditioned on, besides frame 0 (the loop "
                                       "controller uses 3)."}),
            "snr": SNR_INPUT}),
            "optional": {
                "pose_images": POSE_INPUT,
                "window": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                                   "Frames per window (frame 0, context and new frames): the loop controller's "
                                   "window. 0 = auto: the window the temporal module was trained with."}),
                "total_frames": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                                         "Frames of the whole video, as in the loop controller: no frame past it, "
                                         "and after the last frame `stride` reaches, the rest at stride 1. 0 = open "
                                         "(count decides)."}),
                "noise_init": NOISE_INIT_INPUT},
            "hidden": HIDDEN}

    def sample(self, model, positive, negative, known, count, stride, context_frames, snr, seed, steps, cfg,
               sampler_name, scheduler, denoise, pose_images=None, unique_id=None, window=AUTO, total_frames=0,
               noise_init=DEFAULT_NOISE_INIT):
        temporal = require_temporal_model(model)
        frames = frames_of(known, "known")
        done = steps_done(known, "known")
        window, stride, _ = resolve_window_stride(temporal, window, stride, total_frames or None)
        plan_step = extrapolation_step(frames, window, stride, temporal.config.max_positions, context_frames,
                                       total_frames or None, count or None)
        new = list(plan_step.generate)
        if total_frames and stride > 1 and max(frames) + stride > total_frames - 1:
            log.info("Zizi extrapolate: the tail of a %d-frame video after frame %d: stride 1, as in the loop "
                     "controller", total_frames, max(frames))
        if count == AUTO:
            log.info("Zizi extrapolate: count %d (auto: what fits the window)", len(new))
        samples = known["samples"]
        store = LatentStore(max(new) + 1, samples.shape[1], *samples.shape[-2:])
        store.put(frames, samples)
        run_steps(model, positive, negative, store, [plan_step], done, snr, seed, steps, cfg, sampler_name, scheduler,
                  denoise, pose_images, unique_id, noise_init)
        return (output(store, new, done + 1), output(store, sorted(frames + new), done + 1))


class ZiziInterpolateSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    DESCRIPTION = ("Fills every missing frame between known frames (a Zizi LATENT with gaps, e.g. ZiziExtrapolateSampler's "
                   "all_frames), left to right, a window at a time, as the loop controller does: conditioned on "
                   "frame 0 (exact), the gap's ends and one more known frame on each side when it fits (augmented "
                   "at snr).")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
            "latent_video": ("LATENT", {"tooltip": "Known frames with gaps between them (zizi_frames)."}),
            "window": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                               "Frames per window (frame 0, the gap's ends and their neighbours, new frames): the "
                               "loop controller's window. 0 = auto: the window the temporal module was trained "
                               "with."}),
            "snr": SNR_INPUT}), "optional": {"pose_images": POSE_INPUT, "noise_init": NOISE_INIT_INPUT}, "hidden": HIDDEN}

    def sample(self, model, positive, negative, latent_video, window, snr, seed, steps, cfg, sampler_name, scheduler, denoise,
               pose_images=None, unique_id=None, noise_init=DEFAULT_NOISE_INIT):
        temporal = require_temporal_model(model)
        if window == AUTO:
            window = trained_defaults_of(temporal).window
            log.info("Zizi interpolate: window %d (auto: the module's trained window)", window)
        frames = frames_of(latent_video, "latent_video")
        done = steps_done(latent_video, "latent_video")
        plan = interpolation_steps(frames, window, temporal.config.max_positions)
        samples = latent_video["samples"]
        store = LatentStore(max(frames) + 1, samples.shape[1], *samples.shape[-2:])
        store.put(frames, samples)
        if plan:
            run_steps(model, positive, negative, store, plan, done, snr, seed, steps, cfg, sampler_name, scheduler,
                      denoise, pose_images, unique_id, noise_init)
        return (output(store, list(range(min(frames), max(frames) + 1)), done + len(plan)),)


NODE_CLASS_MAPPINGS = {
    "ZiziStarterSampler": ZiziStarterSampler,
    "ZiziExtrapolateSampler": ZiziExtrapolateSampler,
    "ZiziInterpolateSampler": ZiziInterpolateSampler,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ZiziStarterSampler": "Zizi Starter Sampler",
    "ZiziExtrapolateSampler": "Zizi Extrapolate Sampler",
    "ZiziInterpolateSampler": "Zizi Interpolate Sampler",
}

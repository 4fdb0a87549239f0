"""ZiziStarterSampler / ZiziExtrapolateSampler / ZiziInterpolateSampler: one stage of the loop at a time.

Their LATENTs carry ``zizi_frames``: the absolute frame index of each latent in the batch (a LATENT
without it holds frames 0..N-1). All three sample through the same machinery as ZiziLoopController.
"""

from __future__ import annotations

import logging

from ..zizi_models.autoregressive import LatentStore, run_plan
from ..zizi_models.planner import ANCHOR_GAP, PlanStep, window_positions
from ..zizi_models.temporal.trained_defaults import AUTO, trained_defaults_of
from .comfy import runtime, sampling
from .comfy import vae as comfy_vae
from .window_sampling import (
    LATENT_CHANNELS,
    POSE_INPUT,
    SNR_OFF,
    WindowSampler,
    check_control_hints,
    check_inputs,
    hint_latent,
    pose_images_for,
    require_temporal_model,
    snr_value,
)

log = logging.getLogger(__name__)

FRAMES_KEY = "zizi_frames"
HIDDEN = {"unique_id": "UNIQUE_ID"}  # the node's id, for its progress text


def frames_of(latent: dict, input_name: str) -> list[int]:
    samples = latent["samples"]
    frames = [int(f) for f in latent.get(FRAMES_KEY, range(samples.shape[0]))]
    if len(frames) != samples.shape[0] or len(set(frames)) != len(frames) or min(frames) < 0:
        raise ValueError(f"{input_name}: {FRAMES_KEY} must list one distinct frame index >= 0 per latent, got {frames}")
    return frames


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


def run_steps(model, positive, negative, store: LatentStore, steps_plan: list[PlanStep], snr: float, seed: int,
              steps: int, cfg: float, sampler_name: str, scheduler: str, denoise: float, pose_images=None,
              node_id: str | None = None) -> None:
    temporal = require_temporal_model(model)
    total, _, latent_h, latent_w = store.latents.shape
    check_control_hints(positive, negative, total)
    pose = pose_images_for(pose_images, temporal, total, latent_h, latent_w)
    progress = runtime.SamplingProgress(sum(len(s.generate) for s in steps_plan), node_id)
    sampler = WindowSampler(model, positive, negative, steps, cfg, sampler_name, scheduler, denoise, progress, pose,
                            plan=steps_plan)
    run_plan(steps_plan, store, sampler, snr_value(snr), seed, to_model_space=sampler.to_model_space,
             check_interrupt=runtime.throw_if_interrupted)


def auto_count(window: int, max_positions: int, context: list[int], anchor: bool, last: int, stride: int) -> int:
    """How many frames at `stride` after `last` fill a window of `window` frames next to the known ones
    (context + anchor) and stay within the module's positions (at least 1)."""
    room = window - len(context) - int(anchor)
    has_anchor = anchor or 0 in context  # frame 0 known: it is the anchor, at position 0 (see window_positions)
    others = [f for f in context if f != 0 or not has_anchor]
    first = min(others) if others else last + stride
    gap = ANCHOR_GAP if has_anchor else 0
    while room > 1 and last + stride * room - first + gap >= max_positions:
        room -= 1
    return max(room, 1)


def step(kind: str, known: list[int], generate: list[int], max_positions: int) -> PlanStep:
    anchor = 0 if 0 in known else None
    frames = sorted(known + generate)
    positions = window_positions(frames, anchor, max_positions)
    return PlanStep(kind, tuple(sorted(known)), tuple(sorted(generate)), anchor, positions)


def output(store: LatentStore, frames: list[int]) -> dict:
    return {"samples": store.latents[frames].clone(), FRAMES_KEY: list(frames)}


class ZiziStarterSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    DESCRIPTION = "Generates the first window of a video, optionally from a first frame (kept exactly, never augmented)."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
                    "width": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                    "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8}),
                    "frames": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                                       "Frames of the first window (first frame included). 0 = auto: the window the "
                                       "temporal module was trained with."})}),
                "optional": {"first_frame": ("IMAGE",),
                             "vae": ("VAE", {"tooltip": "Needed with first_frame; sets the latent size (SD1.5 VAE: / 8)."}),
                             "first_latent": ("LATENT", {"tooltip": "Instead of first_frame: its first latent is frame 0."}),
                             "pose_images": POSE_INPUT},
                "hidden": HIDDEN}

    def sample(self, model, positive, negative, width, height, frames, seed, steps, cfg, sampler_name, scheduler, denoise,
               first_frame=None, vae=None, first_latent=None, pose_images=None, unique_id=None):
        problem = check_inputs(width, height, None, None)
        if problem:
            raise ValueError(problem)
        temporal = require_temporal_model(model)
        if frames == AUTO:
            known_first = first_latent is not None or first_frame is not None
            limit = temporal.config.max_positions - (1 if known_first else 0)  # the anchor gap costs a position
            frames = min(trained_defaults_of(temporal).window, limit)
            log.info("Zizi starter: frames %d (auto: the module's trained window)", frames)
        scale = comfy_vae.vae_downscale(vae) if vae is not None else 8
        store = LatentStore(frames, LATENT_CHANNELS, height // scale, width // scale)
        known: list[int] = []
        if first_latent is not None:
            latent = first_latent["samples"][:1]
            if latent.shape[-2:] != (height // scale, width // scale):
                raise ValueError(f"first_latent: {tuple(latent.shape[-2:])} latent is not {height // scale}x{width // scale} "
                                 f"(width/height / {scale})")
            store.put([0], latent)
            known = [0]
        elif first_frame is not None:
            if vae is None:
                raise ValueError("vae: first_frame needs the VAE to encode it; connect the checkpoint's VAE")
            store.put([0], hint_latent(vae, first_frame, width, height))
            known = [0]
        generate = [f for f in range(frames) if f not in known]
        if not generate:
            return (output(store, [0]),)
        run_steps(model, positive, negative, store, [step("starter", known, generate, temporal.config.max_positions)],
                  SNR_OFF, seed, steps, cfg, sampler_name, scheduler, denoise, pose_images, unique_id)
        return (output(store, list(range(frames))),)


class ZiziExtrapolateSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("new_frames", "all_frames")
    FUNCTION = "sample"
    DESCRIPTION = ("Generates `count` new frames every `stride` frames after the last known frame, conditioned on the "
                   "last `context_frames` known frames (noise-augmented at snr) and frame 0 when known (exact).")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
            "known": ("LATENT", {"tooltip": "Frames so far (a Zizi LATENT with zizi_frames, or frames 0..N-1)."}),
            "count": ("INT", {"default": AUTO, "min": 0, "max": 63, "tooltip":
                              "New frames. 0 = auto: as many as fill the module's trained window (and its positions)."}),
            "stride": ("INT", {"default": AUTO, "min": 0, "max": 16, "tooltip":
                               "Spacing of the new frames. 0 = auto: the largest extrapolation stride the module was "
                               "trained with (AnimateDiff modules: 4)."}),
            "context_frames": ("INT", {"default": 3, "min": 1, "max": 16}),
            "snr": SNR_INPUT}), "optional": {"pose_images": POSE_INPUT}, "hidden": HIDDEN}

    def sample(self, model, positive, negative, known, count, stride, context_frames, snr, seed, steps, cfg,
               sampler_name, scheduler, denoise, pose_images=None, unique_id=None):
        temporal = require_temporal_model(model)
        frames = frames_of(known, "known")
        last = max(frames)
        context = sorted(frames)[-context_frames:]
        anchor = [0] if 0 in frames and 0 not in context else []
        if count == AUTO or stride == AUTO:
            defaults = trained_defaults_of(temporal)
            stride = defaults.stride if stride == AUTO else stride
            if count == AUTO:
                count = auto_count(defaults.window, temporal.config.max_positions, context, bool(anchor), last, stride)
            log.info("Zizi extrapolate: count %d, stride %d (auto from %s)", count, stride, defaults.source)
        new = [last + stride * (i + 1) for i in range(count)]
        samples = known["samples"]
        store = LatentStore(max(new) + 1, samples.shape[1], *samples.shape[-2:])
        store.put(frames, samples)
        run_steps(model, positive, negative, store, [step("extrapolate", anchor + context, new, temporal.config.max_positions)],
                  snr, seed, steps, cfg, sampler_name, scheduler, denoise, pose_images, unique_id)
        return (output(store, new), output(store, sorted(frames + new)))


class ZiziInterpolateSampler:
    CATEGORY = "Zizi Video/sampling"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    DESCRIPTION = ("Fills every missing frame between known frames (a Zizi LATENT with gaps, e.g. ZiziExtrapolateSampler's "
                   "all_frames), a window at a time, conditioned on the gap's ends (augmented at snr) and frame 0 (exact).")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": sampling_inputs({
            "latent_video": ("LATENT", {"tooltip": "Known frames with gaps between them (zizi_frames)."}),
            "window": ("INT", {"default": AUTO, "min": 0, "max": 64, "tooltip":
                               "Frames per window (the gap's two ends, frame 0 and new frames). 0 = auto: the window "
                               "the temporal module was trained with."}),
            "snr": SNR_INPUT}), "optional": {"pose_images": POSE_INPUT}, "hidden": HIDDEN}

    def sample(self, model, positive, negative, latent_video, window, snr, seed, steps, cfg, sampler_name, scheduler, denoise,
               pose_images=None, unique_id=None):
        temporal = require_temporal_model(model)
        if window == AUTO:
            window = trained_defaults_of(temporal).window
            log.info("Zizi interpolate: window %d (auto: the module's trained window)", window)
        frames = sorted(frames_of(latent_video, "latent_video"))
        samples = latent_video["samples"]
        store = LatentStore(frames[-1] + 1, samples.shape[1], *samples.shape[-2:])
        store.put(frames_of(latent_video, "latent_video"), samples)
        anchor = [0] if 0 in frames else []
        per_step = window - 2 - len(anchor)  # room left for gap frames next to both ends (and the anchor)
        if per_step < 1:
            raise ValueError(f"window: {window} leaves no room for a gap frame next to two ends and the anchor; use >= {3 + len(anchor)}")
        plan = []
        for a, b in zip(frames, frames[1:], strict=False):
            gap = list(range(a + 1, b))
            for start in range(0, len(gap), per_step):
                chunk = gap[start:start + per_step]
                left = a if start == 0 else gap[start - 1]
                plan.append(step("interpolate", sorted(set(anchor + [left, b])), chunk, temporal.config.max_positions))
        if plan:
            run_steps(model, positive, negative, store, plan, snr, seed, steps, cfg, sampler_name, scheduler, denoise,
                      pose_images, unique_id)
        return (output(store, list(range(frames[0], frames[-1] + 1))),)


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

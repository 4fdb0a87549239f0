"""Stage nodes chained with the loop controller's settings compute the controller's latents exactly (and the
stage plan they use, zizi_models/stage_plan.py, on examples).

In an in-process ComfyUI on a tiny SD1.5-family UNet with a random ("trained") temporal module:
ZiziLoopController.generate, and ZiziStarterSampler -> ZiziExtrapolateSampler -> ZiziInterpolateSampler with
the same seed and settings, give the same latent video bit for bit, with interpolation on (19 frames, window 7,
stride 4) and off (stride 1). Only the VAE is a cheap stand-in (it encodes the hint image for both paths and
decodes the controller's frames). The same chain with the extrapolation's old context choice (the last known
frames instead of the planner's stride grid) or without the step count (other seeds) gives other frames: the
equality is not trivially true.
"""

from __future__ import annotations

import pytest
import torch
from einops import rearrange, repeat

from devtools.random_sd15 import TINY_UNET_CONFIG, build_unet
from tests.unit.tiny_inflated import inflate, perturbed_temporal
from zizi_models.planner import plan_video
from zizi_models.stage_plan import (
    extrapolation_step,
    interpolation_steps,
    stage_calls,
    stage_steps,
    starter_step,
)

LATENT = 8  # 64x64 frames
SIZE = LATENT * 8
SEED, STEPS, CFG, SNR = 11, 2, 1.0, 0.66
SAMPLER = ("euler", "normal")


class FakeVAE:
    """ComfyUI VAE stand-in: encode = 8x8 mean pooling (+ a copy of the first channel), decode = nearest upsampling."""

    downscale_ratio = 8

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        pooled = rearrange(images, "n (h a) (w b) c -> n c h w (a b)", a=8, b=8).mean(-1)
        return torch.cat([pooled, pooled[:, :1]], dim=1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return repeat(latents[:, :3].clamp(0, 1), "n c h w -> n (h a) (w b) c", a=8, b=8).contiguous()


@pytest.fixture(scope="module")
def setup(comfy_pack, one_torch_thread):
    unet = build_unet(TINY_UNET_CONFIG, seed=5).float()
    generator = torch.Generator().manual_seed(6)
    _, model, _ = inflate(comfy_pack, unet, perturbed_temporal(unet, generator))
    positive = [[torch.randn(1, 77, 32, generator=generator), {}]]
    negative = [[torch.zeros(1, 77, 32), {}]]
    hint = torch.rand(1, SIZE, SIZE, 3, generator=generator)
    return comfy_pack.nodes, model, positive, negative, hint


def controller_latents(nodes, model, pos, neg, hint, total: int, window: int, stride: int, interpolate: bool):
    _, latent, _ = nodes.loop_controller.ZiziLoopController().generate(
        model, pos, neg, FakeVAE(), SIZE, SIZE, total, window, stride, SNR, SEED, STEPS, CFG, *SAMPLER,
        hint_image=hint, interpolate=interpolate)
    return latent["samples"]


def starter(nodes, model, pos, neg, hint, window: int) -> dict:
    (start,) = nodes.window_samplers.ZiziStarterSampler().sample(
        model, pos, neg, SIZE, SIZE, window, SEED, STEPS, CFG, *SAMPLER, 1.0, first_frame=hint, vae=FakeVAE())
    return start


def extrapolate(nodes, model, pos, neg, known: dict, window: int, stride: int, total: int) -> tuple[dict, dict]:
    return nodes.window_samplers.ZiziExtrapolateSampler().sample(
        model, pos, neg, known, 0, stride, 3, SNR, SEED, STEPS, CFG, *SAMPLER, 1.0, window=window, total_frames=total)


def interpolate(nodes, model, pos, neg, latent_video: dict, window: int) -> dict:
    (filled,) = nodes.window_samplers.ZiziInterpolateSampler().sample(
        model, pos, neg, latent_video, window, SNR, SEED, STEPS, CFG, *SAMPLER, 1.0)
    return filled


def test_starter_extrapolate_interpolate_reproduce_the_controller(setup, comfy_pack, monkeypatch) -> None:
    nodes, model, pos, neg, hint = setup
    reference = controller_latents(nodes, model, pos, neg, hint, 19, 7, 4, interpolate=True)
    start = starter(nodes, model, pos, neg, hint, 7)
    assert start["zizi_frames"] == list(range(7)) and start["zizi_step"] == 1
    new, everything = extrapolate(nodes, model, pos, neg, start, 7, 4, 19)
    assert new["zizi_frames"] == [10, 14, 18] and everything["zizi_step"] == 2
    filled = interpolate(nodes, model, pos, neg, everything, 7)
    assert filled["zizi_frames"] == list(range(19)) and filled["zizi_step"] == 5  # 1 + 1 + 3 steps, as the plan
    assert filled["samples"].abs().mean() > 0.01  # frames were generated, not left at zero
    assert torch.equal(filled["samples"], reference)

    # the equality means something: another context (today's old choice, the last 3 known frames 4, 5, 6
    # instead of the stride grid 2, 6) or other seeds (no step count: step index 0) give other frames
    stage_plan = comfy_pack.zizi_models.stage_plan
    real_step = stage_plan.extrapolation_step

    def last_frames_context(*args, **kwargs):
        step = real_step(*args, **kwargs)
        known = (0, 4, 5, 6)
        return comfy_pack.zizi_models.planner.PlanStep(
            step.kind, known, step.generate, 0,
            comfy_pack.zizi_models.planner.window_positions(sorted(known + step.generate), 0, 32))

    monkeypatch.setattr(comfy_pack.nodes.window_samplers, "extrapolation_step", last_frames_context)
    other_context, _ = extrapolate(nodes, model, pos, neg, start, 7, 4, 19)
    monkeypatch.setattr(comfy_pack.nodes.window_samplers, "extrapolation_step", real_step)
    assert (other_context["samples"] - reference[[10, 14, 18]]).abs().mean() > 1e-3
    other_seeds, _ = extrapolate(nodes, model, pos, neg, {**start, "zizi_step": 0}, 7, 4, 19)
    assert (other_seeds["samples"] - reference[[10, 14, 18]]).abs().mean() > 1e-3


def test_contiguous_extrapolation_reproduces_the_controller_with_interpolate_off(setup) -> None:
    nodes, model, pos, neg, hint = setup
    reference = controller_latents(nodes, model, pos, neg, hint, 12, 7, 4, interpolate=False)
    latent = starter(nodes, model, pos, neg, hint, 7)
    made = []
    while max(latent["zizi_frames"]) < 11:  # the controller's interpolate off is stride 1 here
        new, latent = extrapolate(nodes, model, pos, neg, latent, 7, 1, 12)
        made.append(new["zizi_frames"])
    assert made == [[7, 8, 9], [10, 11]] and latent["zizi_step"] == 3
    assert torch.equal(latent["samples"], reference)
    assert interpolate(nodes, model, pos, neg, latent, 7)["zizi_step"] == 3  # no gap: nothing to do


# ---------------------------------------------------------------- the stage plan itself (pure Python; the
# replay of whole plans stage by stage is a property test in test_planner.py)

def test_stage_calls_of_the_30_frame_plan():
    plan = plan_video(30, window=7, stride=4)
    calls = stage_calls(plan)
    assert [(kind, [i for i, _ in steps]) for kind, steps in calls] == [
        ("starter", [0]), ("extrapolate", [1]), ("interpolate", [2, 3, 4, 5]), ("extrapolate", [6]),
        ("interpolate", [7]), ("extrapolate", [8])]
    assert stage_steps(plan, "extrapolate") == [(1, plan[1]), (6, plan[6]), (8, plan[8])]
    # the tail: told where the video ends, extrapolation after frame 26 goes at stride 1, as in the controller
    assert extrapolation_step(range(27), 7, 4, 32, total_frames=30) == plan[8]


def test_extrapolation_from_seven_frames_is_the_controllers_step_1():
    step = extrapolation_step(range(7), 7, 4, 32, count=3)
    assert step == plan_video(19, window=7, stride=4)[1]
    assert step.known == (0, 2, 6) and step.generate == (10, 14, 18)  # context on the stride grid: 6, 2
    assert extrapolation_step(range(7), 7, 4, 32).generate == (10, 14, 18, 22)  # auto: what fits the window
    assert extrapolation_step(range(7), 7, 4, 32, total_frames=19).generate == (10, 14, 18)
    assert extrapolation_step(range(1, 7), 6, 4, 32).anchor is None  # no frame 0: no anchor


def test_stage_plan_errors_name_the_input():
    with pytest.raises(ValueError, match=r"^count: 5 new frames at stride 4 do not fit .* at most 4"):
        extrapolation_step(range(7), 7, 4, 32, count=5)
    with pytest.raises(ValueError, match=r"^total_frames: the known frames already reach frame 6 of a 7-frame"):
        extrapolation_step(range(7), 7, 4, 32, total_frames=7)
    with pytest.raises(ValueError, match=r"^window: 3 leaves no room for a gap frame"):
        interpolation_steps([0, 1, 5], 3, 32)
    assert interpolation_steps(range(5), 3, 32) == []  # no gap: nothing to do, whatever the window
    with pytest.raises(ValueError, match=r"^window: 40 frames exceed the temporal module's 32 positions"):
        interpolation_steps([0, 4], 40, 32)
    with pytest.raises(ValueError, match=r"^frames: 40 exceed the temporal module's 32 positions"):
        starter_step(40, 32, True)
    assert starter_step(1, 32, True) is None  # the hint alone: nothing to generate
    assert starter_step(32, 32, True).generate == tuple(range(1, 31))  # the anchor gap costs a position

"""The training batch builder and window sampler: the convention the ComfyUI samplers rely on."""

from __future__ import annotations

import math
import random

import pytest
import torch

from train.batch import build_training_batch, drop_prompts, masked_mse, min_snr_weights
from train.config import WindowConfig
from train.seeding import derive_seed
from train.windows import interpolation_offsets, required_clip_length, sample_window
from zizi_models.planner import window_positions

MAX_POSITIONS = 32


def _alphas(steps: int = 1000) -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps) ** 2
    return torch.cumprod(1 - betas, dim=0)


def _latents(batch: int, frames: int) -> torch.Tensor:
    # distinct, recognisable values per (window, frame): 100 * b + f + small spatial pattern
    base = torch.arange(batch)[:, None] * 100.0 + torch.arange(frames)[None, :]  # [B, F]
    pattern = torch.linspace(0, 0.5, 4 * 3 * 3).reshape(4, 3, 3)
    return base[:, :, None, None, None] + pattern  # [B, F, 4, 3, 3]


@pytest.mark.parametrize("task", ["starter", "extrapolate", "interpolate"])
def test_windows_put_the_anchor_first_at_position_zero_with_planner_positions(task: str) -> None:
    config = WindowConfig(frames=7, task_weights={task: 1.0}, extrapolate_strides=[1, 3], starter_strides=[1, 2],
                          interpolate_outer_strides=[1, 4])
    rng = random.Random(7)
    for _ in range(50):
        spec = sample_window(40, config, MAX_POSITIONS, rng)
        assert spec.task == task and len(spec.frames) == 7
        assert spec.anchor == 0 and spec.frames[0] == 0 and spec.known[0] and spec.is_anchor == (True,) + (False,) * 6
        assert spec.positions[0] == 0
        assert spec.positions == tuple(window_positions(spec.frames, 0, MAX_POSITIONS, anchor_gap=config.anchor_gap))
        assert spec.positions[1] == config.anchor_gap  # the body starts after the gap, wherever it sits in the clip
        assert not all(spec.known), "a window must generate at least one frame"
        body_known = spec.known[1:]
        if task == "starter":
            assert not any(body_known)
        elif task == "extrapolate":  # known context first, then generated frames
            first_generated = body_known.index(False)
            assert first_generated >= 1 and not any(body_known[first_generated:])
        else:  # known before and after a generated gap
            assert body_known[0] and body_known[-1] and not all(body_known)
        body = spec.frames[1:]
        diffs = [b - a for a, b in zip(body, body[1:], strict=False)]
        if task != "interpolate":
            assert set(diffs) == {spec.stride}
        else:  # the gap (and its endpoints) at the stride; extra known frames outside at an outer stride
            gap = [i for i, k in enumerate(body_known) if not k]
            assert all(diffs[i] == spec.stride for i in range(gap[0] - 1, gap[-1] + 1))
            assert set(diffs) <= {1, 4}


def test_windows_without_anchor_use_no_gap() -> None:
    config = WindowConfig(frames=4, no_anchor_prob=1.0, task_weights={"extrapolate": 1.0}, extrapolate_strides=[2])
    spec = sample_window(20, config, MAX_POSITIONS, random.Random(1))
    assert spec.anchor is None and not any(spec.is_anchor)
    assert spec.positions == tuple(window_positions(spec.frames, None, MAX_POSITIONS))
    assert spec.positions[0] == 0 and spec.positions[1] == 2


def test_interpolation_windows_look_like_the_planners() -> None:
    assert interpolation_offsets(2, 3, 2, 1, 1, 4) == [0, 1, 2, 3, 4, 5, 9]  # 5, 6 | 7 8 9 | 10, 14
    assert interpolation_offsets(2, 2, 1, 1, 4, 1) == [0, 4, 5, 6, 7]  # 2, 6 | 7 8 | 9


def test_required_clip_length_covers_every_layout() -> None:
    config = WindowConfig(frames=5, extrapolate_strides=[1, 4])
    assert required_clip_length(config) == 1 + 4 * 3 + 1
    rng = random.Random(0)
    for _ in range(200):
        assert max(sample_window(required_clip_length(config), config, MAX_POSITIONS, rng).frames) < 14
    with pytest.raises(ValueError, match="too short"):
        sample_window(5, WindowConfig(frames=5, task_weights={"extrapolate": 1.0}, extrapolate_strides=[4]),
                      MAX_POSITIONS, rng)


def test_batch_builder_follows_the_training_convention() -> None:
    batch, frames = 2, 5
    latents = _latents(batch, frames)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 1, 1]], dtype=torch.bool)
    is_anchor = torch.tensor([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    positions = torch.tensor([window_positions([0, 5, 6, 7, 8], 0, MAX_POSITIONS)] * 2)
    alphas = _alphas()
    seed = derive_seed(3, 4)
    tb = build_training_batch(latents, mask, is_anchor, positions, alphas, torch.Generator().manual_seed(seed),
                              snr_min=0.5, snr_max=2.0)

    # the same draws, in the documented order
    gen = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    eps = torch.randn(latents.shape, generator=gen)
    u = torch.rand((batch, frames), generator=gen)
    torch.rand((batch, frames), generator=gen)  # clean flags (clean_prob = 0)
    eps_aug = torch.randn(latents.shape, generator=gen)

    assert torch.equal(tb.timesteps, t) and torch.equal(tb.noise, eps)
    # ONE timestep per window; every frame's noisy slot is q(x_t | x_0) of its OWN latent, known frames too
    ac = alphas[t].reshape(batch, 1, 1, 1, 1)
    torch.testing.assert_close(tb.noisy, ac.sqrt() * latents + (1 - ac).sqrt() * eps, rtol=1e-6, atol=1e-5)

    snr = torch.exp(math.log(0.5) + u * (math.log(2.0) - math.log(0.5)))
    for b in range(batch):
        for f in range(frames):
            if is_anchor[b, f]:  # the anchor: clean, level 0
                assert torch.equal(tb.known_latents[b, f], latents[b, f])
                assert tb.aug_level[b, f] == 0 and math.isinf(tb.snr[b, f])
            elif mask[b, f]:  # other known frames: z_aug with their own snr, level 1 / (1 + snr)
                a = snr[b, f] / (1 + snr[b, f])
                expected = a.sqrt() * latents[b, f] + (1 - a).sqrt() * eps_aug[b, f]
                torch.testing.assert_close(tb.known_latents[b, f], expected, rtol=1e-6, atol=1e-5)
                torch.testing.assert_close(tb.aug_level[b, f], 1 / (1 + snr[b, f]))
                assert 1 / 3 <= tb.aug_level[b, f] <= 2 / 3
            else:  # generated frames: no content, level 0
                assert torch.count_nonzero(tb.known_latents[b, f]) == 0
                assert tb.aug_level[b, f] == 0
    assert torch.equal(tb.mask, mask.float())
    assert torch.equal(tb.loss_mask, 1 - mask.float())
    assert torch.equal(tb.positions, positions)


def test_loss_counts_generated_frames_only() -> None:
    noise = torch.randn(2, 4, 4, 3, 3)
    loss_mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)
    prediction = noise.clone()
    prediction[:, 0] += 100.0  # known frames: wildly wrong, but not counted
    prediction[0, 3] -= 50.0
    assert torch.equal(masked_mse(prediction, noise, loss_mask), torch.zeros(2))
    prediction[1, 3] += 2.0  # a generated frame: counted, mean over its frames only
    torch.testing.assert_close(masked_mse(prediction, noise, loss_mask), torch.tensor([0.0, 4.0]))


def test_batch_builder_rejects_windows_without_a_generated_frame() -> None:
    latents = _latents(1, 3)
    with pytest.raises(ValueError, match="generated"):
        build_training_batch(latents, torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.bool),
                             torch.arange(3)[None], _alphas(), torch.Generator().manual_seed(0), 0.5, 2.0)


def test_snr_is_log_uniform_and_clean_prob_gives_level_zero() -> None:
    latents = torch.zeros(64, 8, 4, 2, 2)
    mask = torch.ones(64, 8, dtype=torch.bool)
    mask[:, -1] = False
    anchor = torch.zeros(64, 8, dtype=torch.bool)
    tb = build_training_batch(latents, mask, anchor, torch.arange(8).repeat(64, 1), _alphas(),
                              torch.Generator().manual_seed(0), snr_min=0.25, snr_max=4.0, clean_prob=0.25)
    known = tb.snr[:, :-1]
    finite = known[torch.isfinite(known)]
    assert 0.6 < finite.numel() / known.numel() < 0.9  # ~75 % augmented
    assert finite.min() >= 0.25 and finite.max() <= 4.0
    assert abs(float(finite.log().mean())) < 0.15  # log-uniform on [log 1/4, log 4] has mean 0
    assert torch.all(tb.aug_level[:, :-1][~torch.isfinite(known)] == 0)


def test_text_dropout_uses_the_generator() -> None:
    prompts = ["a"] * 1000
    dropped = drop_prompts(prompts, 0.2, torch.Generator().manual_seed(0))
    assert 150 < dropped.count("") < 250
    assert dropped == drop_prompts(prompts, 0.2, torch.Generator().manual_seed(0))


def test_min_snr_weights_cap_low_noise_steps_only() -> None:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2  # SD1.5's scaled-linear schedule
    ac = torch.cumprod(1 - betas, dim=0)
    t = torch.tensor([0, 100, 500, 999])
    snr = ac[t] / (1 - ac[t])
    weights = min_snr_weights(t, ac, 5.0)
    assert snr[0] > 5 and snr[-1] < 5
    assert weights[0].item() == pytest.approx(5.0 / snr[0].item(), rel=1e-5)  # t = 0: SNR ~ 1000 -> ~0.005
    assert weights[0] < 0.01
    assert torch.equal(weights[snr <= 5], torch.ones(int((snr <= 5).sum())))  # high noise: unchanged
    assert torch.all(weights[1:] >= weights[:-1])  # lower SNR never weighs less
    assert torch.equal(min_snr_weights(t, ac, 0.0), torch.ones(4))  # gamma 0 = off

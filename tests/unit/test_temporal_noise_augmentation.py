"""Noise augmentation as DESIGN.md defines it, and the 9-channel UNet input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zizi_models.temporal import (
    augment_latents,
    augmentation_level,
    build_unet_input,
    known_frame_channels,
    signal_fraction,
    snr_from_level,
)


def latents(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "snr,a", [(0.33, 0.33 / 1.33), (0.66, 0.66 / 1.66), (1.0, 0.5), (0.0, 0.0), (math.inf, 1.0)]
)
def test_signal_fraction_is_snr_over_one_plus_snr(snr, a):
    assert signal_fraction(snr) == pytest.approx(a, abs=1e-12)
    assert augmentation_level(snr) == pytest.approx(1.0 - a, abs=1e-12)


def test_level_is_bounded_and_zero_for_clean():
    assert augmentation_level(math.inf) == 0.0
    assert augmentation_level(0.0) == 1.0
    levels = augmentation_level(torch.tensor([0.0, 0.33, 0.66, 10.0, math.inf]))
    assert torch.all((levels >= 0) & (levels <= 1))
    assert torch.all(levels[:-1] > levels[1:])  # more signal, lower level


def test_formula_with_given_noise():
    z, eps = latents(2, 3, 4, 8, 8), latents(2, 3, 4, 8, 8, seed=1)
    a = 0.66 / 1.66
    expected = math.sqrt(a) * z + math.sqrt(1 - a) * eps
    assert torch.allclose(augment_latents(z, 0.66, noise=eps), expected, atol=1e-6)


def test_signal_to_noise_power_ratio_is_snr():
    z, eps = latents(4, 4, 16, 16), latents(4, 4, 16, 16, seed=1)
    signal = augment_latents(z, 0.33, noise=torch.zeros_like(eps))
    noise = augment_latents(torch.zeros_like(z), 0.33, noise=eps)
    ratio = (signal.square().mean() / z.square().mean()) / (noise.square().mean() / eps.square().mean())
    assert ratio.item() == pytest.approx(0.33, rel=1e-5)


def test_inf_snr_is_exact_identity_and_zero_snr_is_pure_noise():
    z, eps = latents(1, 2, 4, 8, 8), latents(1, 2, 4, 8, 8, seed=1)
    assert torch.equal(augment_latents(z, math.inf, noise=eps), z)
    assert torch.equal(augment_latents(z, 0.0, noise=eps), eps)


def test_per_frame_snr_keeps_the_anchor_clean():
    z, eps = latents(2, 4, 4, 8, 8), latents(2, 4, 4, 8, 8, seed=1)
    snr = torch.tensor([[math.inf, 0.66, 0.66, 0.33]] * 2)
    out = augment_latents(z, snr, noise=eps)
    assert torch.equal(out[:, 0], z[:, 0])
    assert torch.allclose(out[:, 3], augment_latents(z[:, 3], 0.33, noise=eps[:, 3]), atol=1e-6)


def test_generator_makes_noise_reproducible_and_variance_is_preserved():
    z = latents(8, 4, 32, 32)
    a = augment_latents(z, 0.5, generator=torch.Generator().manual_seed(3))
    b = augment_latents(z, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.var().item() == pytest.approx(1.0, abs=0.05)  # sqrt(a)^2 + sqrt(1-a)^2 = 1


@pytest.mark.parametrize("bad", [-0.1, -math.inf, math.nan])
def test_invalid_snr_raises(bad):
    with pytest.raises(ValueError, match="snr"):
        augment_latents(latents(1, 4, 2, 2), bad)
    with pytest.raises(ValueError, match="snr"):
        augmentation_level(torch.tensor([1.0, bad]))


def test_noise_shape_mismatch_raises():
    with pytest.raises(ValueError, match="noise shape"):
        augment_latents(latents(1, 4, 2, 2), 0.5, noise=latents(1, 4, 2, 3))


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
def test_level_round_trips_through_snr(snr):
    level = augmentation_level(snr)
    assert 0.0 <= level <= 1.0
    assert snr_from_level(level) == pytest.approx(snr, rel=1e-6, abs=1e-9)


def test_snr_from_level_edges():
    assert snr_from_level(0.0) == math.inf
    assert snr_from_level(1.0) == 0.0
    with pytest.raises(ValueError):
        snr_from_level(1.5)


def test_unet_input_layout():
    noisy, known = latents(2, 3, 4, 8, 8), latents(2, 3, 4, 8, 8, seed=1)
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    x = build_unet_input(noisy, mask, known)
    assert x.shape == (2, 3, 9, 8, 8)
    assert torch.equal(x[:, :, :4], noisy)
    assert torch.equal(x[:, :, 4], mask[:, :, None, None].expand(2, 3, 8, 8))
    assert torch.equal(x[0, 0, 5:], known[0, 0])
    assert not x[0, 1, 4:].any() and not x[1, 0, 4:].any()  # unknown frames: all zeros
    assert torch.equal(known_frame_channels(mask, known), x[:, :, 4:])


def test_unet_input_shape_errors():
    with pytest.raises(ValueError, match="mask shape"):
        known_frame_channels(torch.ones(2, 4), latents(2, 3, 4, 8, 8))
    with pytest.raises(ValueError, match="must match"):
        build_unet_input(latents(2, 3, 4, 8, 8), torch.ones(2, 3), latents(2, 3, 4, 4, 4))

"""Noise augmentation of known (hint) frames and the 9-channel UNet input.

Definition (DESIGN.md "Noise augmentation, defined"): a known frame's clean latent z is
fed as

    z_aug = sqrt(a) * z + sqrt(1 - a) * eps,   a = snr / (1 + snr),   eps ~ N(0, I)

where snr is the signal-to-noise power ratio (seed values 0.33 and 0.66). snr = inf means
no augmentation (a = 1, z_aug = z exactly); snr = 0 means pure noise; snr < 0 is invalid.

Augmentation level (what the network is told, per frame): the noise power fraction

    level = 1 - a = 1 / (1 + snr)   in [0, 1]

0 = clean (the un-augmented anchor / first hint frame), 1 = pure noise. snr 0.66 -> 0.602,
snr 0.33 -> 0.752. Frames that are not known (mask 0) get level 0 by convention.

UNet input per frame: cat(noisy latent [4], mask [1], mask * known latent [4]) = 9 channels.
"""

from __future__ import annotations

import math

import torch
from einops import repeat


def _as_snr_tensor(snr: float | torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    snr_t = torch.as_tensor(snr, dtype=torch.float64 if like is None else torch.float32)
    if like is not None:
        snr_t = snr_t.to(like.device)
    if torch.isnan(snr_t).any():
        raise ValueError(f"snr must be a number >= 0 (or inf for no augmentation), got NaN in {snr}")
    if (snr_t < 0).any():
        raise ValueError(f"snr must be >= 0 (or inf for no augmentation), got {snr}")
    return snr_t


def augmentation_level(snr: float | torch.Tensor) -> float | torch.Tensor:
    """level = 1 / (1 + snr) in [0, 1]; snr = inf -> 0. Returns a float for a float, else a tensor."""
    snr_t = _as_snr_tensor(snr, like=snr if isinstance(snr, torch.Tensor) else None)
    level = 1.0 / (1.0 + snr_t)  # inf -> 0 exactly
    return float(level) if not isinstance(snr, torch.Tensor) else level


def signal_fraction(snr: float | torch.Tensor) -> float | torch.Tensor:
    """a = snr / (1 + snr); snr = inf -> 1 exactly."""
    level = augmentation_level(snr)
    return 1.0 - level


def snr_from_level(level: float) -> float:
    """Inverse of `augmentation_level`: level 0 -> inf, level 1 -> 0."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"augmentation level must be in [0, 1], got {level}")
    return math.inf if level == 0.0 else (1.0 - level) / level


def augment_latents(
    latents: torch.Tensor,
    snr: float | torch.Tensor,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z_aug = sqrt(a) * z + sqrt(1 - a) * eps.

    latents: [..., C, H, W], e.g. [B, F, 4, H, W]. snr: a float, or a tensor broadcastable to
    the leading dims (e.g. [B, F] per frame; use inf for frames that stay clean).
    noise: eps (same shape as latents); drawn from `generator` when omitted.
    """
    level = augmentation_level(snr if isinstance(snr, torch.Tensor) else float(snr))
    level = torch.as_tensor(level, dtype=torch.float32, device=latents.device)
    level = level.reshape(*level.shape, 1, 1, 1) if level.ndim > 0 else level  # [..., 1, 1, 1]
    if noise is None:
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    elif noise.shape != latents.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} must match latents shape {tuple(latents.shape)}")
    signal_scale = torch.sqrt(1.0 - level).to(latents.dtype)
    noise_scale = torch.sqrt(level).to(latents.dtype)
    return signal_scale * latents + noise_scale * noise


def known_frame_channels(mask: torch.Tensor, known_latents: torch.Tensor) -> torch.Tensor:
    """The 5 extra channels: cat(mask [1], mask * known latent [4]).

    mask [B, F] (1 = known), known_latents [B, F, 4, H, W] (already augmented) -> [B, F, 5, H, W].
    """
    if mask.shape != known_latents.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must be [B, F] of known_latents {tuple(known_latents.shape)}"
        )
    height, width = known_latents.shape[-2:]
    mask = mask.to(known_latents.dtype)
    mask_plane = repeat(mask, "b f -> b f 1 h w", h=height, w=width)
    return torch.cat([mask_plane, mask_plane * known_latents], dim=2)


def build_unet_input(
    noisy_latents: torch.Tensor, mask: torch.Tensor, known_latents: torch.Tensor
) -> torch.Tensor:
    """cat(noisy latent [4], mask [1], mask * known latent [4]) -> [B, F, 9, H, W]."""
    if noisy_latents.shape != known_latents.shape:
        raise ValueError(
            f"noisy latents {tuple(noisy_latents.shape)} and known latents {tuple(known_latents.shape)} must match"
        )
    return torch.cat([noisy_latents, known_frame_channels(mask, known_latents)], dim=2)

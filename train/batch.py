"""The training convention, in one pure function: clean window latents -> what the network sees.

THE TRAINING CONVENTION (the ComfyUI samplers rely on it; keep both sides in step):

- ONE diffusion timestep t per window; EVERY frame's noisy slot (UNet input channels 0-3) is
  q(x_t | x_0) of its OWN clean latent: `sqrt(ac_t) * z + sqrt(1 - ac_t) * eps`, known frames included.
- The conditioning channels carry `mask * z_aug` (channels 4-8 = mask, mask * z_aug, built by the
  video UNet): known frames are noise-augmented with their own snr,
  `z_aug = sqrt(a) z + sqrt(1 - a) eps_aug`, `a = snr / (1 + snr)`; generated frames carry zeros.
- snr per known frame ~ log-uniform [snr_min, snr_max] (or inf with `clean_prob`); the anchor is
  never augmented (snr = inf). aug_level = 1 / (1 + snr): 0 for the anchor and for generated frames.
- loss = MSE(eps_pred, eps) over the generated frames only (mask == 0), per window; `fit` may weight
  each window by min(SNR(t), gamma) / SNR(t) (`loss.min_snr_gamma`, see `min_snr_weights`).

Random draws come from one explicit generator in a fixed order (timesteps, eps, snr, clean
flags, augmentation noise), so a batch is a function of (latents, masks, generator state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange, reduce

from zizi_models.temporal import augment_latents, augmentation_level


@dataclass
class TrainingBatch:
    noisy: torch.Tensor  # [B, F, 4, h, w] q(x_t | x_0) of each frame's own latent
    noise: torch.Tensor  # [B, F, 4, h, w] eps, the regression target
    timesteps: torch.Tensor  # [B] long, one per window
    known_latents: torch.Tensor  # [B, F, 4, h, w] mask * z_aug
    mask: torch.Tensor  # [B, F] float, 1 = known
    aug_level: torch.Tensor  # [B, F] float, 1 / (1 + snr); 0 for the anchor and generated frames
    snr: torch.Tensor  # [B, F] float, inf where not augmented
    positions: torch.Tensor  # [B, F] long
    loss_mask: torch.Tensor  # [B, F] float, 1 = generated (counted in the loss)


def sample_log_uniform_snr(
    shape: Sequence[int], snr_min: float, snr_max: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    u = torch.rand(tuple(shape), generator=generator, device=device)
    log_min, log_max = math.log(snr_min), math.log(snr_max)
    return torch.exp(log_min + u * (log_max - log_min))


def build_training_batch(
    latents: torch.Tensor,
    mask: torch.Tensor,
    is_anchor: torch.Tensor,
    positions: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator,
    snr_min: float,
    snr_max: float,
    clean_prob: float = 0.0,
) -> TrainingBatch:
    """latents [B, F, 4, h, w] clean (VAE-scaled); mask / is_anchor [B, F] bool; positions [B, F];
    alphas_cumprod [T] of the training noise schedule."""
    batch, frames = latents.shape[:2]
    device = latents.device
    if mask.shape != (batch, frames) or is_anchor.shape != (batch, frames):
        raise ValueError(f"mask and is_anchor must be [B, F] = {(batch, frames)}")
    mask = mask.to(device=device, dtype=torch.bool)
    is_anchor = is_anchor.to(device=device, dtype=torch.bool)
    if bool((is_anchor & ~mask).any()):
        raise ValueError("an anchor frame must be known (mask = 1)")
    if bool(mask.all(dim=1).any()):
        raise ValueError("every window needs at least one generated frame (mask = 0)")

    num_timesteps = alphas_cumprod.shape[0]
    timesteps = torch.randint(0, num_timesteps, (batch,), generator=generator, device=device)
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    ac = alphas_cumprod.to(device=device, dtype=torch.float32)[timesteps]  # [B]
    ac = rearrange(ac, "b -> b 1 1 1 1").to(latents.dtype)
    noisy = ac.sqrt() * latents + (1 - ac).sqrt() * noise  # [B, F, 4, h, w]

    snr = sample_log_uniform_snr((batch, frames), snr_min, snr_max, generator, device)
    clean = torch.rand((batch, frames), generator=generator, device=device) < clean_prob
    snr = torch.where(clean | is_anchor | ~mask, torch.full_like(snr, math.inf), snr)  # [B, F]
    aug_noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    mask_f = mask.to(torch.float32)
    augmented = augment_latents(latents, snr, noise=aug_noise)  # [B, F, 4, h, w]
    known = augmented * rearrange(mask_f, "b f -> b f 1 1 1").to(latents.dtype)
    level = augmentation_level(snr) * mask_f  # [B, F]; inf -> 0
    return TrainingBatch(
        noisy=noisy,
        noise=noise,
        timesteps=timesteps,
        known_latents=known,
        mask=mask_f,
        aug_level=level,
        snr=snr,
        positions=positions.to(device=device, dtype=torch.long),
        loss_mask=1.0 - mask_f,
    )


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Per-window loss [B]: mean squared error over the frames with loss_mask = 1 (fp32)."""
    per_frame = reduce((prediction.float() - target.float()) ** 2, "b f c h w -> b f", "mean")  # [B, F]
    weight = loss_mask.float()
    return (per_frame * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)


def min_snr_weights(timesteps: torch.Tensor, alphas_cumprod: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-window loss weights [B] for noise prediction: min(SNR(t), gamma) / SNR(t), SNR = ac / (1 - ac).

    1 where SNR(t) <= gamma (high noise), gamma / SNR(t) < 1 above it; gamma = 0 gives all ones (off)."""
    if gamma <= 0:
        return torch.ones(timesteps.shape, device=timesteps.device)
    ac = alphas_cumprod.to(device=timesteps.device, dtype=torch.float32)[timesteps]  # [B]
    snr = ac / (1 - ac)
    return snr.clamp(max=gamma) / snr


def drop_prompts(prompts: Sequence[str], probability: float, generator: torch.Generator) -> list[str]:
    """Replace each prompt by "" with `probability` (classifier-free guidance training)."""
    draws = torch.rand((len(prompts),), generator=generator, device=generator.device).tolist()
    return ["" if draw < probability else prompt for prompt, draw in zip(prompts, draws, strict=True)]

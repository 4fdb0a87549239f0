"""Fit a small SD-style VAE (diffusers AutoencoderKL) from scratch on frames, and set its latent scale.

Loss: L1 + MSE reconstruction of the frames in [-1, 1] plus a small KL term (the SD recipe without the
adversarial and perceptual parts, which a flat-shaded synthetic world does not need). After training,
`scaling_factor` is set to 1 / std of the latents (as SD1.5's 0.18215 was chosen), so the diffusion
model sees unit-variance latents.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange

logger = logging.getLogger(__name__)


@dataclass
class VAEFitConfig:
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-6
    crop: int = 0  # train on random square crops of this size (0 = whole frames): the VAE is convolutional
    log_every: int = 100


def frames_to_tensor(frames) -> torch.Tensor:
    """uint8 [N, H, W, 3] (numpy or torch) -> float [N, 3, H, W] in [-1, 1]."""
    x = torch.as_tensor(frames).float() / 127.5 - 1.0
    return rearrange(x, "n h w c -> n c h w")


def fit_vae(vae, sample_frames: Callable[[int, torch.Generator], torch.Tensor], config: VAEFitConfig,
            seed: int) -> list[float]:
    """Train `vae` in place. `sample_frames(n, generator)` -> [n, 3, H, W] in [-1, 1]. Returns the loss per step."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    vae.train()
    losses, started = [], time.perf_counter()
    for step in range(config.steps):
        x = random_crop(sample_frames(config.batch_size, generator), config.crop, generator)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = (recon - x).abs().mean() + ((recon - x) ** 2).mean() + config.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            recent = sum(losses[-config.log_every:]) / len(losses[-config.log_every:])
            logger.info("vae step %d/%d loss %.4f (%.2f s/step)", step + 1, config.steps, recent,
                        (time.perf_counter() - started) / (step + 1))
    vae.eval()
    return losses


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """[N, C, H, W] -> one random [N, C, size, size] window per image (size 0 or >= H, W: unchanged)."""
    height, width = x.shape[-2:]
    if size <= 0 or (size >= height and size >= width):
        return x
    tops = torch.randint(0, height - size + 1, (x.shape[0],), generator=generator).tolist()
    lefts = torch.randint(0, width - size + 1, (x.shape[0],), generator=generator).tolist()
    return torch.stack([img[:, t:t + size, s:s + size] for img, t, s in zip(x, tops, lefts, strict=True)])


@torch.no_grad()
def set_latent_scale(vae, frames: torch.Tensor) -> float:
    """scaling_factor = 1 / std of the latent means of `frames` [N, 3, H, W] in [-1, 1]; returns it."""
    latents = vae.encode(frames).latent_dist.mean
    scale = float(1.0 / latents.std().clamp_min(1e-6))
    vae.register_to_config(scaling_factor=scale)
    logger.info("vae latent std %.4f -> scaling_factor %.5f", 1.0 / scale, scale)
    return scale


@torch.no_grad()
def reconstruction_psnr(vae, frames: torch.Tensor) -> float:
    """Mean PSNR (dB, images in [0, 1]) of encode(mean) -> decode over `frames` [N, 3, H, W] in [-1, 1]."""
    recon = vae.decode(vae.encode(frames).latent_dist.mean).sample.clamp(-1, 1)
    mse = (((recon - frames) / 2) ** 2).flatten(1).mean(dim=1)
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())

"""Validation video: a starter window sampled with DDIM from a dataset clip's first frame.

The window is frames 0..F-1 of the first usable clip: frame 0 is the clean anchor (known, level 0),
the others are generated. Sampling follows the training convention: at every step the known frame's
noisy slot is q(x_t | z_anchor) with one fixed noise, its conditioning channels carry z_anchor, and
classifier-free guidance mixes the clip's prompt with the empty one. The result is written next to the
decoded ground truth (left: sampled, right: real) as an mp4 with zizi_models.video_io. All draws come
from a generator seeded by (seed, step): validation never touches the training RNG streams.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from zizi_models.video_io import write_video

from .windows import positions_for

logger = logging.getLogger(__name__)

Denoiser = Callable[..., torch.Tensor]


@torch.no_grad()
def sample_starter(
    denoise: Denoiser,
    anchor_latent: torch.Tensor,
    frames: int,
    text: torch.Tensor,
    uncond: torch.Tensor,
    scheduler_config: dict,
    steps: int,
    guidance_scale: float,
    generator: torch.Generator,
    max_positions: int,
    anchor_gap: int,
) -> torch.Tensor:
    """anchor_latent [4, h, w] (VAE-scaled) -> sampled window [F, 4, h, w] (anchor first, clean)."""
    from diffusers import DDIMScheduler

    device = anchor_latent.device
    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    shape = (1, frames, *anchor_latent.shape)  # [1, F, 4, h, w]
    x = torch.randn(shape, generator=generator, device=device) * scheduler.init_noise_sigma
    known_noise = torch.randn(anchor_latent.shape, generator=generator, device=device)  # [4, h, w]
    mask = torch.zeros(1, frames, device=device)
    mask[:, 0] = 1.0
    known = torch.zeros(shape, device=device)
    known[:, 0] = anchor_latent
    level = torch.zeros(1, frames, device=device)  # the anchor is clean
    positions = torch.tensor([positions_for(range(frames), 0, max_positions, anchor_gap)], device=device)
    ac_all = scheduler.alphas_cumprod.to(device)
    context = torch.cat([text, uncond])  # [2, 77, D]
    for t in scheduler.timesteps:
        ac = ac_all[t]
        x[:, 0] = ac.sqrt() * anchor_latent + (1 - ac).sqrt() * known_noise
        pair = torch.cat([x, x])  # [2, F, 4, h, w]: cond, uncond
        eps = denoise(pair, t.expand(2), context, positions.expand(2, -1), torch.cat([known, known]),
                      mask.expand(2, -1), level.expand(2, -1)).float()
        eps_cond, eps_uncond = eps.chunk(2)
        guided = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        x = scheduler.step(guided, t, x).prev_sample
    x[:, 0] = anchor_latent
    return x[0]


@torch.no_grad()
def decode_frames(vae, latents: torch.Tensor, scale: float) -> np.ndarray:
    """[F, 4, h, w] VAE-scaled latents -> [F, H, W, 3] uint8."""
    dtype = next(vae.parameters()).dtype
    images = []
    for latent in latents:  # one frame at a time: validation memory stays one frame of VAE decoder
        image = vae.decode((latent[None] / scale).to(dtype)).sample.float()  # [1, 3, H, W] in [-1, 1]
        images.append(image)
    video = rearrange(torch.cat(images), "f c h w -> f h w c")
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def write_side_by_side(path: Path, sampled: np.ndarray, real: np.ndarray, fps: float) -> Path:
    """[F, H, W, 3] x2 -> one mp4, sampled on the left, real on the right."""
    frames = min(len(sampled), len(real))
    video = np.concatenate([sampled[:frames], real[:frames]], axis=2)  # [F, H, 2W, 3]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, video, fps)
    logger.info("validation video %s", path)
    return path

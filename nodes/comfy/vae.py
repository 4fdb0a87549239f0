"""VAE encode/decode of frame batches through ComfyUI's VAE, never keeping an autograd graph."""

from __future__ import annotations

import torch


@torch.no_grad()  # ComfyUI runs nodes in inference mode; direct callers must not keep autograd graphs either
def vae_encode(vae, images: torch.Tensor) -> torch.Tensor:
    """IMAGE [N, H, W, 3] -> raw latents [N, 4, H/8, W/8]."""
    return vae.encode(images[..., :3])


@torch.no_grad()  # without it a long loop run outside ComfyUI's executor held every chunk's decoder graph
def vae_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """raw latents [N, 4, h, w] -> IMAGE [N, H, W, 3] on the CPU."""
    images = vae.decode(latents)
    return images.reshape(-1, *images.shape[-3:]).cpu()


def vae_downscale(vae) -> int:
    """Pixels per latent cell of a VAE (8 for SD1.5's; the small puppet model's is 4)."""
    ratio = vae.spacial_compression_encode() if hasattr(vae, "spacial_compression_encode") else vae.downscale_ratio
    return int(ratio)

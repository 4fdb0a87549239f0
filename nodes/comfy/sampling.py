"""One window through ComfyUI's own sampler machinery (any sampler/scheduler, CFG, LoRA, ControlNet)."""

from __future__ import annotations

from collections.abc import Callable

import comfy.model_patcher
import comfy.sample
import comfy.samplers
import torch

from ...zizi_models.temporal import WindowInputs
from .temporal_hooks import REFERENCE_OPTION, WINDOW_OPTION


def latent_to_model_space(model: comfy.model_patcher.ModelPatcher, latents: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents (ComfyUI LATENT) -> the UNet's input space (SD1.5: x 0.18215)."""
    return model.model.process_latent_in(latents)


@torch.no_grad()
def sample_window(model: comfy.model_patcher.ModelPatcher, window: WindowInputs, latents: torch.Tensor,
                  generate: torch.Tensor, positive: list, negative: list, seed: int, steps: int, cfg: float,
                  sampler_name: str, scheduler: str, denoise: float = 1.0,
                  callback: Callable[[int, torch.Tensor, torch.Tensor, int], None] | None = None,
                  reference: int | None = None) -> torch.Tensor:
    """Denoise one window with ComfyUI's KSampler machinery (any sampler/scheduler, CFG, LoRA, ControlNet).

    latents [F, 4, h, w] raw: the known frames' clean latents, zeros elsewhere; generate [F] bool: the
    frames to sample. Known frames are held by ComfyUI's noise mask (their noisy input follows their
    clean latent, as in training) and also reach the temporal layers through ``window``.
    callback(step, x0, x, total_steps): called after each sampling step, as KSampler's preview callback
    (x0 [F, 4, h, w] the denoised estimate in the UNet's latent space); it only reads.
    reference: the index in the window of the anchor frame (for reference attention), None without one.
    Returns [F, 4, h, w] raw latents on the intermediate device.
    """
    windowed = model.clone()
    windowed.model_options["transformer_options"][WINDOW_OPTION] = window
    if reference is not None:
        windowed.model_options["transformer_options"][REFERENCE_OPTION] = int(reference)
    noise = comfy.sample.prepare_noise(latents, seed)
    mask = generate.float().reshape(-1, 1, 1, 1).expand(-1, 1, *latents.shape[-2:]).contiguous()
    return comfy.sample.sample(windowed, noise, steps, cfg, sampler_name, scheduler, positive, negative, latents,
                               denoise=denoise, noise_mask=None if bool(generate.all()) else mask,
                               callback=callback, disable_pbar=True, seed=seed)


def sampler_names() -> list[str]:
    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    return list(comfy.samplers.KSampler.SCHEDULERS)

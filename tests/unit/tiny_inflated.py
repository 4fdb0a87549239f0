"""Tiny SD1.5-family UNets inflated with random temporal modules in an in-process ComfyUI (test helpers).

The temporal module is built with the repo's ``zizi_models`` and copied into the pack's own classes (the
``comfy_pack`` fixture imports the pack as ComfyUI does, so its modules are distinct from the repo's).
"""

from __future__ import annotations

import torch

from devtools.random_sd15 import TINY_UNET_CONFIG, TINY_VAE_CONFIG
from zizi_models.sd15_keys import to_ldm
from zizi_models.temporal import ZiziTemporalModel, temporal_config_for_unet


def perturbed_temporal(unet, generator: torch.Generator, scale: float = 0.05) -> ZiziTemporalModel:
    """A "trained" module: every parameter, zero-initialised ones included, moved by noise from ``generator``
    (which the caller may go on drawing from)."""
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet))
    with torch.no_grad():
        for p in temporal.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return temporal


def randomized_temporal(unet, seed: int, **config) -> ZiziTemporalModel:
    """Every part on and random (zero-init ones included): temporal convs, a pose encoder (RGB pose images at
    8x the latent grid), the level embedding; ``config`` adds TemporalModelConfig fields."""
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet, has_temporal_conv=True, pose_channels=3, pose_downscale=8,
                                                          **config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in temporal.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05 + (p if p.ndim == 1 else 0))
    return temporal.eval()


def inflate(comfy_pack, unet, temporal: ZiziTemporalModel):
    """(base MODEL, inflated MODEL clone, the pack's copy of ``temporal``) for a tiny diffusers ``unet``."""
    bridge, pack_temporal = comfy_pack.nodes.comfy, comfy_pack.zizi_models.temporal
    ldm = to_ldm(unet.state_dict(), {}, {}, TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    base = bridge.sd15_model_from_state_dict(ldm, dtype=torch.float32)
    pack_model = pack_temporal.ZiziTemporalModel(pack_temporal.TemporalModelConfig.from_dict(temporal.config.to_dict()))
    pack_model.load_state_dict(temporal.state_dict())
    return base, bridge.inject_temporal_model(base, pack_model), pack_model

"""Subject LoRA on the UNet's spatial attention projections (peft), and its export for ComfyUI.

Training: `add_lora(unet, rank, alpha, targets)` puts peft LoRA layers on every attention projection
named in `targets` (to_q, to_k, to_v, to_out.0 of the self- and cross-attentions); the A/B weights
are the trainable part, in fp32 whatever the backbone dtype.

Export: the kohya / LDM key format ComfyUI's LoraLoader reads (comfy/lora.py `model_lora_keys_unet`
maps `lora_unet_<LDM path with '_'>` to `diffusion_model.<LDM path>.weight`):

    lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight   [r, in]   (= lora_A)
    lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_up.weight     [out, r]  (= lora_B)
    lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.alpha              scalar    (scale = alpha / r)

LDM paths come from zizi_models.sd15_keys (the same table as the checkpoint converter).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from zizi_models.sd15_configs import SD15_VAE_CONFIG
from zizi_models.sd15_keys import UNET_PREFIX, to_ldm

logger = logging.getLogger(__name__)

ADAPTER = "default"


def add_lora(unet: nn.Module, rank: int, alpha: float, targets: list[str]) -> list[nn.Parameter]:
    """Inject LoRA layers into `unet` (in place); returns the trainable LoRA parameters (fp32)."""
    from peft import LoraConfig

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets),
                                init_lora_weights="gaussian"), adapter_name=ADAPTER)
    params = []
    for name, p in unet.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            p.data = p.data.float()
            p.requires_grad_(True)
            params.append(p)
    if not params:
        raise ValueError(f"lora.targets {targets} matched no module of the UNet")
    logger.info("LoRA rank %d alpha %g on %d projections (%d parameters)", rank, alpha, len(params) // 2,
                sum(p.numel() for p in params))
    return params


def lora_layers(unet: nn.Module) -> dict[str, nn.Module]:
    """module path -> ModuleDict(lora_A, lora_B) of every LoRA layer (for registering with accelerate)."""
    from peft.tuners.lora import LoraLayer

    return {
        name: nn.ModuleDict({"lora_A": module.lora_A, "lora_B": module.lora_B})
        for name, module in unet.named_modules()
        if isinstance(module, LoraLayer)
    }


def lora_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """diffusers-named LoRA weights: `<module path>.lora_A.weight` / `.lora_B.weight` (CPU fp32 copies)."""
    state = {}
    for name, layer in lora_layers(unet).items():
        state[f"{name}.lora_A.weight"] = layer["lora_A"][ADAPTER].weight.detach().float().cpu().clone()
        state[f"{name}.lora_B.weight"] = layer["lora_B"][ADAPTER].weight.detach().float().cpu().clone()
    return state


def load_lora_state_dict(unet: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    layers = lora_layers(unet)
    for name, layer in layers.items():
        for part in ("lora_A", "lora_B"):
            key = f"{name}.{part}.weight"
            if key not in state:
                raise ValueError(f"LoRA weights lack {key}")
            with torch.no_grad():
                layer[part][ADAPTER].weight.copy_(state[key])


def to_kohya(state: Mapping[str, torch.Tensor], alpha: float, unet_config: Mapping[str, Any],
             dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """diffusers-named LoRA weights -> kohya/LDM keys (see module docstring)."""
    modules = sorted({key.rsplit(".lora_", 1)[0] for key in state})
    out = {}
    for module in modules:
        down, up = state[f"{module}.lora_A.weight"], state[f"{module}.lora_B.weight"]
        ldm = to_ldm({f"{module}.weight": down}, {}, {}, unet_config, SD15_VAE_CONFIG)
        (ldm_key,) = ldm.keys()
        path = ldm_key[len(UNET_PREFIX) : -len(".weight")]
        name = "lora_unet_" + path.replace(".", "_")
        out[f"{name}.lora_down.weight"] = down.to(dtype).contiguous()
        out[f"{name}.lora_up.weight"] = up.to(dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return out

"""Seeded random SD1.5 add-ons for composition tests: a LoRA (kohya key format, as ComfyUI's LoraLoader
reads it) and a ControlNet (diffusers format, as ComfyUI's ControlNetLoader reads it), both with
non-zero effect, cached under .cache/models like the base models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from devtools.random_sd15 import (
    BUILDER_VERSION,
    MODELS_CACHE,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
    _atomic_dir,
    build_unet,
)
from zizi_models.sd15_keys import UNET_PREFIX, to_ldm

LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q", "attn2.to_k", "attn2.to_v")


def _publish_file(state: dict[str, torch.Tensor], target: Path, metadata: dict[str, str] | None = None) -> Path:
    staging = _atomic_dir(target)
    save_file({k: v.contiguous() for k, v in state.items()}, str(staging / target.name), metadata=metadata)
    os.replace(staging / target.name, target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def sd15_lora(seed: int = 0, rank: int = 4, cache: Path = MODELS_CACHE) -> Path:
    """A rank-``rank`` LoRA on every UNet self/cross-attention q/k/v projection of SD1.5."""
    target = cache / f"sd15_lora_random_seed{seed}_v{BUILDER_VERSION}.safetensors"
    if target.is_file():
        return target
    with torch.device("meta"):
        unet = build_unet(SD15_UNET_CONFIG, seed)
    ldm = to_ldm(unet.state_dict(), {}, {}, SD15_UNET_CONFIG, SD15_VAE_CONFIG)
    generator = torch.Generator().manual_seed(seed + 20)
    state = {}
    for key, value in ldm.items():
        name = key[len(UNET_PREFIX):-len(".weight")] if key.endswith(".weight") else None
        if name is None or not name.endswith(LORA_TARGETS):
            continue
        out_features, in_features = value.shape
        lora = "lora_unet_" + name.replace(".", "_")
        state[f"{lora}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator).half() * 0.1
        state[f"{lora}.lora_up.weight"] = torch.randn(out_features, rank, generator=generator).half() * 0.1
        state[f"{lora}.alpha"] = torch.tensor(float(rank)).half()
    return _publish_file(state, target, {"ss_network_module": "networks.lora", "zizi.random_seed": str(seed)})


def sd15_controlnet(seed: int = 0, cache: Path = MODELS_CACHE) -> Path:
    """A full-size SD1.5 ControlNet (diffusers layout, fp16) copied from the random UNet, with its
    zero convolutions randomised so that it changes what the UNet computes."""
    from diffusers import ControlNetModel

    target = cache / f"sd15_controlnet_random_seed{seed}_v{BUILDER_VERSION}.safetensors"
    if target.is_file():
        return target
    controlnet = ControlNetModel.from_unet(build_unet(SD15_UNET_CONFIG, seed))
    generator = torch.Generator().manual_seed(seed + 30)
    with torch.no_grad():
        for name, p in controlnet.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    state = {k: v.half() for k, v in controlnet.state_dict().items()}
    return _publish_file(state, target, {"zizi.random_seed": str(seed)})


ANIMATEDIFF_LAYOUTS = {  # version -> (mid block, pos_encoder length): the released SD1.5 files
    "v1": (False, 24),   # mm_sd_v14.ckpt, mm_sd_v15.ckpt
    "v2": (True, 32),    # mm_sd_v15_v2.ckpt
    "v3": (False, 32),   # v3_sd15_mm.ckpt
}


def animatediff_state(model_state: dict[str, torch.Tensor], version: str) -> dict[str, torch.Tensor]:
    """A temporal model's state dict (model keys) -> the tensors of an AnimateDiff ``version`` file:
    motion modules only (AnimateDiff key names), no mid block for v1/v3, 24 positions for v1."""
    mid, positions = ANIMATEDIFF_LAYOUTS[version]
    state = {}
    for key, value in model_state.items():
        if not key.startswith(("down_blocks.", "up_blocks.", "mid_block.")) or ".motion_modules." not in key:
            continue
        if key.startswith("mid_block.") and not mid:
            continue
        if key.endswith("pos_encoder.pe"):
            value = value[:, :positions]
        state[key] = value.detach().clone().contiguous()
    return state


def sd15_motion_module_ckpt(version: str = "v2", seed: int = 0, wrapped: bool = False,
                            cache: Path = MODELS_CACHE) -> Path:
    """The random full-size SD1.5 temporal module's motion modules (``sd15_temporal_module(seed)``, fp16)
    in AnimateDiff ``version``'s released layout, pickled with torch.save like mm_sd_v15_v2.ckpt
    (``wrapped``: under a {"state_dict": ...} training-checkpoint wrapper). No zizi.* tensors, no metadata."""
    from safetensors.torch import load_file

    from devtools.random_sd15 import sd15_temporal_module

    target = cache / f"sd15_mm_{version}{'_wrapped' if wrapped else ''}_random_seed{seed}_v{BUILDER_VERSION}.ckpt"
    if target.is_file():
        return target
    state = animatediff_state(load_file(str(sd15_temporal_module(seed=seed, fresh=False))), version)
    payload = {"state_dict": state, "global_step": 0} if wrapped else state
    staging = _atomic_dir(target)
    torch.save(payload, staging / target.name)
    os.replace(staging / target.name, target)
    shutil.rmtree(staging, ignore_errors=True)
    return target

"""Load the frozen SD1.5 parts from local files only (nothing is ever downloaded).

`pretrained` is either a diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) or an
LDM single-file `.safetensors` checkpoint (what ComfyUI loads), converted with zizi_models.sd15_keys.
A single file carries no tokenizer: `model.tokenizer` must name a folder with vocab.json + merges.txt
(e.g. a diffusers SD1.5 folder's `tokenizer/`, or ComfyUI's `comfy/sd1_tokenizer`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zizi_models.sd15_configs import (
    SD15_SCHEDULER_CONFIG,
    SD15_TEXT_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
)
from zizi_models.sd15_keys import from_ldm, match_text_encoder_keys

logger = logging.getLogger(__name__)


@dataclass
class SD15Parts:
    unet: nn.Module
    vae: nn.Module | None
    text_encoder: nn.Module | None
    tokenizer: Any | None
    scheduler_config: dict[str, Any]

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        from diffusers import DDPMScheduler

        return DDPMScheduler.from_config(self.scheduler_config).alphas_cumprod.clone()

    @property
    def vae_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))


def _is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "unet").is_dir()


def load_tokenizer(folder: str | Path):
    from transformers import CLIPTokenizer

    folder = Path(folder)
    if not (folder / "vocab.json").is_file() or not (folder / "merges.txt").is_file():
        raise FileNotFoundError(f"{folder}: a CLIP tokenizer folder needs vocab.json and merges.txt")
    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def load_sd15(pretrained: str | Path, tokenizer: str | Path | None = None, need_vae: bool = True,
              need_text: bool = True) -> SD15Parts:
    """Load SD1.5 from a local diffusers folder or LDM single file (fp32, eval mode, on the CPU)."""
    path = Path(pretrained).expanduser()
    if not str(pretrained):
        raise ValueError("model.pretrained is not set: give a local SD1.5 diffusers folder or .safetensors file")
    if _is_diffusers_folder(path):
        parts = _load_diffusers(path, tokenizer, need_vae, need_text)
    elif path.is_file() and path.suffix == ".safetensors":
        parts = load_single_file(path, tokenizer, need_vae=need_vae, need_text=need_text)
    elif path.exists():
        raise ValueError(
            f"{path}: not an SD1.5 diffusers folder (no unet/) nor a .safetensors single-file checkpoint "
            "(pickled .ckpt files are never opened)"
        )
    else:
        raise FileNotFoundError(f"model.pretrained {path} does not exist (models load only from local paths)")
    for module in (parts.unet, parts.vae, parts.text_encoder):
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    return parts


def _load_diffusers(path: Path, tokenizer: str | Path | None, need_vae: bool, need_text: bool) -> SD15Parts:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(str(path), subfolder="vae", local_files_only=True) if need_vae else None
    text = tok = None
    if need_text:
        text = CLIPTextModel.from_pretrained(str(path / "text_encoder"), local_files_only=True)
        tok = load_tokenizer(tokenizer or path / "tokenizer")
    scheduler_file = path / "scheduler" / "scheduler_config.json"
    scheduler = json.loads(scheduler_file.read_text()) if scheduler_file.is_file() else dict(SD15_SCHEDULER_CONFIG)
    scheduler.pop("_class_name", None)
    scheduler.pop("_diffusers_version", None)
    logger.info("loaded SD1.5 diffusers folder %s", path)
    return SD15Parts(unet, vae, text, tok, scheduler)


def load_single_file(
    path: str | Path,
    tokenizer: str | Path | None,
    unet_config: dict[str, Any] = SD15_UNET_CONFIG,
    vae_config: dict[str, Any] = SD15_VAE_CONFIG,
    text_config: dict[str, Any] = SD15_TEXT_CONFIG,
    need_vae: bool = True,
    need_text: bool = True,
) -> SD15Parts:
    """An LDM-layout single file -> diffusers models (configs default to SD1.5's)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file
    from transformers import CLIPTextConfig, CLIPTextModel

    state = load_file(str(path))
    unet_sd, vae_sd, text_sd = from_ldm(state, unet_config, vae_config)
    del state
    if not unet_sd:
        raise ValueError(f"{path}: no model.diffusion_model.* tensors; not an SD1.5 single-file checkpoint")
    unet = _build_and_load(lambda: UNet2DConditionModel(**unet_config), unet_sd, f"{path} (UNet)")
    vae = text = tok = None
    if need_vae:
        vae = _build_and_load(lambda: AutoencoderKL(**vae_config), vae_sd, f"{path} (VAE)")
    if need_text:
        text_model = _build_and_load(lambda: CLIPTextModel(CLIPTextConfig(**text_config)), None, "")
        text_sd = match_text_encoder_keys(text_sd, text_model.state_dict().keys())
        text = _load_into(text_model, text_sd, f"{path} (text encoder)")
        if not tokenizer:
            raise ValueError(
                f"{path} is a single-file checkpoint without a tokenizer; set model.tokenizer to a folder with "
                "vocab.json and merges.txt (a diffusers SD1.5 folder's tokenizer/ or ComfyUI's comfy/sd1_tokenizer)"
            )
        tok = load_tokenizer(tokenizer)
    logger.info("loaded SD1.5 single-file checkpoint %s", path)
    return SD15Parts(unet, vae, text, tok, dict(SD15_SCHEDULER_CONFIG))


def _build_and_load(build, state: dict[str, torch.Tensor] | None, what: str) -> nn.Module:
    with torch.device("meta"):
        model = build()
    if state is None:
        return model
    return _load_into(model, state, what)


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    expected = model.state_dict()
    # non-persistent or derived buffers (e.g. CLIP position_ids) may be absent from files
    missing = [k for k in expected if k not in state and not k.endswith("position_ids")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(f"{what}: {len(missing)} tensors missing (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=False, assign=True)
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta:  # e.g. position_ids not stored in the file: rebuild it
            module_name, _, buffer_name = name.rpartition(".")
            module = model.get_submodule(module_name)
            if buffer_name == "position_ids":
                module.register_buffer(buffer_name, torch.arange(buffer.shape[-1]).expand(buffer.shape), persistent=False)
            else:
                raise ValueError(f"{what}: buffer {name} was not in the file")
    return model

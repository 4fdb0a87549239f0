"""Zizi small SD1.5-family models (architecture in the file's metadata) as ComfyUI MODEL, CLIP and VAE.

ComfyUI's own detection knows full-size SD1.5 only; these are built per instance from the file's configs,
without touching ComfyUI's global model list.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import comfy.latent_formats
import comfy.model_base
import comfy.model_detection
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.utils
import folder_paths
import torch

from ...zizi_models import base_checkpoint
from ...zizi_models.sd15_keys import TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX


def sd15_model_from_state_dict(state_dict: dict[str, torch.Tensor], prefix: str = "model.diffusion_model.",
                               dtype: torch.dtype | None = None, num_heads: int | None = None,
                               sampling: dict | None = None) -> comfy.model_patcher.ModelPatcher:
    """A ComfyUI SD1.5-family MODEL from an LDM-layout UNet state dict of any width.

    ComfyUI's own detection only recognises full-size SD1.5 (320 channels, context 768); reduced-width
    SD1.5-family models (our tests, the shipped small model) get their architecture read from the
    tensor shapes and SD1.5's model class, without touching ComfyUI's global model list.
    num_heads (SD1.5: 8) and sampling (``ldm_sampling_settings``: prediction + beta schedule) override
    SD1.5's on this model's own config.
    """
    unet_config = comfy.model_detection.detect_unet_config(state_dict, prefix)
    if unet_config is None or "model_channels" not in unet_config:
        raise ValueError("state dict is not an LDM-layout UNet (no model.diffusion_model.* tensors found)")
    model_config = comfy.supported_models.SD15(unet_config)
    if num_heads is not None:
        model_config.unet_config["num_heads"] = num_heads
    if sampling is not None:
        settings = dict(sampling)
        v_pred = settings.pop("prediction") == "v_prediction"
        model_type = comfy.model_base.ModelType.V_PREDICTION if v_pred else comfy.model_base.ModelType.EPS
        model_config.sampling_settings.update(settings)
        model_config.model_type = lambda *args, **kwargs: model_type
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    if dtype is None:
        dtype = comfy.model_management.unet_dtype(model_params=0, supported_dtypes=model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, comfy.model_management.unet_manual_cast(dtype, load_device))
    model = model_config.get_model(state_dict, prefix, device=offload_device)
    model.load_model_weights(state_dict, prefix)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def sd15_family_from_checkpoint(path: str | os.PathLike, dtype: torch.dtype | None = None) -> tuple:
    """(MODEL, CLIP, VAE) of a Zizi small model: a whole SD1.5-family model in one file, its architecture in
    the metadata (``zizi_models/base_checkpoint.py``). ComfyUI's Load Checkpoint cannot load it (its detection
    knows full-size models only, its VAE defaults assume 128 channels / 4 levels, its SD1 CLIP width 768), so
    each part is built here from the file's configs, per instance. dtype: of all three; None: ComfyUI's choice.
    """
    arch = base_checkpoint.read_base_architecture(path)
    state = comfy.utils.load_torch_file(str(path), safe_load=True)
    vae_sd = {k[len(VAE_PREFIX):]: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    text_sd = {k[len(TEXT_PREFIX):]: v for k, v in state.items()
               if k.startswith(TEXT_PREFIX) and not k.endswith("position_ids")}
    # a CLIPTextModel has no projection; identity keeps the (unused) projected pooled output defined
    text_sd["text_projection.weight"] = torch.eye(int(arch.text_encoder["hidden_size"]))
    unet_keys = {k[len(UNET_PREFIX):] for k in state if k.startswith(UNET_PREFIX)}
    model = sd15_model_from_state_dict(state, UNET_PREFIX, dtype, num_heads=arch.attention_heads,
                                       sampling=base_checkpoint.ldm_sampling_settings(arch.scheduler))
    latent_format = comfy.latent_formats.SD15(scale_factor=arch.latent_scaling_factor)
    latent_format.taesd_decoder_name = None  # SD1.5's TAESD previewer does not know this latent space
    model.model.latent_format = model.model.model_config.latent_format = latent_format
    clip, vae = _small_clip(arch, text_sd, dtype), _small_vae(arch, vae_sd, dtype)
    for part, module, keys in (("unet", model.model.diffusion_model, unet_keys), ("vae", vae.first_stage_model, vae_sd),
                               ("text_encoder", clip.cond_stage_model.clip_l.transformer, text_sd)):
        missing = sorted(set(module.state_dict()) - set(keys))
        if missing:
            raise ValueError(f"{Path(path).name}: {part}: {len(missing)} tensors missing from the file (e.g. {missing[:2]})")
    return model, clip, vae


def _small_vae(arch: base_checkpoint.BaseArchitecture, vae_sd: dict[str, torch.Tensor], dtype: torch.dtype | None) -> comfy.sd.VAE:
    """ComfyUI's VAE with an LDM ddconfig from the diffusers config (its defaults assume SD1.5's widths)."""
    vae = comfy.sd.VAE(sd=vae_sd, config={"params": base_checkpoint.ldm_vae_config(arch.vae)}, dtype=dtype)
    ratio = arch.vae_scale_factor  # the config path leaves SD1.5's 8 in place
    vae.downscale_ratio = vae.upscale_ratio = ratio
    decode_memory = vae.memory_used_decode  # estimated for 8 x 8 output pixels per latent pixel
    vae.memory_used_decode = lambda shape, dtype: decode_memory(shape, dtype) * ratio * ratio / 64
    return vae


def _small_clip(arch: base_checkpoint.BaseArchitecture, text_sd: dict[str, torch.Tensor], dtype: torch.dtype | None) -> comfy.sd.CLIP:
    """ComfyUI's SD1 CLIP (SD1 tokenizer, last layer, unprojected pooled output) with the file's text config."""
    config = dict(arch.text_encoder)
    width, positions = int(config["hidden_size"]), int(config["max_position_embeddings"])
    tokenizer = functools.partial(comfy.sd1_clip.SD1Tokenizer, tokenizer=functools.partial(
        comfy.sd1_clip.SDTokenizer, max_length=positions, embedding_size=width))
    text_model = functools.partial(comfy.sd1_clip.SDClipModel, textmodel_json_config=config, max_length=positions,
                                   return_projected_pooled=False)  # as SD1CheckpointClipModel
    target = comfy.supported_models_base.ClipTarget(tokenizer, functools.partial(comfy.sd1_clip.SD1ClipModel, clip_model=text_model))
    clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         parameters=comfy.utils.calculate_parameters(text_sd),
                         model_options={} if dtype is None else {"dtype": dtype})
    clip.load_sd(text_sd)
    return clip

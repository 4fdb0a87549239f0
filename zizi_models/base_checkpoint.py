"""The Zizi small-model file: a whole SD1.5-family model (UNet, VAE, CLIP text encoder) in ONE safetensors file.

Tensors use the original LDM single-file layout (``model.diffusion_model.*``, ``first_stage_model.*``,
``cond_stage_model.transformer.*``, see ``sd15_keys``); the architecture travels in the metadata key
``zizi_base``, a JSON object::

    {"format": "zizi-sd15-family", "version": 1,
     "unet": <diffusers UNet2DConditionModel config>, "vae": <diffusers AutoencoderKL config, incl. scaling_factor>,
     "text_encoder": <CLIPTextConfig fields>, "scheduler": <diffusers scheduler config>}

so reduced widths, fewer VAE levels (downscale 4) or a narrow text encoder load without guessing from
shapes. "SD1.5 family" is checked on save and on read (``check_architecture``): SD1.5's block types,
GroupNorm(32), 4 latent channels, CLIP's 49408-token vocabulary, an epsilon or v-prediction DDPM schedule.
Loading is safetensors only; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .sd15_keys import from_ldm, match_text_encoder_keys, to_ldm

log = logging.getLogger(__name__)

FORMAT = "zizi-sd15-family"
VERSION = 1
METADATA_KEY = "zizi_base"
CLIP_VOCAB_SIZE = 49408
# CLIPTextConfig fields that rebuild the text encoder (the rest are training/output switches)
TEXT_CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                    "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
                    "bos_token_id", "eos_token_id", "pad_token_id")
# diffusers config values that define SD1.5's structure (key -> value SD1.5 has; a missing key means the default)
UNET_FIXED = {"mid_block_type": "UNetMidBlock2DCrossAttn", "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5,
              "flip_sin_to_cos": True, "freq_shift": 0, "center_input_sample": False, "only_cross_attention": False,
              "dual_cross_attention": False, "class_embed_type": None, "addition_embed_type": None,
              "encoder_hid_dim": None, "time_cond_proj_dim": None, "time_embedding_type": "positional",
              "resnet_time_scale_shift": "default", "conv_in_kernel": 3, "conv_out_kernel": 3, "num_attention_heads": None,
              "downsample_padding": 1, "mid_block_scale_factor": 1, "in_channels": 4, "out_channels": 4}
VAE_FIXED = {"in_channels": 3, "out_channels": 3, "act_fn": "silu", "norm_num_groups": 32, "latent_channels": 4,
             "use_quant_conv": True, "use_post_quant_conv": True, "mid_block_add_attention": True,
             "shift_factor": None, "latents_mean": None, "latents_std": None}
TEXT_FIXED = {"vocab_size": CLIP_VOCAB_SIZE, "layer_norm_eps": 1e-5}
TEXT_ACTIVATIONS = ("quick_gelu", "gelu")
BETA_SCHEDULES = {"scaled_linear": "linear", "linear": "sqrt_linear"}  # diffusers name -> LDM/ComfyUI name
PREDICTIONS = {"epsilon": "eps", "v_prediction": "v_prediction"}
NOT_ZIZI = "not a Zizi small-model checkpoint; load regular SD1.5 checkpoints with Load Checkpoint"


@dataclass(frozen=True)
class BaseArchitecture:
    """The four configs of a Zizi small-model file (diffusers / transformers constructor arguments)."""

    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    scheduler: dict[str, Any]

    @property
    def vae_levels(self) -> int:
        return len(self.vae["block_out_channels"])

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel along each side: 8 for SD1.5's 4-level VAE, 4 for a 3-level one."""
        return 2 ** (self.vae_levels - 1)

    @property
    def latent_scaling_factor(self) -> float:
        """Raw VAE latent -> UNet space multiplier (SD1.5: 0.18215)."""
        return float(self.vae.get("scaling_factor", 0.18215))

    @property
    def attention_heads(self) -> int:
        """Heads of every attention layer (diffusers' SD1.5 ``attention_head_dim`` counts heads)."""
        heads = self.unet.get("attention_head_dim", 8)
        if isinstance(heads, list | tuple):
            heads = heads[0]
        return int(heads)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "unet": self.unet, "vae": self.vae,
                           "text_encoder": self.text_encoder, "scheduler": self.scheduler}, sort_keys=True)


def _plain_config(config: Any) -> dict[str, Any]:
    """A diffusers FrozenDict / transformers config / dict -> a JSON-ready dict of constructor arguments."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}
    return json.loads(json.dumps(out))


def text_config_subset(config: Any) -> dict[str, Any]:
    plain = _plain_config(config)
    missing = [k for k in TEXT_CONFIG_KEYS if k not in plain]
    if missing:
        raise ValueError(f"text_encoder config lacks {missing}; pass a transformers CLIPTextModel")
    return {k: plain[k] for k in TEXT_CONFIG_KEYS}


def _check_fixed(part: str, config: dict[str, Any], fixed: dict[str, Any]) -> None:
    for key, expected in fixed.items():
        value = config.get(key, expected)
        if value != expected:
            raise ValueError(f"{part}: {key} is {value!r}, the {FORMAT} format needs {expected!r}")


def check_architecture(arch: BaseArchitecture) -> None:
    """ValueError (one line, naming the part and field) unless the configs describe an SD1.5-family model."""
    unet, vae, text = arch.unet, arch.vae, arch.text_encoder
    _check_fixed("unet", unet, UNET_FIXED)
    _check_fixed("vae", vae, VAE_FIXED)
    _check_fixed("text_encoder", text, TEXT_FIXED)
    for key, allowed in (("down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}),
                         ("up_block_types", {"CrossAttnUpBlock2D", "UpBlock2D"})):
        if not set(unet[key]) <= allowed or len(unet[key]) != len(unet["block_out_channels"]):
            raise ValueError(f"unet: {key} {unet[key]} are not SD1.5-family blocks ({sorted(allowed)}, one per level)")
    heads = unet.get("attention_head_dim", 8)
    if isinstance(heads, list | tuple) and len(set(heads)) != 1:
        raise ValueError(f"unet: attention_head_dim {heads} differs per block; the {FORMAT} format needs one head count")
    if any(c % arch.attention_heads for c in unet["block_out_channels"]):
        raise ValueError(f"unet: block_out_channels {unet['block_out_channels']} do not split into {arch.attention_heads} heads")
    if unet["cross_attention_dim"] != text["hidden_size"]:
        raise ValueError(f"unet: cross_attention_dim {unet['cross_attention_dim']} != text_encoder hidden_size {text['hidden_size']}")
    if set(vae["down_block_types"]) != {"DownEncoderBlock2D"} or set(vae["up_block_types"]) != {"UpDecoderBlock2D"}:
        raise ValueError("vae: the format needs DownEncoderBlock2D / UpDecoderBlock2D blocks (SD1.5's AutoencoderKL)")
    channels = vae["block_out_channels"]
    if len(vae["down_block_types"]) != len(channels) or any(c % channels[0] for c in channels):
        raise ValueError(f"vae: block_out_channels {channels} must be multiples of the first, one per block")
    if text["hidden_act"] not in TEXT_ACTIVATIONS:
        raise ValueError(f"text_encoder: hidden_act {text['hidden_act']!r} not in {TEXT_ACTIVATIONS}")
    if text["hidden_size"] % text["num_attention_heads"]:
        raise ValueError(f"text_encoder: hidden_size {text['hidden_size']} does not split into {text['num_attention_heads']} heads")
    ldm_sampling_settings(arch.scheduler)


def ldm_vae_config(vae_config: dict[str, Any]) -> dict[str, Any]:
    """The original LDM ``AutoencoderKL(ddconfig=..., embed_dim=...)`` arguments of a diffusers VAE config."""
    channels = list(vae_config["block_out_channels"])
    latent = int(vae_config.get("latent_channels", 4))
    ddconfig = {"double_z": True, "z_channels": latent, "resolution": int(vae_config.get("sample_size", 256)),
                "in_channels": int(vae_config.get("in_channels", 3)), "out_ch": int(vae_config.get("out_channels", 3)),
                "ch": channels[0], "ch_mult": [c // channels[0] for c in channels],
                "num_res_blocks": int(vae_config["layers_per_block"]), "attn_resolutions": [], "dropout": 0.0}
    return {"ddconfig": ddconfig, "embed_dim": latent}


def ldm_sampling_settings(scheduler: dict[str, Any]) -> dict[str, Any]:
    """A diffusers DDPM-style scheduler config -> {prediction ("eps"/"v_prediction"), and the LDM sampling
    settings beta_schedule, linear_start, linear_end, timesteps, zsnr}; ValueError if it has no LDM equivalent."""
    prediction = scheduler.get("prediction_type", "epsilon")
    schedule = scheduler.get("beta_schedule", "scaled_linear")
    if prediction not in PREDICTIONS:
        raise ValueError(f"scheduler: prediction_type {prediction!r} not in {sorted(PREDICTIONS)}")
    if schedule not in BETA_SCHEDULES or scheduler.get("trained_betas") is not None:
        raise ValueError(f"scheduler: beta_schedule {schedule!r} (or trained_betas) not supported; use one of {sorted(BETA_SCHEDULES)}")
    return {"prediction": PREDICTIONS[prediction], "beta_schedule": BETA_SCHEDULES[schedule],
            "linear_start": float(scheduler.get("beta_start", 0.00085)), "linear_end": float(scheduler.get("beta_end", 0.012)),
            "timesteps": int(scheduler.get("num_train_timesteps", 1000)), "zsnr": bool(scheduler.get("rescale_betas_zero_snr", False))}


def save_base_checkpoint(path: str | os.PathLike, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module,
                         scheduler_config: dict[str, Any], dtype: torch.dtype = torch.float16,
                         extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write diffusers ``unet`` / ``vae`` and transformers ``text_encoder`` to one LDM-layout safetensors file,
    atomically. ``extra_metadata`` values are stored as JSON under their own keys."""
    arch = BaseArchitecture(_plain_config(unet.config), _plain_config(vae.config),
                            text_config_subset(text_encoder.config), json.loads(json.dumps(dict(scheduler_config))))
    check_architecture(arch)
    state = to_ldm(unet.state_dict(), vae.state_dict(), text_encoder.state_dict(), arch.unet, arch.vae)
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
               for k, v in state.items() if not k.endswith("position_ids")}
    extra = dict(extra_metadata or {})
    if METADATA_KEY in extra:
        raise ValueError(f"extra_metadata: {METADATA_KEY!r} is written by save_base_checkpoint itself; rename it")
    metadata = {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in extra.items()}
    metadata[METADATA_KEY] = arch.to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("saved %s small model (%d tensors, %.1f MB) to %s", FORMAT, len(tensors), path.stat().st_size / 1e6, path)
    return path


def read_base_architecture(path: str | os.PathLike) -> BaseArchitecture:
    """The architecture stored in a Zizi small-model file. FileNotFoundError / ValueError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path.name} is not a safetensors file ({err}); pickled .ckpt/.pt files are never opened") from None
    if raw is None:
        raise ValueError(f"{path.name} has no {METADATA_KEY!r} metadata: {NOT_ZIZI}")
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        if int(meta.get("version", 0)) > VERSION:
            raise ValueError(f"version {meta['version']} is newer than this loader's {VERSION}; update Zizi Video")
        arch = BaseArchitecture(meta["unet"], meta["vae"], meta["text_encoder"], meta["scheduler"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path.name}: broken {METADATA_KEY!r} metadata ({err}); {NOT_ZIZI}") from None
    check_architecture(arch)
    return arch


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], what: str, dtype: torch.dtype) -> nn.Module:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("position_ids")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(f"{what}: {len(missing)} tensors missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                         f"(e.g. {unexpected[:2]}), {len(wrong)} of another shape (e.g. {wrong[:2]})")
    # copies: own, aligned memory (views into the file's buffer are unaligned, which changes CPU kernels' results)
    model.load_state_dict({k: v.to(dtype=dtype if v.is_floating_point() else v.dtype, copy=True) for k, v in state.items()},
                          strict=False, assign=True)
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta:  # CLIP's position_ids are not stored in the file
            module_name, _, buffer_name = name.rpartition(".")
            module = model.get_submodule(module_name)
            module.register_buffer(buffer_name, torch.arange(buffer.shape[-1]).expand(buffer.shape), persistent=False)
    return model.eval()


def load_base_diffusers(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, nn.Module, nn.Module, dict[str, Any]]:
    """(diffusers UNet2DConditionModel, AutoencoderKL, transformers CLIPTextModel, scheduler config) of a file."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    arch = read_base_architecture(path)
    unet_sd, vae_sd, text_sd = from_ldm(load_file(str(path)), arch.unet, arch.vae)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(arch.unet)
        vae = AutoencoderKL.from_config(arch.vae)
        text = CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
    name = Path(path).name
    text_sd = match_text_encoder_keys(text_sd, text.state_dict().keys())
    return (_load_into(unet, unet_sd, f"{name} (UNet)", dtype), _load_into(vae, vae_sd, f"{name} (VAE)", dtype),
            _load_into(text, text_sd, f"{name} (text encoder)", dtype), dict(arch.scheduler))

"""Key maps between diffusers' SD1.5 state dicts and the original LDM single-file checkpoint layout.

The original layout (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``)
is what ComfyUI's Load Checkpoint and most shared ``.safetensors`` files use; diffusers names the same
tensors per module (``down_blocks.0.resnets.0.norm1``...). Each map below is built from the model's block
structure, so it covers SD1.5 itself and the reduced-width SD1.5-family models the tests and the demo use.
Both directions come from the same table: ``to_ldm`` and ``from_ldm``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

UNET_RESNET_RENAMES = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
VAE_RESNET_RENAMES = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTENTION_RENAMES = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
}


def unet_prefix_map(
    down_has_attention: Sequence[bool], up_has_attention: Sequence[bool], layers_per_block: int
) -> dict[str, tuple[str, dict[str, str]]]:
    """diffusers prefix -> (LDM prefix, renames of the names inside that module)."""
    blocks = len(down_has_attention)
    per_level = layers_per_block + 1  # resnets (+attention) then a downsampler per level
    m: dict[str, tuple[str, dict[str, str]]] = {
        "time_embedding.linear_1.": ("time_embed.0.", {}),
        "time_embedding.linear_2.": ("time_embed.2.", {}),
        "conv_in.": ("input_blocks.0.0.", {}),
        "conv_norm_out.": ("out.0.", {}),
        "conv_out.": ("out.2.", {}),
        "mid_block.resnets.0.": ("middle_block.0.", UNET_RESNET_RENAMES),
        "mid_block.attentions.0.": ("middle_block.1.", {}),
        "mid_block.resnets.1.": ("middle_block.2.", UNET_RESNET_RENAMES),
    }
    for i in range(blocks):
        for j in range(layers_per_block):
            index = 1 + i * per_level + j
            m[f"down_blocks.{i}.resnets.{j}."] = (f"input_blocks.{index}.0.", UNET_RESNET_RENAMES)
            if down_has_attention[i]:
                m[f"down_blocks.{i}.attentions.{j}."] = (f"input_blocks.{index}.1.", {})
        if i < blocks - 1:
            m[f"down_blocks.{i}.downsamplers.0.conv."] = (f"input_blocks.{(i + 1) * per_level}.0.op.", {})
    for i in range(blocks):
        for j in range(layers_per_block + 1):
            index = i * (layers_per_block + 1) + j
            m[f"up_blocks.{i}.resnets.{j}."] = (f"output_blocks.{index}.0.", UNET_RESNET_RENAMES)
            if up_has_attention[i]:
                m[f"up_blocks.{i}.attentions.{j}."] = (f"output_blocks.{index}.1.", {})
        if i < blocks - 1:
            last = i * (layers_per_block + 1) + layers_per_block
            m[f"up_blocks.{i}.upsamplers.0.conv."] = (f"output_blocks.{last}.{2 if up_has_attention[i] else 1}.conv.", {})
    return m


def vae_prefix_map(blocks: int, layers_per_block: int) -> dict[str, tuple[str, dict[str, str]]]:
    m: dict[str, tuple[str, dict[str, str]]] = {}
    for part in ("encoder", "decoder"):
        m[f"{part}.conv_in."] = (f"{part}.conv_in.", {})
        m[f"{part}.conv_out."] = (f"{part}.conv_out.", {})
        m[f"{part}.conv_norm_out."] = (f"{part}.norm_out.", {})
        m[f"{part}.mid_block.resnets.0."] = (f"{part}.mid.block_1.", VAE_RESNET_RENAMES)
        m[f"{part}.mid_block.resnets.1."] = (f"{part}.mid.block_2.", VAE_RESNET_RENAMES)
        m[f"{part}.mid_block.attentions.0."] = (f"{part}.mid.attn_1.", VAE_ATTENTION_RENAMES)
    for i in range(blocks):
        for j in range(layers_per_block):
            m[f"encoder.down_blocks.{i}.resnets.{j}."] = (f"encoder.down.{i}.block.{j}.", VAE_RESNET_RENAMES)
        if i < blocks - 1:
            m[f"encoder.down_blocks.{i}.downsamplers.0.conv."] = (f"encoder.down.{i}.downsample.conv.", {})
        level = blocks - 1 - i  # the decoder's up_blocks run in the opposite order of LDM's decoder.up
        for j in range(layers_per_block + 1):
            m[f"decoder.up_blocks.{i}.resnets.{j}."] = (f"decoder.up.{level}.block.{j}.", VAE_RESNET_RENAMES)
        if i < blocks - 1:
            m[f"decoder.up_blocks.{i}.upsamplers.0.conv."] = (f"decoder.up.{level}.upsample.conv.", {})
    for name in ("quant_conv.", "post_quant_conv."):
        m[name] = (name, {})
    return m


def _rename(key: str, prefix_map: Mapping[str, tuple[str, dict[str, str]]]) -> str:
    best = max((p for p in prefix_map if key.startswith(p)), key=len, default=None)
    if best is None:
        raise KeyError(f"no LDM name known for diffusers key {key!r}")
    target, inner = prefix_map[best]
    rest = key[len(best):]
    for src, dst in inner.items():
        if rest.startswith(src):
            rest = dst + rest[len(src):]
            break
    return target + rest


def _unrename(key: str, prefix_map: Mapping[str, tuple[str, dict[str, str]]]) -> str:
    reverse = {target: (src, {v: k for k, v in inner.items()}) for src, (target, inner) in prefix_map.items()}
    return _rename(key, reverse)


def _is_vae_attention_matrix(ldm_key: str) -> bool:
    return ".mid.attn_1." in ldm_key and ldm_key.endswith(".weight") and ldm_key.rsplit(".", 2)[-2] in {"q", "k", "v", "proj_out"}


def unet_structure(config: Mapping) -> tuple[list[bool], list[bool], int]:
    """(down blocks with attention, up blocks with attention, layers per block) from a diffusers UNet config."""
    down = ["CrossAttn" in t for t in config["down_block_types"]]
    up = ["CrossAttn" in t for t in config["up_block_types"]]
    return down, up, int(config["layers_per_block"])


def to_ldm(
    unet: Mapping[str, torch.Tensor],
    vae: Mapping[str, torch.Tensor],
    text_encoder: Mapping[str, torch.Tensor],
    unet_config: Mapping,
    vae_config: Mapping,
) -> dict[str, torch.Tensor]:
    """Merge diffusers UNet / VAE / CLIP text-encoder state dicts into one LDM-layout state dict."""
    unet_map = unet_prefix_map(*unet_structure(unet_config))
    vae_map = vae_prefix_map(len(vae_config["block_out_channels"]), int(vae_config["layers_per_block"]))
    out = {UNET_PREFIX + _rename(k, unet_map): v for k, v in unet.items()}
    for k, v in vae.items():
        ldm = _rename(k, vae_map)
        if _is_vae_attention_matrix(ldm) and v.ndim == 2:
            v = v[:, :, None, None]  # [C, C] linear -> [C, C, 1, 1] conv, as LDM stores it
        out[VAE_PREFIX + ldm] = v
    out.update({TEXT_PREFIX + _with_text_model_prefix(k): v for k, v in text_encoder.items()})
    return out


def _with_text_model_prefix(key: str) -> str:
    # transformers 5 names CLIPTextModel tensors without the "text_model." level that LDM files keep
    return key if key.startswith("text_model.") else "text_model." + key


def match_text_encoder_keys(state: Mapping[str, torch.Tensor], model_keys: Collection[str]) -> dict[str, torch.Tensor]:
    """Rename LDM-style ``text_model.*`` keys to the naming of the installed transformers' CLIPTextModel."""
    if any(k.startswith("text_model.") for k in model_keys):
        return {_with_text_model_prefix(k): v for k, v in state.items()}
    return {k.removeprefix("text_model."): v for k, v in state.items()}


def from_ldm(
    state: Mapping[str, torch.Tensor], unet_config: Mapping, vae_config: Mapping
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split an LDM-layout checkpoint into diffusers (unet, vae, text_encoder) state dicts.

    Text-encoder keys keep LDM's ``text_model.`` level; pass them through ``match_text_encoder_keys``
    before loading them into a CLIPTextModel.
    """
    unet_map = unet_prefix_map(*unet_structure(unet_config))
    vae_map = vae_prefix_map(len(vae_config["block_out_channels"]), int(vae_config["layers_per_block"]))
    unet, vae, text = {}, {}, {}
    for key, value in state.items():
        if key.startswith(UNET_PREFIX):
            unet[_unrename(key[len(UNET_PREFIX):], unet_map)] = value
        elif key.startswith(VAE_PREFIX):
            ldm = key[len(VAE_PREFIX):]
            if _is_vae_attention_matrix(ldm) and value.ndim == 4:
                value = value[:, :, 0, 0]
            vae[_unrename(ldm, vae_map)] = value
        elif key.startswith(TEXT_PREFIX):
            text[_with_text_model_prefix(key[len(TEXT_PREFIX):])] = value
    return unet, vae, text

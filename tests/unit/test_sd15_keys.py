from __future__ import annotations

import torch
from safetensors import safe_open

from devtools.random_sd15 import (
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
    TINY_UNET_CONFIG,
    TINY_VAE_CONFIG,
    build_unet,
    build_vae,
)
from zizi_models.sd15_keys import from_ldm, match_text_encoder_keys, to_ldm


def test_tiny_round_trip_is_exact_and_layout_is_ldm() -> None:
    unet, vae = build_unet(TINY_UNET_CONFIG, 0), build_vae(TINY_VAE_CONFIG, 0)
    text = {"final_layer_norm.weight": torch.randn(32)}  # transformers 5 naming (no "text_model.")
    ldm = to_ldm(unet.state_dict(), vae.state_dict(), text, TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    assert len(ldm) == len(unet.state_dict()) + len(vae.state_dict()) + 1
    # a few landmarks of the original layout
    assert torch.equal(ldm["model.diffusion_model.input_blocks.0.0.weight"], unet.conv_in.weight)
    assert torch.equal(ldm["model.diffusion_model.input_blocks.3.0.op.weight"], unet.down_blocks[0].downsamplers[0].conv.weight)
    assert torch.equal(ldm["model.diffusion_model.output_blocks.2.1.conv.weight"], unet.up_blocks[0].upsamplers[0].conv.weight)
    assert torch.equal(ldm["model.diffusion_model.output_blocks.5.2.conv.weight"], unet.up_blocks[1].upsamplers[0].conv.weight)
    assert torch.equal(ldm["model.diffusion_model.middle_block.2.out_layers.3.weight"], unet.mid_block.resnets[1].conv2.weight)
    assert torch.equal(ldm["first_stage_model.decoder.up.3.block.0.conv1.weight"], vae.decoder.up_blocks[0].resnets[0].conv1.weight)
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"].shape[-2:] == (1, 1)
    back_unet, back_vae, back_text = from_ldm(ldm, TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    assert list(back_text) == ["text_model.final_layer_norm.weight"]  # LDM files keep the text_model level
    assert match_text_encoder_keys(back_text, ["final_layer_norm.weight"]).keys() == text.keys()
    for original, restored in ((unet.state_dict(), back_unet), (vae.state_dict(), back_vae)):
        assert original.keys() == restored.keys()
        assert all(torch.equal(original[k], restored[k]) for k in original)


def test_full_size_checkpoint_has_sd15_layout(sd15_checkpoint_path) -> None:
    with safe_open(str(sd15_checkpoint_path), "pt") as f:
        keys = set(f.keys())
        conv_in = f.get_slice("model.diffusion_model.input_blocks.0.0.weight").get_shape()
        context = f.get_slice("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight").get_shape()
        tokens = f.get_slice("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight").get_shape()
    assert conv_in == [320, 4, 3, 3]
    assert context == [320, 768]
    assert tokens == [49408, 768]
    unet_keys = {k for k in keys if k.startswith("model.diffusion_model.")}
    expected = {"model.diffusion_model." + k for k in _ldm_unet_keys()}
    assert unet_keys == expected


def _ldm_unet_keys() -> set[str]:
    with torch.device("meta"):
        unet = build_unet(SD15_UNET_CONFIG, 0)
        vae = build_vae(SD15_VAE_CONFIG, 0)
    ldm = to_ldm(unet.state_dict(), vae.state_dict(), {}, SD15_UNET_CONFIG, SD15_VAE_CONFIG)
    return {k[len("model.diffusion_model."):] for k in ldm if k.startswith("model.diffusion_model.")}

"""ZiziCheckpointLoader inside an in-process ComfyUI: the MODEL, CLIP and VAE it builds from a Zizi small-model
file compute what diffusers / transformers compute from the same file (the trainer's view), for SD1.5's
4-level VAE, a 3-level VAE (downscale 4) and a UNet with other heads / levels / depth and v-prediction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from devtools.random_sd15 import (
    SD15_SCHEDULER_CONFIG,
    TINY_TEXT_CONFIG,
    TINY_UNET_CONFIG,
    TINY_VAE3_CONFIG,
    build_text_encoder,
    build_unet,
    build_vae,
    clip_tokenizer_files,
    tiny_base_checkpoint,
)
from zizi_models.base_checkpoint import load_base_diffusers, save_base_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT = "a dancer in a red dress, (studio light), 4k"
# other heads, 3 UNet levels, 1 layer per block, 2 transformer layers, v-prediction, its own latent scale
CUSTOM_UNET = {**TINY_UNET_CONFIG, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
               "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "block_out_channels": [32, 64, 64],
               "layers_per_block": 1, "attention_head_dim": 4, "transformer_layers_per_block": 2}
CUSTOM_SCHEDULER = {**SD15_SCHEDULER_CONFIG, "prediction_type": "v_prediction"}
VARIANTS = ["vae4", "vae3", "custom"]


@pytest.fixture(scope="module")
def folder(comfy_pack, tmp_path_factory):
    """A zizi_checkpoints folder with the tiny models and broken files."""
    import folder_paths

    folder = tmp_path_factory.mktemp("zizi-checkpoints")
    folder_paths.add_model_folder_path("zizi_checkpoints", str(folder))
    (folder / "vae4.safetensors").symlink_to(tiny_base_checkpoint(seed=0, vae_levels=4))
    (folder / "vae3.safetensors").symlink_to(tiny_base_checkpoint(seed=0, vae_levels=3))
    save_base_checkpoint(folder / "custom.safetensors", build_unet(CUSTOM_UNET, 7), build_vae(TINY_VAE3_CONFIG, 7),
                         build_text_encoder(TINY_TEXT_CONFIG, 7), CUSTOM_SCHEDULER, dtype=torch.float32)
    (folder / "notes.safetensors").write_text("this is not a safetensors file")
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}, str(folder / "sd15.safetensors"))
    from safetensors import safe_open

    source = tiny_base_checkpoint(seed=0, vae_levels=4)
    with safe_open(str(source), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(source))
    save_file({k: v for k, v in tensors.items() if "decoder.up.0." not in k}, str(folder / "no_decoder_level.safetensors"), metadata)
    tensors["first_stage_model.decoder.conv_in.weight"] = torch.zeros(64, 4, 1, 1, dtype=torch.float16)
    save_file(tensors, str(folder / "bad_shape.safetensors"), metadata)
    return folder


@pytest.fixture(scope="module", params=VARIANTS)
def loaded(request, folder, comfy_pack):
    """(ComfyUI MODEL, CLIP, VAE in fp32) and (diffusers unet, vae, transformers text encoder) of one file."""
    path = folder / f"{request.param}.safetensors"
    comfy_parts = comfy_pack.nodes.comfy.sd15_family_from_checkpoint(path, dtype=torch.float32)
    return request.param, comfy_parts, load_base_diffusers(path)[:3]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_unet_prediction_matches_diffusers(loaded) -> None:
    import comfy.model_management
    import comfy.model_sampling

    name, (model, _, _), (unet, _, _) = loaded
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=generator)
    context = torch.randn(2, 77, 32, generator=generator)
    timesteps = torch.tensor([20, 800])
    comfy.model_management.load_models_gpu([model])
    base = model.model
    sigma = base.model_sampling.sigma(timesteps.float())
    # ComfyUI's samplers work in sigma space: x_in = x * sqrt(sigma^2 + 1); the model scales it back by 1/sqrt(...)
    scale = (sigma**2 + 1).sqrt().view(-1, 1, 1, 1)
    with torch.no_grad():
        denoised = base.apply_model(x * scale, sigma, c_crossattn=context)
        reference = unet(x, timesteps, context).sample
    if name == "custom":  # v-prediction: denoised = x_in / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)
        assert isinstance(base.model_sampling, comfy.model_sampling.V_PREDICTION)
        v = (x * scale / scale**2 - denoised) * scale / sigma.view(-1, 1, 1, 1)
        assert relative(v, reference) < 1e-4
    else:
        eps = (x * scale - denoised) / sigma.view(-1, 1, 1, 1)
        assert relative(eps, reference) < 1e-4
    assert base.latent_format.scale_factor == 0.18215


def test_vae_decode_and_encode_match_diffusers(loaded) -> None:
    name, (_, _, vae), (_, dvae, _) = loaded
    ratio = 4 if name in ("vae3", "custom") else 8
    assert vae.downscale_ratio == vae.upscale_ratio == ratio
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(2, 4, 6, 5, generator=generator)
    images = torch.rand(2, 24, 32, 3, generator=generator)
    with torch.no_grad():
        decoded = vae.decode(latents)  # [N, H, W, 3] in [0, 1]
        reference = ((dvae.decode(latents).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
        encoded = vae.encode(images)  # ComfyUI maps [0, 1] -> [-1, 1] itself; the posterior's mode
        reference_latents = dvae.encode(images.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mode()
    assert decoded.shape == (2, 6 * ratio, 5 * ratio, 3)
    assert (decoded - reference).abs().max().item() < 1e-4
    assert encoded.shape == (2, 4, 24 // ratio, 32 // ratio)
    assert relative(encoded, reference_latents) < 1e-4


def test_clip_text_encode_matches_transformers_last_hidden_state(loaded, comfyui_dir) -> None:
    from transformers import CLIPTokenizer

    import nodes as comfy_nodes  # ComfyUI's nodes.py (the pack itself is imported as zizi_video)

    assert Path(comfy_nodes.__file__).parent == comfyui_dir
    _, (_, clip, _), (_, _, text) = loaded
    tokens = clip.tokenize(PROMPT)
    ids = CLIPTokenizer.from_pretrained(str(clip_tokenizer_files()))(
        PROMPT.replace("(", "").replace(")", ""), padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert [token for token, _ in tokens["l"][0]] == ids[0].tolist()  # same ids, padded with the end token
    assert {weight for _, weight in tokens["l"][0]} == {1.0, 1.1}  # "(studio light)" weighted as ComfyUI does
    plain = "a dancer in a red dress"
    ((cond, extra),) = comfy_nodes.CLIPTextEncode().encode(clip, plain)[0]
    ids = CLIPTokenizer.from_pretrained(str(clip_tokenizer_files()))(plain, padding="max_length", max_length=77,
                                                                       return_tensors="pt").input_ids
    with torch.no_grad():
        reference = text(ids)
    assert cond.shape == (1, 77, 32)
    assert relative(cond, reference.last_hidden_state) < 1e-5
    assert relative(extra["pooled_output"], reference.pooler_output) < 1e-5
    assert "attention_mask" not in extra  # SD1: no mask; the UNet sees all 77 states, as in training


def test_node_loads_with_comfyui_dtypes_and_outputs_work(folder, comfy_pack) -> None:
    import comfy.latent_formats
    import comfy.supported_models

    node = comfy_pack.nodes.checkpoint_nodes.ZiziCheckpointLoader()
    model, clip, vae = node.load("vae3.safetensors")
    assert vae.downscale_ratio == 4 and vae.decode(torch.zeros(1, 4, 3, 3)).shape == (1, 12, 12, 3)
    # the pack's decode keeps no autograd graph when called outside ComfyUI's inference mode: a long loop
    # run from a script used to hold every decoded chunk's graph (memory grew with the video length)
    bridge = comfy_pack.nodes.comfy
    assert torch.is_grad_enabled()
    assert bridge.vae_decode(vae, torch.zeros(1, 4, 3, 3)).grad_fn is None
    assert bridge.vae_encode(vae, torch.rand(1, 12, 12, 3)).grad_fn is None
    cond = clip.encode_from_tokens_scheduled(clip.tokenize("hello"))[0][0]
    assert cond.shape == (1, 77, 32) and torch.isfinite(cond).all()
    assert model.model.latent_format.taesd_decoder_name is None
    # per instance: ComfyUI's SD1.5 latent format and model class are untouched
    assert comfy.latent_formats.SD15().taesd_decoder_name == "taesd_decoder"
    assert comfy.supported_models.SD15.unet_extra_config["num_heads"] == 8
    assert comfy.supported_models.SD15.sampling_settings == {}


def test_model_folder_includes_the_packs_weights(folder, comfy_pack) -> None:
    import folder_paths

    bridge = comfy_pack.nodes.comfy
    paths = folder_paths.get_folder_paths("zizi_checkpoints")
    weights = bridge.PACK_MODEL_PATHS["zizi_checkpoints"][0]
    assert Path(weights) == Path(__file__).resolve().parents[2] / "weights"  # the pack's own weights/ folder
    assert paths[0] == os.path.join(folder_paths.models_dir, "zizi_checkpoints") and weights in paths
    assert {"vae4.safetensors", "vae3.safetensors"} <= set(bridge.list_model_files("zizi_checkpoints"))


@pytest.mark.parametrize(("name", "expected"), [
    ("notes.safetensors", r"^ckpt_name: notes.safetensors is not a safetensors file"),
    ("sd15.safetensors", r"^ckpt_name: sd15.safetensors has no 'zizi_base' metadata: not a Zizi small-model checkpoint; "
                         "load regular SD1.5 checkpoints with Load Checkpoint$"),
    ("no_decoder_level.safetensors", r"^ckpt_name: no_decoder_level.safetensors: vae: \d+ tensors missing from the file \(e.g. \['decoder.up.0."),
    ("bad_shape.safetensors", r"^ckpt_name: bad_shape.safetensors: its tensors do not match the architecture in its metadata"),
])
def test_bad_files_give_one_line_errors(folder, comfy_pack, name: str, expected: str) -> None:
    node = comfy_pack.nodes.checkpoint_nodes.ZiziCheckpointLoader()
    with pytest.raises(ValueError, match=expected) as error:
        node.load(name)
    assert "\n" not in str(error.value)


def test_missing_file_is_reported_before_running(folder, comfy_pack) -> None:
    node = comfy_pack.nodes.checkpoint_nodes.ZiziCheckpointLoader
    message = node.VALIDATE_INPUTS("does_not_exist.safetensors")
    assert isinstance(message, str) and message.startswith("ckpt_name: 'does_not_exist.safetensors' not found")
    assert node.VALIDATE_INPUTS("vae4.safetensors") is True
    with pytest.raises(FileNotFoundError, match="ckpt_name"):
        node().load("../../etc/passwd")

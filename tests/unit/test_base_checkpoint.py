"""The Zizi small-model file (zizi_models/base_checkpoint.py): round trip, metadata, errors, size."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from devtools.random_sd15 import (
    SD15_SCHEDULER_CONFIG,
    TINY_TEXT_CONFIG,
    TINY_UNET_CONFIG,
    TINY_VAE_CONFIGS,
    build_text_encoder,
    build_unet,
    build_vae,
    tiny_base_checkpoint,
)
from zizi_models.base_checkpoint import (
    METADATA_KEY,
    check_architecture,
    ldm_sampling_settings,
    ldm_vae_config,
    load_base_diffusers,
    read_base_architecture,
    save_base_checkpoint,
)

SCHEDULER = {"_class_name": "DDPMScheduler", **SD15_SCHEDULER_CONFIG}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_models():
    """(unet, {levels: vae}, text encoder): the tiny random model with both VAE depths."""
    vaes = {levels: build_vae(config, seed=5) for levels, config in TINY_VAE_CONFIGS.items()}
    return build_unet(TINY_UNET_CONFIG, seed=5), vaes, build_text_encoder(TINY_TEXT_CONFIG, seed=5)


def outputs(unet, vae, text) -> dict[str, torch.Tensor]:
    """UNet noise prediction, VAE decode and encode, text encoder hidden states on fixed inputs."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    context = torch.randn(2, 77, TINY_TEXT_CONFIG["hidden_size"], generator=generator)
    images = torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1
    tokens = torch.randint(0, 49408, (2, 77), generator=generator)
    with torch.no_grad():
        return {
            "unet": unet(latents, torch.tensor([10, 700]), context).sample,
            "decode": vae.decode(latents[:1]).sample,
            "encode": vae.encode(images).latent_dist.mode(),
            "text": text(tokens).last_hidden_state,
        }


@pytest.mark.parametrize("levels", [4, 3])
def test_fp32_round_trip_gives_the_same_models(tiny_models, tmp_path, levels: int) -> None:
    unet, vaes, text = tiny_models
    path = save_base_checkpoint(tmp_path / "tiny.safetensors", unet, vaes[levels], text, SCHEDULER, dtype=torch.float32)
    unet2, vae2, text2, scheduler = load_base_diffusers(path)
    for original, loaded in ((unet, unet2), (vaes[levels], vae2), (text, text2)):
        a, b = original.state_dict(), loaded.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    expected, got = outputs(unet, vaes[levels], text), outputs(unet2, vae2, text2)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    assert scheduler == SCHEDULER
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left


def test_fp16_default_stores_half_precision_and_loads_close(tiny_models, tmp_path) -> None:
    unet, vaes, text = tiny_models
    path = save_base_checkpoint(tmp_path / "tiny16.safetensors", unet, vaes[4], text, SCHEDULER)
    with safe_open(str(path), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    unet2, vae2, text2, _ = load_base_diffusers(path)
    assert next(unet2.parameters()).dtype == torch.float32
    assert torch.equal(unet2.conv_in.weight, unet.conv_in.weight.half().float())
    expected, got = outputs(unet, vaes[4], text), outputs(unet2, vae2, text2)
    for name in expected:
        relative = ((got[name] - expected[name]).norm() / expected[name].norm()).item()
        assert relative < 5e-3, (name, relative)


def test_metadata_records_the_architecture(tiny_models, tmp_path) -> None:
    unet, vaes, text = tiny_models
    path = save_base_checkpoint(tmp_path / "meta.safetensors", unet, vaes[3], text, SCHEDULER,
                                extra_metadata={"trained_steps": 1200, "note": "tiny"})
    with safe_open(str(path), "pt") as f:
        raw = f.metadata()
        keys = list(f.keys())
    meta = json.loads(raw[METADATA_KEY])
    assert meta["format"] == "zizi-sd15-family" and meta["version"] == 1
    assert meta["unet"]["block_out_channels"] == TINY_UNET_CONFIG["block_out_channels"]
    assert meta["vae"]["block_out_channels"] == [32, 64, 64] and meta["vae"]["scaling_factor"] == 0.18215
    assert meta["text_encoder"]["hidden_size"] == 32 and meta["text_encoder"]["vocab_size"] == 49408
    assert meta["scheduler"] == SCHEDULER
    assert json.loads(raw["trained_steps"]) == 1200 and raw["note"] == "tiny"
    assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}
    assert not any(k.endswith("position_ids") for k in keys)
    arch = read_base_architecture(path)
    assert (arch.vae_levels, arch.vae_scale_factor, arch.attention_heads, arch.latent_scaling_factor) == (3, 4, 8, 0.18215)
    assert read_base_architecture(tiny_base_checkpoint(seed=0)).vae_scale_factor == 8


def test_tiny_model_file_is_small() -> None:
    for levels in TINY_VAE_CONFIGS:
        size = tiny_base_checkpoint(seed=0, vae_levels=levels).stat().st_size
        assert size < 14e6, size  # fp16; 10 of its 12.5 MB are CLIP's 49408 x 32 token embedding


def test_files_without_zizi_metadata_are_refused(tmp_path) -> None:
    plain = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}, str(plain),
              metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a Zizi small-model checkpoint; load regular SD1.5 checkpoints with Load Checkpoint"):
        read_base_architecture(plain)
    with pytest.raises(ValueError, match="not a Zizi small-model checkpoint"):
        load_base_diffusers(plain)
    broken = tmp_path / "broken.safetensors"
    save_file({"a": torch.zeros(1)}, str(broken), metadata={METADATA_KEY: "{not json"})
    with pytest.raises(ValueError, match="broken 'zizi_base' metadata"):
        read_base_architecture(broken)


def test_pickles_are_never_opened(tmp_path) -> None:
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (marker.touch, ())

    ckpt = tmp_path / "model.safetensors"  # a pickle under a .safetensors name
    ckpt.write_bytes(pickle.dumps(Trap()))
    with pytest.raises(ValueError, match="not a safetensors file") as error:
        read_base_architecture(ckpt)
    assert not marker.exists() and "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_base_architecture(tmp_path / "missing.safetensors")


def test_models_outside_the_sd15_family_are_refused(tiny_models, tmp_path) -> None:
    unet, vaes, text = tiny_models
    arch = read_base_architecture(tiny_base_checkpoint(seed=0))
    cases = [
        (replace(arch, unet={**arch.unet, "norm_num_groups": 16}), "unet: norm_num_groups is 16"),
        (replace(arch, unet={**arch.unet, "cross_attention_dim": 64}), "cross_attention_dim 64 != text_encoder hidden_size 32"),
        (replace(arch, vae={**arch.vae, "latent_channels": 8}), "vae: latent_channels is 8"),
        (replace(arch, vae={**arch.vae, "block_out_channels": [32, 48, 64, 64]}), r"vae: block_out_channels \[32, 48, 64, 64\]"),
        (replace(arch, text_encoder={**arch.text_encoder, "vocab_size": 1000}), "text_encoder: vocab_size is 1000"),
        (replace(arch, scheduler={**arch.scheduler, "prediction_type": "sample"}), "scheduler: prediction_type 'sample'"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            check_architecture(bad)
    with pytest.raises(ValueError, match="scheduler: beta_schedule 'squaredcos_cap_v2'"):
        save_base_checkpoint(tmp_path / "x.safetensors", unet, vaes[4], text, {**SCHEDULER, "beta_schedule": "squaredcos_cap_v2"})
    with pytest.raises(ValueError, match="extra_metadata: 'zizi_base'"):
        save_base_checkpoint(tmp_path / "x.safetensors", unet, vaes[4], text, SCHEDULER, extra_metadata={METADATA_KEY: 1})
    assert not list(tmp_path.iterdir())


def test_ldm_translations() -> None:
    assert ldm_vae_config(TINY_VAE_CONFIGS[3])["ddconfig"]["ch_mult"] == [1, 2, 2]
    assert ldm_vae_config(TINY_VAE_CONFIGS[4]) == {"embed_dim": 4, "ddconfig": {
        "double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
        "ch_mult": [1, 1, 2, 2], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}}
    assert ldm_sampling_settings(SD15_SCHEDULER_CONFIG) == {
        "prediction": "eps", "beta_schedule": "linear", "linear_start": 0.00085, "linear_end": 0.012,
        "timesteps": 1000, "zsnr": False}
    v = ldm_sampling_settings({**SD15_SCHEDULER_CONFIG, "prediction_type": "v_prediction", "beta_schedule": "linear",
                               "rescale_betas_zero_snr": True})
    assert (v["prediction"], v["beta_schedule"], v["zsnr"]) == ("v_prediction", "sqrt_linear", True)

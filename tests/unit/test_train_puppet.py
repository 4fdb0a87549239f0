"""`python -m train puppet` end to end at toy scale: every stage runs, resumes, and exports loadable files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from train.config import ConfigError
from train.puppet import load_puppet_config, run_puppet
from train.vae_fit import random_crop

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY = [
    "puppet.clips=3", "puppet.clip_frames=24", "puppet.size=32", "puppet.vae.steps=3", "puppet.vae.batch_size=4",
    "puppet.vae.log_every=1", "fit.max_steps=2", "fit.checkpoint.every=1", "fit.data.batch_size=1",
    "fit.window.frames=4", "fit.window.extrapolate_strides=[1, 2]", "fit.window.interpolate_outer_strides=[1, 2]",
    "fit.window.starter_strides=[1]", "fit.window.extrapolate_context=[1, 2]", "fit.window.interpolate_before=[1, 1]",
    "fit.window.interpolate_after=[1, 1]", "fit.logging.progress_bar=false", "fit.optimizer.warmup_steps=0",
]


def test_random_crop_keeps_pixels_and_size() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    crops = random_crop(x, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 4, 4)
    for img, crop in zip(x, crops, strict=True):  # each crop is a contiguous window of its own image
        top, left = divmod(int(crop[0, 0, 0].item()) % 64, 8)
        assert torch.equal(crop, img[:, top:top + 4, left:left + 4])
    assert random_crop(x, 0, torch.Generator()) is x


def test_puppet_config_rejects_unknown_keys(tmp_path) -> None:
    with pytest.raises(ConfigError, match="keys start with 'puppet.' or 'fit.'"):
        load_puppet_config("train/configs/puppet.yaml", ["seed=1"])
    with pytest.raises(ConfigError, match="vae"):
        load_puppet_config("train/configs/puppet.yaml", ["puppet.vae.stepz=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("puppet: {}\nfits: {}\n")
    with pytest.raises(ConfigError, match="unknown top-level sections"):
        load_puppet_config(bad)


def test_toy_puppet_build_exports_a_posed_small_model(tmp_path) -> None:
    from zizi_models.base_checkpoint import load_base_diffusers, read_base_architecture
    from zizi_models.temporal import load_temporal_model

    overrides = TOY + [f"puppet.output_dir={tmp_path / 'run'}", f"puppet.weights_dir={tmp_path / 'weights'}"]
    out = run_puppet("train/configs/puppet.yaml", overrides)
    index = json.loads((out["dataset"] / "index.json").read_text())
    assert len(index["clips"]) == 3 and index["latent_shape"] == [4, 8, 8]  # 32 px / VAE downscale 4
    assert all(c["pose"] and (out["dataset"] / c["pose"]).is_file() for c in index["clips"])
    arch = read_base_architecture(out["base_checkpoint"])
    scale = arch.vae["scaling_factor"]
    assert scale != 0.18215 and 0.01 < scale < 100  # fitted to the latents, not SD1.5's constant
    unet, vae, text, _ = load_base_diffusers(out["base_checkpoint"])
    from diffusers import UNet2DConditionModel

    initial = UNet2DConditionModel.from_pretrained(str(out["base"]), subfolder="unet", local_files_only=True)
    moved = [k for k, v in initial.state_dict().items() if (v - unet.state_dict()[k].float()).abs().max() > 1e-4]
    assert moved  # the exported UNet is the trained one, not the random init
    temporal = load_temporal_model(out["temporal"])
    assert temporal.pose_encoder is not None and temporal.config.pose_downscale == 4
    assert temporal.pose_encoder.proj.weight.abs().max() > 0  # trained away from its zero init
    # rerunning continues: every stage is done, nothing is rebuilt, the same files come back
    before = out["base_checkpoint"].stat().st_mtime_ns
    again = run_puppet("train/configs/puppet.yaml", overrides, stop_after="fit")
    assert again["dataset"] == out["dataset"] and out["base_checkpoint"].stat().st_mtime_ns == before
    assert unet.config.block_out_channels and vae.config.block_out_channels == [32, 64, 64] and text is not None

    # a second stage continues from the exported files: same VAE and text encoder, UNet and temporal layers
    # start from the exported ones, and the new export counts the steps of both stages
    more = TOY + [f"puppet.output_dir={tmp_path / 'run2'}", f"puppet.weights_dir={tmp_path / 'weights2'}",
                  f"puppet.init_from={tmp_path / 'weights' / 'zizi_puppet'}", "fit.loss.min_snr_gamma=5"]
    second = run_puppet("train/configs/puppet_more.yaml", more)
    unet_init = UNet2DConditionModel.from_pretrained(str(second["base"]), subfolder="unet", local_files_only=True)
    for key, value in unet_init.state_dict().items():
        assert torch.equal(value, unet.state_dict()[key].float()), key
    vae2 = load_base_diffusers(second["base_checkpoint"])[1]
    for key, value in vae2.state_dict().items():
        assert torch.equal(value, vae.state_dict()[key]), key  # not refitted
    start = load_temporal_model(second["base"] / "temporal_init.safetensors")
    assert torch.equal(start.pose_encoder.proj.weight, temporal.pose_encoder.proj.weight)
    with safe_open(str(second["base_checkpoint"]), framework="pt") as handle:
        info = json.loads(handle.metadata()["zizi_puppet"])
    assert info["steps"] == 4 and info["init_from"].endswith("zizi_puppet") and "puppet_more.yaml" in info["command"]


def test_puppet_init_from_names_the_missing_file(tmp_path) -> None:
    overrides = TOY + [f"puppet.output_dir={tmp_path / 'run'}", f"puppet.init_from={tmp_path / 'nothing'}"]
    with pytest.raises(FileNotFoundError, match=r"puppet.init_from: .*nothing_base.safetensors not found"):
        run_puppet("train/configs/puppet_more.yaml", overrides)

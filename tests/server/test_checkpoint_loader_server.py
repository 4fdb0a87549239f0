"""Zizi Load Small Model -> CLIPTextEncode -> EmptyLatentImage -> KSampler -> VAEDecode -> SaveImage, over HTTP."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from devtools.comfy_client import ComfyClient, PromptFailed, PromptRejected

pytestmark = pytest.mark.server

LATENT_W, LATENT_H = 64 // 8, 48 // 8  # what EmptyLatentImage makes of 64 x 48


@pytest.fixture(scope="module")
def small_models(comfy_server, server_models) -> dict[str, str]:
    """The tiny small models, plus the regular SD1.5 checkpoint put where only small models belong."""
    regular = comfy_server.models_dir / "zizi_checkpoints" / "regular_sd15.safetensors"
    if not regular.exists():
        regular.symlink_to((comfy_server.models_dir / "checkpoints" / "sd15_random.safetensors").resolve())
    return {"vae4": server_models["small_vae4"], "vae3": server_models["small_vae3"], "regular": regular.name}


def small_model_prompt(ckpt_name: str, seed: int = 1, batch: int = 1) -> dict:
    return {
        "1": {"class_type": "ZiziCheckpointLoader", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dancer, studio light", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": LATENT_W * 8, "height": LATENT_H * 8, "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
            "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "zizi_test/small_model"}},
    }


def fetch_images(comfy: ComfyClient, result) -> np.ndarray:
    files = result.output_files("7")
    return np.stack([np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")).astype(float) for f in files])


def test_node_is_listed_with_the_small_models(comfy: ComfyClient, small_models) -> None:
    info = comfy.object_info()["ZiziCheckpointLoader"]
    assert info["display_name"] == "Zizi Load Small Model"
    assert info["output"] == ["MODEL", "CLIP", "VAE"]
    assert {small_models["vae4"], small_models["vae3"]} <= set(info["input"]["required"]["ckpt_name"][0])


@pytest.mark.parametrize(("variant", "downscale"), [("vae4", 8), ("vae3", 4)])
def test_text_to_image_with_the_small_model(comfy: ComfyClient, small_models, variant: str, downscale: int) -> None:
    images = fetch_images(comfy, comfy.run(small_model_prompt(small_models[variant], seed=1, batch=2), timeout=300))
    assert images.shape == (2, LATENT_H * downscale, LATENT_W * downscale, 3)
    assert np.isfinite(images).all() and images.std() > 1.0  # a NaN image would be saved as constant black
    other_seed = fetch_images(comfy, comfy.run(small_model_prompt(small_models[variant], seed=2, batch=2), timeout=300))
    assert np.abs(other_seed - images).mean() > 1.0


def test_missing_file_is_rejected_before_running(comfy: ComfyClient, small_models) -> None:
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue(small_model_prompt("no_such_model.safetensors"))
    assert "ckpt_name" in str(rejected.value) and "no_such_model" in str(rejected.value)


def test_regular_checkpoint_fails_with_a_pointer_to_load_checkpoint(comfy: ComfyClient, small_models) -> None:
    with pytest.raises(PromptFailed) as failed:
        comfy.run(small_model_prompt(small_models["regular"]), timeout=300)
    message = str(failed.value)
    assert "ckpt_name" in message and "not a Zizi small-model checkpoint" in message and "Load Checkpoint" in message

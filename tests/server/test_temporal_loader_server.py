"""Load Checkpoint -> ZiziTemporalModelLoader -> KSampler on a frame batch -> VAE Decode, over HTTP."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from devtools.comfy_client import ComfyClient, PromptFailed, PromptRejected

pytestmark = pytest.mark.server

FRESH = "zizi_fresh.safetensors"
RANDOM = "zizi_random.safetensors"


@pytest.fixture(scope="module")
def temporal_modules(comfy_server, server_models) -> None:
    (comfy_server.models_dir / "zizi" / "notes.safetensors").write_bytes(b"this is not a safetensors file")


def frames_prompt(frames: int, temporal_module: str | None, seed: int = 3) -> dict:
    model = ["1", 0]
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15_random.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dancer", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": frames}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "zizi_test/temporal"}},
    }
    if temporal_module is not None:
        prompt["8"] = {"class_type": "ZiziTemporalModelLoader", "inputs": {"model": ["1", 0], "temporal_module": temporal_module}}
        model = ["8", 0]
    prompt["5"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
        "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}
    return prompt


def fetch_frames(comfy: ComfyClient, result) -> np.ndarray:
    files = result.output_files("7")
    return np.stack([np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")).astype(float) for f in files])


def test_loader_lists_modules_and_rejects_missing_files(comfy: ComfyClient, temporal_modules) -> None:
    choices = comfy.object_info()["ZiziTemporalModelLoader"]["input"]["required"]["temporal_module"][0]
    assert {FRESH, RANDOM} <= set(choices)
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue(frames_prompt(2, "no_such_module.safetensors"))
    assert "temporal_module" in str(rejected.value)


def test_sixteen_frame_batch_through_the_inflated_model(comfy: ComfyClient, temporal_modules) -> None:
    result = comfy.run(frames_prompt(16, RANDOM), timeout=900)
    frames = fetch_frames(comfy, result)
    assert frames.shape == (16, 64, 64, 3)
    assert np.isfinite(frames).all() and frames.std() > 1.0
    assert max(e["value"] for e in result.progress_events("5")) == 2


def test_fresh_module_is_identity_and_trained_module_changes_frames(comfy: ComfyClient, temporal_modules) -> None:
    base = fetch_frames(comfy, comfy.run(frames_prompt(4, None), timeout=600))
    fresh = fetch_frames(comfy, comfy.run(frames_prompt(4, FRESH), timeout=600))
    perturbed = fetch_frames(comfy, comfy.run(frames_prompt(4, RANDOM), timeout=600))
    # zero-initialised temporal parts: the same frames as the plain SD1.5 model (up to fp16 file rounding)
    assert np.abs(fresh - base).mean() < 0.5
    assert np.abs(perturbed - base).mean() > 2.0
    # the base MODEL is unaffected by having been inflated in an earlier prompt
    again = fetch_frames(comfy, comfy.run(frames_prompt(4, None), timeout=600))
    assert np.abs(again - base).max() == 0


def test_not_a_safetensors_file_fails_with_the_input_named(comfy: ComfyClient, temporal_modules) -> None:
    with pytest.raises(PromptFailed) as failed:
        comfy.run(frames_prompt(1, "notes.safetensors"), timeout=300)
    message = str(failed.value)
    assert "temporal_module" in message and "not a safetensors file" in message


def with_lora_and_controlnet(prompt: dict, lora: bool, controlnet: bool) -> dict:
    """Insert LoraLoader before the KSampler (after the temporal loader, if any) and a ControlNet on the prompts."""
    if lora:
        prompt["9"] = {"class_type": "LoraLoader", "inputs": {
            "model": prompt["5"]["inputs"]["model"], "clip": ["1", 1], "lora_name": "lora.safetensors", "strength_model": 1.0, "strength_clip": 1.0}}
        prompt["5"]["inputs"]["model"] = ["9", 0]
        prompt["2"]["inputs"]["clip"] = ["9", 1]
    if controlnet:
        prompt["10"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control.safetensors"}}
        prompt["11"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 4, "color": 0xFFFFFF}}
        prompt["12"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["2", 0], "negative": ["3", 0], "control_net": ["10", 0], "image": ["11", 0],
            "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}}
        prompt["5"]["inputs"]["positive"] = ["12", 0]
        prompt["5"]["inputs"]["negative"] = ["12", 1]
    return prompt


def test_lora_and_controlnet_compose_with_the_inflated_model(comfy: ComfyClient, temporal_modules) -> None:
    plain = fetch_frames(comfy, comfy.run(frames_prompt(4, RANDOM), timeout=600))
    lora = fetch_frames(comfy, comfy.run(with_lora_and_controlnet(frames_prompt(4, RANDOM), True, False), timeout=600))
    both = fetch_frames(comfy, comfy.run(with_lora_and_controlnet(frames_prompt(4, RANDOM), True, True), timeout=600))
    assert np.abs(lora - plain).mean() > 1.0, "the LoRA did not reach the inflated model"
    assert np.abs(both - lora).mean() > 1.0, "the ControlNet did not reach the inflated model"


def test_fresh_module_with_lora_and_controlnet_equals_the_plain_model_with_them(comfy: ComfyClient,
                                                                                temporal_modules) -> None:
    """A fresh (identity-initialised) module must not change what a LoRA and a ControlNet do: the same frames
    as the plain SD1.5 model with the same LoRA and ControlNet, up to fp16 file rounding (the same tolerance as
    the identity test above), while the LoRA alone moves the frames by far more than that tolerance."""
    plain = fetch_frames(comfy, comfy.run(with_lora_and_controlnet(frames_prompt(4, None), True, True), timeout=600))
    fresh = fetch_frames(comfy, comfy.run(with_lora_and_controlnet(frames_prompt(4, FRESH), True, True), timeout=600))
    assert np.abs(fresh - plain).mean() < 0.5
    assert np.abs(fresh - plain).max() <= 8
    controlnet_only = fetch_frames(comfy, comfy.run(with_lora_and_controlnet(frames_prompt(4, FRESH), False, True), timeout=600))
    assert np.abs(fresh - controlnet_only).mean() > 5 * 0.5  # the LoRA matters here: the comparison above can fail


@pytest.mark.parametrize(("sampler", "scheduler"), [("dpmpp_2m", "karras"), ("uni_pc", "sgm_uniform")])
def test_other_samplers_and_schedulers_run(comfy: ComfyClient, temporal_modules, sampler: str, scheduler: str) -> None:
    prompt = frames_prompt(3, RANDOM)
    prompt["5"]["inputs"].update(sampler_name=sampler, scheduler=scheduler)
    frames = fetch_frames(comfy, comfy.run(prompt, timeout=600))
    assert frames.shape == (3, 64, 64, 3) and frames.std() > 1.0

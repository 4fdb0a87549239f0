"""Trainer -> export -> a real ComfyUI server: the exported temporal module and subject LoRA load over HTTP
(ZiziTemporalModelLoader, core LoraLoader) and their trained weights change the frames.

Base model: ComfyUI's core checkpoint loader only detects full-size SD1.5 (320 channels, context 768),
and training the full-size random model on this CPU takes minutes (12 GB of memory, a 7 GB checkpoint).
So the trainer runs on a *slim* SD1.5 that ComfyUI still detects as SD1.5: SD1.5's UNet blocks, 320
channels, context 768 and 8 heads, but 320 channels at every level (111 M parameters); full-size VAE
and CLIP-L text encoder (ComfyUI builds those from fixed configs). The same random weights are cached
as a diffusers folder (the trainer's input) and an LDM single file (Load Checkpoint's input). The
exported files carry SD1.5's key names (LoRA modules, motion modules) with this model's tensor shapes.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from devtools.comfy_client import ComfyClient
from devtools.random_sd15 import (
    BUILDER_VERSION,
    MODELS_CACHE,
    build_text_encoder,
    build_unet,
    build_vae,
    clip_tokenizer_files,
)
from train.__main__ import main as train_main
from train.synthetic import ensure_dataset
from zizi_models.sd15_configs import (
    SD15_SCHEDULER_CONFIG,
    SD15_TEXT_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
)
from zizi_models.sd15_keys import to_ldm
from zizi_models.temporal import ZiziTemporalModel, read_temporal_state, save_temporal_model

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("one_torch_thread")]

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "train" / "configs" / "tiny_cpu.yaml"
SLIM_UNET_CONFIG = {**SD15_UNET_CONFIG, "block_out_channels": [320, 320, 320, 320]}
SLIM_VERSION = 1

CHECKPOINT = "zizi_slim_sd15.safetensors"
TRAINED = "zizi_trained_export.safetensors"
FRESH = "zizi_trained_export_fresh.safetensors"
LORA = "zizi_trained_subject_lora.safetensors"
BAD_KEY_LORA = "zizi_trained_subject_lora_bad_key.safetensors"
FRAMES = 4  # the run's window.frames
# ComfyUI 0.3.75's warnings for LoRA tensors it cannot use: keys no model key maps to
# (comfy/lora.py load_lora, comfy/sd.py load_lora_for_models) and tensors of the wrong shape (calculate_weight)
LORA_LOG_PROBLEMS = ("lora key not loaded", "NOT LOADED", "SHAPE MISMATCH", "ERROR lora", "Calculate Weight Failed")


def slim_sd15(seed: int = 0, cache: Path = MODELS_CACHE) -> tuple[Path, Path]:
    """(diffusers folder, LDM single file) of the cached slim random SD1.5 (built once, ~20 s, 1.8 GB)."""
    target = cache / f"slim_sd15_seed{seed}_v{BUILDER_VERSION}.{SLIM_VERSION}"
    paths = target / "diffusers", target / CHECKPOINT
    if (target / "diffusers" / "model_index.json").is_file():
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
    unet, vae, text = build_unet(SLIM_UNET_CONFIG, seed), build_vae(SD15_VAE_CONFIG, seed), build_text_encoder(SD15_TEXT_CONFIG, seed)
    folder = staging / "diffusers"
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    text.save_pretrained(folder / "text_encoder")
    (folder / "tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        if (clip_tokenizer_files() / name).is_file():
            shutil.copy(clip_tokenizer_files() / name, folder / "tokenizer" / name)
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "DDPMScheduler", **SD15_SCHEDULER_CONFIG}))
    ldm = to_ldm(unet.state_dict(), vae.state_dict(), text.state_dict(), SLIM_UNET_CONFIG, SD15_VAE_CONFIG)
    save_file({k: v.to(torch.float16).contiguous() for k, v in ldm.items() if not k.endswith("position_ids")},
              str(staging / CHECKPOINT), metadata={"zizi.random_seed": str(seed), "zizi.kind": "random-slim-sd15"})
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))  # written last
    try:
        staging.rename(target)
    except OSError:  # another process published it first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def link_model(comfy_server, folder: str, name: str, source: Path) -> None:
    """Put a file into the running server's models/<folder> the way `server_models` does (a symlink)."""
    link = comfy_server.models_dir / folder / name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, comfy_server) -> Path:
    """Synthetic clips -> preprocess -> 2 optimizer steps of temporal layers + a subject LoRA on the slim SD1.5
    (learning rates high enough for 2 steps to move the zero-initialised layers visibly)."""
    diffusers, checkpoint = slim_sd15()
    link_model(comfy_server, "checkpoints", CHECKPOINT, checkpoint)
    work = tmp_path_factory.mktemp("train_export_server")
    data = ensure_dataset(work / "clips", diffusers, videos=2, frames=8)
    run = work / "run"
    settings = {
        "data.dataset": data, "model.pretrained": diffusers, "output_dir": run, "max_steps": 2, "checkpoint.every": 2,
        "data.batch_size": 1, "ema.enabled": "false", "optimizer.lr": 1e-2, "lora.enabled": "true", "lora.rank": 4,
        "lora.alpha": 4.0, "lora.lr": 1e-2, "logging.progress_bar": "false", "logging.tensorboard": "false",
    }
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    assert train_main(["fit", "-c", str(TINY_CONFIG), *sets]) == 0
    return run


def frames_prompt(temporal_module: str | None = None, lora: float | None = None, lora_name: str = LORA,
                  seed: int = 5) -> dict:
    """Load Checkpoint [-> ZiziTemporalModelLoader] [-> LoraLoader] -> KSampler (FRAMES frames) -> VAE Decode."""
    model, clip = ["1", 0], ["1", 1]
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}}}
    if temporal_module is not None:
        prompt["8"] = {"class_type": "ZiziTemporalModelLoader", "inputs": {"model": model, "temporal_module": temporal_module}}
        model = ["8", 0]
    if lora is not None:
        prompt["9"] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": lora_name, "strength_model": lora, "strength_clip": lora}}
        model, clip = ["9", 0], ["9", 1]
    prompt.update({
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a coloured square moving", "clip": clip}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": clip}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": FRAMES}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": model, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
            "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "zizi_test/train_export"}},
    })
    return prompt


def run_frames(comfy: ComfyClient, prompt: dict) -> np.ndarray:
    result = comfy.run(prompt, timeout=300)
    files = result.output_files("7")
    frames = np.stack([np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")).astype(float) for f in files])
    assert frames.shape == (FRAMES, 64, 64, 3)
    assert np.isfinite(frames).all() and frames.std() > 1.0, "blank or broken frames"
    return frames


@pytest.fixture(scope="module")
def base_frames(comfy_server, trained_run: Path) -> np.ndarray:
    """The frames of the slim checkpoint alone (no temporal module, no LoRA): what both tests compare with."""
    return run_frames(ComfyClient(comfy_server.url), frames_prompt())


def test_exported_temporal_module_loads_in_comfyui_and_its_trained_weights_act(
        comfy: ComfyClient, comfy_server, trained_run: Path, base_frames: np.ndarray, tmp_path: Path) -> None:
    exported = tmp_path / "zizi_temporal.safetensors"
    assert train_main(["export", str(trained_run), "-o", str(exported)]) == 0
    state = read_temporal_state(exported)
    assert state.metadata["steps"] == 2 and state.metadata["trained_window"] == FRAMES
    assert state.config.block_out_channels == (320, 320, 320, 320)
    # the same module untrained (zero-initialised outputs: the inflated model equals the base model)
    fresh = tmp_path / "fresh.safetensors"
    save_temporal_model(ZiziTemporalModel(state.config), fresh, metadata={"fresh": True}, dtype=torch.float16)
    link_model(comfy_server, "zizi", TRAINED, exported)
    link_model(comfy_server, "zizi", FRESH, fresh)
    choices = comfy.object_info()["ZiziTemporalModelLoader"]["input"]["required"]["temporal_module"][0]
    assert {TRAINED, FRESH} <= set(choices)

    untrained = run_frames(comfy, frames_prompt(FRESH))
    trained = run_frames(comfy, frames_prompt(TRAINED))
    assert np.abs(untrained - base_frames).mean() < 0.5, "the fresh module is not the identity"
    change = np.abs(trained - untrained).mean()
    assert change > 2.0, f"the trained temporal weights did not reach the model (mean |difference| {change:.3f} / 255)"


def test_exported_lora_loads_with_comfyui_lora_loader(comfy: ComfyClient, comfy_server, trained_run: Path,
                                                      base_frames: np.ndarray, tmp_path: Path) -> None:
    lora = tmp_path / "subject_lora.safetensors"
    assert train_main(["export", str(trained_run), "-o", str(tmp_path / "t.safetensors"), "--lora", str(lora)]) == 0
    tensors = load_file(str(lora))
    modules = {key.split(".", 1)[0] for key in tensors}
    assert len(modules) == 16 * 2 * 4  # SD1.5's 16 transformer blocks x (attn1, attn2) x (to_q, to_k, to_v, to_out.0)
    link_model(comfy_server, "loras", LORA, lora)

    log_start = len(comfy_server.log_text())
    with_lora = run_frames(comfy, frames_prompt(lora=1.0))
    log = comfy_server.log_text()[log_start:]
    problems = [line for line in log.splitlines() if any(p in line for p in LORA_LOG_PROBLEMS)]
    assert not problems, f"ComfyUI did not apply every LoRA tensor ({len(problems)} warnings):\n" + "\n".join(problems[:10])
    change = np.abs(with_lora - base_frames).mean()
    assert change > 2.0, f"the trained LoRA did not reach the model (mean |difference| {change:.3f} / 255)"

    # the log check is live: the same LoRA with one module misnamed is reported by ComfyUI
    bad = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_qq"
    good = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q."
    renamed = {key.replace(good, bad + "."): value for key, value in tensors.items()}
    assert len(renamed) == len(tensors) and any(key.startswith(bad) for key in renamed)
    save_file(renamed, str(tmp_path / "bad_key.safetensors"))
    link_model(comfy_server, "loras", BAD_KEY_LORA, tmp_path / "bad_key.safetensors")
    log_start = len(comfy_server.log_text())
    run_frames(comfy, frames_prompt(lora=1.0, lora_name=BAD_KEY_LORA))
    assert f"lora key not loaded: {bad}" in comfy_server.log_text()[log_start:]

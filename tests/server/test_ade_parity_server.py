"""Our loader against ComfyUI-AnimateDiff-Evolved 1.5.7, installed beside our pack in one real server.

The same random full-size SD1.5, the same random motion module as an AnimateDiff ``.ckpt`` (v2 layout
with a mid block, v3 without), the same KSampler settings on a 16-frame batch: our frames must equal
ADE's within 2 grey levels when both pick their default schedule (ours ``auto``, ADE ``autoselect``: the
linear schedule AnimateDiff was trained on) and when both keep the checkpoint's (``use existing``).
A cross pairing (our default against ADE keeping SD1.5's schedule) must differ, or the comparison would
not be able to fail. v1 modules are left out: ADE applies its GroupNorm hack to them, we do not.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devtools.ade_anchor import ADE_LOADER, OUR_ANIMATEDIFF_PREFIX, server_with_ade
from devtools.comfy_client import ComfyClient
from devtools.comfy_server import ComfyServer
from devtools.random_addons import sd15_motion_module_ckpt

pytestmark = pytest.mark.server
log = logging.getLogger(__name__)

SD15_CHECKPOINT_NAME = "sd15_random.safetensors"
FRAMES, SIZE, STEPS, CFG, SEED = 16, 64, 2, 7.0, 5
TOLERANCE = 2.0  # grey levels, the largest per-pixel difference allowed


@pytest.fixture(scope="module")
def ade_server(comfyui_dir: Path, sd15_checkpoint_path: Path, tmp_path_factory: pytest.TempPathFactory):
    modules = {f"mm_random_{version}.ckpt": sd15_motion_module_ckpt(version, seed=0) for version in ("v2", "v3")}
    server = server_with_ade(comfyui_dir, tmp_path_factory.mktemp("comfyui-with-ade"),
                             {SD15_CHECKPOINT_NAME: sd15_checkpoint_path}, modules)
    server.start()
    yield server
    server.stop()


def parity_prompt(module: str, ours_schedule: str, ade_schedule: str) -> dict:
    """One prompt, two branches from one checkpoint: ours (node 10..) and ADE's (node 20..)."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SD15_CHECKPOINT_NAME}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dancer on a stage", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": FRAMES}},
        "10": {"class_type": "ZiziTemporalModelLoader", "inputs": {
            "model": ["1", 0], "temporal_module": OUR_ANIMATEDIFF_PREFIX + module, "beta_schedule": ours_schedule}},
        "20": {"class_type": ADE_LOADER, "inputs": {
            "model": ["1", 0], "model_name": module, "beta_schedule": ade_schedule}},
    }
    for first, name in ((10, "ours"), (20, "ade")):
        prompt[str(first + 1)] = {"class_type": "KSampler", "inputs": {
            "model": [str(first), 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "seed": SEED, "steps": STEPS, "cfg": CFG, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}
        prompt[str(first + 2)] = {"class_type": "VAEDecode", "inputs": {"samples": [str(first + 1), 0], "vae": ["1", 2]}}
        prompt[str(first + 3)] = {"class_type": "SaveImage", "inputs": {
            "images": [str(first + 2), 0], "filename_prefix": f"zizi_parity/{name}"}}
    return prompt


def run_both(client: ComfyClient, module: str, ours_schedule: str, ade_schedule: str) -> tuple[np.ndarray, np.ndarray]:
    result = client.run(parity_prompt(module, ours_schedule, ade_schedule), timeout=1800)

    def frames(saver: str) -> np.ndarray:
        files = result.output_files(saver)
        return np.stack([np.asarray(Image.open(io.BytesIO(client.view(f))).convert("RGB")).astype(float) for f in files])

    ours, ade = frames("13"), frames("23")
    assert ours.shape == ade.shape == (FRAMES, SIZE, SIZE, 3)
    assert ours.std() > 1.0  # real pictures, not a constant
    return ours, ade


def difference(a: np.ndarray, b: np.ndarray) -> str:
    return f"max {np.abs(a - b).max():.0f}, mean {np.abs(a - b).mean():.3f} grey levels"


def test_v2_frames_equal_animatediff_evolved_with_either_schedule(ade_server: ComfyServer) -> None:
    client = ComfyClient(ade_server.url)
    assert ADE_LOADER in client.object_info(), f"ADE did not load:\n{ade_server.log_tail()}"
    ours, ade = run_both(client, "mm_random_v2.ckpt", "auto", "autoselect")
    log.info("v2 defaults: %s", difference(ours, ade))
    assert np.abs(ours - ade).max() <= TOLERANCE, f"defaults differ: {difference(ours, ade)}"

    ours_kept, ade_kept = run_both(client, "mm_random_v2.ckpt", "use existing", "use existing")
    log.info("v2 use existing: %s", difference(ours_kept, ade_kept))
    assert np.abs(ours_kept - ade_kept).max() <= TOLERANCE, f"use existing differs: {difference(ours_kept, ade_kept)}"

    # the schedule really matters for these frames: keeping SD1.5's schedule is far from the default
    log.info("v2 ours auto vs ADE use existing: %s", difference(ours, ade_kept))
    assert np.abs(ours - ade_kept).mean() > 2.0


def test_v3_frames_equal_animatediff_evolved(ade_server: ComfyServer) -> None:
    # v3: no mid block in the file
    ours, ade = run_both(ComfyClient(ade_server.url), "mm_random_v3.ckpt", "auto", "autoselect")
    log.info("v3 defaults: %s", difference(ours, ade))
    assert np.abs(ours - ade).max() <= TOLERANCE, f"defaults differ: {difference(ours, ade)}"

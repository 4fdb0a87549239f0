"""The pack inside a real ComfyUI server, driven over HTTP like a headless studio script."""

from __future__ import annotations

import io
import re
import threading

import numpy as np
import pytest
from PIL import Image

from devtools.comfy_client import ComfyClient, PromptRejected
from devtools.workflows import load_api_workflow, set_inputs
from zizi_models.video_io import read_video

pytestmark = pytest.mark.server

SD15_WORKFLOW = "sd15_frames_to_video_api.json"


def small_sd15_prompt(frames: int, steps: int, seed: int = 7) -> dict:
    prompt = load_api_workflow(SD15_WORKFLOW)
    set_inputs(prompt, "CheckpointLoaderSimple", ckpt_name="sd15_random.safetensors")
    set_inputs(prompt, "EmptyLatentImage", width=64, height=64, batch_size=frames)
    set_inputs(prompt, "KSampler", steps=steps, seed=seed)
    return prompt


def test_pack_loads_without_import_errors(comfy: ComfyClient, comfy_server) -> None:
    info = comfy.object_info()
    assert {"ZiziLoadVideo", "ZiziSaveVideo"} <= set(info)
    assert info["ZiziSaveVideo"]["category"].startswith("Zizi Video")
    log_text = comfy_server.log_text()
    # ComfyUI lists every custom node folder with its import time, flagged "(IMPORT FAILED)" on error
    assert re.search(r"\d seconds: \S*custom_nodes/zizi_video\b", log_text), "pack missing from the import-times list"
    assert not re.search(r"IMPORT FAILED\)?:? \S*zizi_video", log_text)
    assert not re.search(r"Cannot import \S*zizi_video", log_text)


def test_sd15_frames_workflow_returns_images_and_video(comfy: ComfyClient, comfy_server) -> None:
    frames = 3
    result = comfy.run(small_sd15_prompt(frames=frames, steps=2), timeout=600)
    assert result.status == "success"
    # ComfyUI detected the random checkpoint as SD1.5 and every tensor found its place
    log_text = comfy_server.log_text()
    assert "model_type EPS" in log_text
    assert "unet missing" not in log_text and "clip missing" not in log_text
    saved = result.output_files("8")
    assert len(saved) == frames
    pngs = [np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")) for f in saved]
    assert all(p.shape == (64, 64, 3) for p in pngs)
    # different noise per batch item -> different frames; random weights still give non-flat images
    assert np.abs(pngs[0].astype(int) - pngs[1].astype(int)).mean() > 1.0
    assert all(p.std() > 1.0 for p in pngs)
    # the KSampler reported per-step progress over the websocket
    steps_seen = [e["value"] for e in result.progress_events("5")]
    assert steps_seen and steps_seen[-1] == 2

    video_info = result.output_files("7")
    assert len(video_info) == 1 and video_info[0]["filename"].endswith(".mp4")
    video_bytes = comfy.view(video_info[0])
    decoded, fps = _decode_bytes(video_bytes)
    assert decoded.shape == (frames, 64, 64, 3)
    assert fps == pytest.approx(8.0)
    # the video holds the same frames as the PNGs, up to H.264 loss
    for png, frame in zip(pngs, decoded, strict=True):
        assert np.abs(png.astype(float) - frame.astype(float)).mean() < 12.0


def _decode_bytes(data: bytes) -> tuple[np.ndarray, float]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(data)
        f.flush()
        return read_video(f.name)


def test_invalid_prompt_is_rejected_with_the_input_named(comfy: ComfyClient) -> None:
    prompt = small_sd15_prompt(frames=1, steps=1)
    set_inputs(prompt, "CheckpointLoaderSimple", ckpt_name="does_not_exist.safetensors")
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue(prompt)
    assert "ckpt_name" in str(rejected.value)


def test_interrupt_stops_a_running_prompt_and_the_server_keeps_serving(comfy: ComfyClient) -> None:
    long_prompt = small_sd15_prompt(frames=1, steps=500, seed=11)
    interrupted = threading.Event()

    def interrupt_on_first_step(event: dict) -> None:
        if event["type"] == "progress" and event["data"]["value"] >= 1 and not interrupted.is_set():
            interrupted.set()
            comfy.interrupt()

    result = comfy.run(long_prompt, timeout=600, on_event=interrupt_on_first_step, raise_on_error=False)
    assert interrupted.is_set()
    assert result.status == "interrupted"
    last_step = max(e["value"] for e in result.progress_events("5"))
    assert last_step < 100, f"the sampler ran {last_step} of 500 steps after /interrupt"

    after = comfy.run(small_sd15_prompt(frames=1, steps=1, seed=12), timeout=300)
    assert after.status == "success"
    assert len(after.output_files("8")) == 1

"""Live previews and progress text of the loop controller on a real ComfyUI server (started with
``--preview-method latent2rgb``), followed on the ``/ws`` websocket the way the web UI follows them.

ComfyUI's binary websocket messages: a 4-byte big-endian event type, then
    1 PREVIEW_IMAGE   4-byte image format (1 JPEG, 2 PNG) + the image bytes (sent to clients that do not
                      announce ``supports_preview_metadata``, like this one)
    3 TEXT            4-byte node id length + node id + UTF-8 text (``PromptServer.send_progress_text``)
"""

from __future__ import annotations

import io
import json
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from devtools.comfy_client import ComfyClient
from devtools.demo import PUPPET_BASE, PUPPET_TEMPORAL
from zizi_models.planner import plan_video

pytestmark = pytest.mark.server

FRAMES, WINDOW, STRIDE, STEPS = 14, 8, 4, 3
LATENT_SIZE = 16  # 64x64 frames through the puppet VAE (downscale 4)
PER_PROMPT_PREVIEW_METHOD_SINCE = (0, 8, 0)  # extra_data.preview_method: in 0.8.0, not in 0.3.75


@dataclass
class Followed:
    prompt_id: str
    events: list[dict] = field(default_factory=list)
    previews: list[tuple[int, bytes]] = field(default_factory=list)  # (image format, image bytes)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (node id, text)
    outputs: dict = field(default_factory=dict)


def loop_prompt(seed: int = 0) -> dict:
    return {
        "1": {"class_type": "ZiziCheckpointLoader", "inputs": {"ckpt_name": PUPPET_BASE}},
        "2": {"class_type": "ZiziTemporalModelLoader", "inputs": {"model": ["1", 0], "temporal_module": PUPPET_TEMPORAL}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a puppet", "clip": ["1", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "5": {"class_type": "ZiziLoopController", "inputs": {
            "model": ["2", 0], "positive": ["3", 0], "negative": ["4", 0], "vae": ["1", 2],
            "width": 64, "height": 64, "total_frames": FRAMES, "window": WINDOW, "stride": STRIDE, "snr": 0.66,
            "seed": seed, "steps": STEPS, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "zizi_test/previews"}},
    }


def follow(comfy: ComfyClient, prompt: dict, extra_data: dict | None = None, timeout: float = 600.0) -> Followed:
    """Queue ``prompt`` and collect its JSON events and every binary message until it ends."""
    import websocket

    ws = comfy.connect()
    try:
        body = {"prompt": prompt, "client_id": comfy.client_id, **({"extra_data": extra_data} if extra_data else {})}
        run = Followed(comfy.post_json("/prompt", body)["prompt_id"])
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"prompt {run.prompt_id} did not end within {timeout:.0f} s"
            ws.settimeout(30.0)
            try:
                message = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if isinstance(message, bytes):
                (event,) = struct.unpack(">I", message[:4])
                if event == 1:
                    run.previews.append((struct.unpack(">I", message[4:8])[0], message[8:]))
                elif event == 3:
                    (length,) = struct.unpack(">I", message[4:8])
                    run.texts.append((message[8:8 + length].decode(), message[8 + length:].decode()))
                continue
            event = json.loads(message)
            data = event.get("data") or {}
            if data.get("prompt_id") not in (None, run.prompt_id):
                continue
            run.events.append(event)
            if event["type"] == "execution_error":
                raise AssertionError(f"prompt failed: {data.get('exception_message')}")
            if event["type"] == "execution_success" or (event["type"] == "executing" and data.get("node") is None
                                                        and data.get("prompt_id") == run.prompt_id):
                break
    finally:
        ws.close()
    run.outputs = comfy.wait_history(run.prompt_id).get("outputs", {})
    return run


def frames_of(comfy: ComfyClient, run: Followed) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(comfy.view(info))).convert("RGB"))
                     for info in run.outputs["6"]["images"]])


def comfyui_version(comfy: ComfyClient) -> tuple[int, ...]:
    version = comfy.get_json("/system_stats")["system"]["comfyui_version"]
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def test_loop_sends_a_preview_per_step_and_says_which_window_it_makes(comfy: ComfyClient) -> None:
    plan = plan_video(FRAMES, window=WINDOW, stride=STRIDE, max_positions=32, hint=False)
    shown = run = follow(comfy, loop_prompt())

    # one latent preview per sampling step of every window: a JPEG strip of the window's new frames
    assert len(run.previews) == len(plan) * STEPS, (len(run.previews), len(plan), STEPS)
    assert {kind for kind, _ in run.previews} == {1}
    strips = [Image.open(io.BytesIO(data)) for _, data in run.previews]
    new_frames = [len(step.generate) for step in plan for _ in range(STEPS)]
    for strip, count in zip(strips, new_frames, strict=True):
        assert strip.format == "JPEG"
        assert strip.width / strip.height == pytest.approx(min(count, 8), rel=0.05)  # frames side by side
    first = np.asarray(strips[0].convert("RGB"), dtype=np.float32)
    assert first.std() > 1.0  # a picture, not a flat colour

    # progress text: one line per window naming the stage and its frames, on the controller's node
    expected = [f"window {i + 1}/{len(plan)}: {step.kind} frames " for i, step in enumerate(plan)]
    assert [node for node, _ in run.texts] == ["5"] * len(plan)
    assert all(text.startswith(head) for (_, text), head in zip(run.texts, expected, strict=True)), run.texts
    assert run.texts[0][1] == f"window 1/{len(plan)}: starter frames 0-7"

    # the progress bar counts generated frames, advanced in fractions of a window per step, to the total
    values = [e["data"]["value"] for e in run.events if e["type"] == "progress" and e["data"]["node"] == "5"]
    assert values == sorted(values) and values[-1] == FRAMES
    assert len(values) >= len(plan) * STEPS
    assert values[0] == pytest.approx(len(plan[0].generate) / STEPS)

    # previews only read: the same prompt without previews gives the same frames
    follow(comfy, loop_prompt(seed=1))  # another prompt in between, so the next one runs again (no cache)
    plain = follow(comfy, loop_prompt(), extra_data={"preview_method": "none"})
    if comfyui_version(comfy) >= PER_PROMPT_PREVIEW_METHOD_SINCE:
        assert plain.previews == [], "extra_data.preview_method = none still sent previews"
    assert len(plain.texts) == len(plan)  # the controller ran again
    assert np.array_equal(frames_of(comfy, plain), frames_of(comfy, shown))


def test_auto_window_and_stride_are_the_modules_trained_ones(comfy: ComfyClient) -> None:
    """window = stride = 0 (auto): the puppet module records trained_window 8 and extrapolation strides up to 4,
    so the loop runs the plan of window 8, stride 4 (AnimateDiff's 16 would make one 14-frame window)."""
    prompt = loop_prompt(seed=2)
    prompt["5"]["inputs"].update(window=0, stride=0, steps=1)
    run = follow(comfy, prompt, extra_data={"preview_method": "none"})
    plan = plan_video(FRAMES, window=8, stride=4, max_positions=32, hint=False)
    assert [text.split(":")[1].split()[0] for _, text in run.texts] == [step.kind for step in plan]
    assert len(run.texts) == len(plan) == 4, run.texts
    assert run.texts[0][1] == "window 1/4: starter frames 0-7"

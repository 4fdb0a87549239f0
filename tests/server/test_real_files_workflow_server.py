"""The shipped SD1.5 pose workflow runs with the files users have, under their released names and formats.

``workflows/pose_to_long_video_api.json`` names ``v1-5-pruned-emaonly.safetensors`` (checkpoints),
``v3_sd15_mm.ckpt`` (animatediff_models, AnimateDiff's v3 SD1.5 motion module as released: a pickled
``.ckpt`` with no mid block) and ``control_v11p_sd15_openpose.pth`` (controlnet, the OpenPose ControlNet
as released). Random stand-ins with those exact names and layouts go into a real server's folders and the
workflow is queued as shipped; only the inputs a user uploads and the size/steps (to fit a CPU) change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from devtools.comfy_client import ComfyClient
from devtools.random_addons import sd15_controlnet
from devtools.random_sd15 import sd15_temporal_module
from devtools.workflows import load_api_workflow, set_inputs
from zizi_models.video_io import read_video, write_video

pytestmark = pytest.mark.server

WORKFLOW = "pose_to_long_video_api.json"
SIZE, FRAMES = 64, 20


def released_names() -> dict[str, str]:
    prompt = load_api_workflow(WORKFLOW)
    by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
    return {"checkpoints": by_class["CheckpointLoaderSimple"]["ckpt_name"],
            "animatediff_models": by_class["ZiziTemporalModelLoader"]["temporal_module"].split("/", 1)[1],
            "controlnet": by_class["ControlNetLoader"]["control_net_name"]}


def v3_motion_module_ckpt(target: Path) -> Path:
    """A random motion module in AnimateDiff v3's SD1.5 layout (down/up blocks, no mid block, 32 positions),
    pickled with torch.save like the released file."""
    state = load_file(str(sd15_temporal_module(seed=0, fresh=False)))
    state = {k: v.half() for k, v in state.items() if not k.startswith(("zizi.", "mid_block."))}
    assert any(k.startswith("up_blocks.3.motion_modules.2.") for k in state)
    torch.save(state, target)
    return target


def controlnet_pth(target: Path) -> Path:
    torch.save(load_file(str(sd15_controlnet(seed=0))), target)
    return target


@pytest.fixture(scope="module")
def released_files(comfy_server, sd15_checkpoint_path: Path, tmp_path_factory) -> dict[str, str]:
    names = released_names()
    assert names == {"checkpoints": "v1-5-pruned-emaonly.safetensors", "animatediff_models": "v3_sd15_mm.ckpt",
                     "controlnet": "control_v11p_sd15_openpose.pth"}
    scratch = tmp_path_factory.mktemp("released-files")
    sources = {"checkpoints": lambda: sd15_checkpoint_path,
               "animatediff_models": lambda: v3_motion_module_ckpt(scratch / names["animatediff_models"]),
               "controlnet": lambda: controlnet_pth(scratch / names["controlnet"])}
    for folder, name in names.items():
        link = comfy_server.models_dir / folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(sources[folder]())
    frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    for i in range(FRAMES):  # a bright figure walking across a dark stage
        frames[i, 16:52, 4 + 2 * i:16 + 2 * i] = (230, 180, 120)
    write_video(scratch / "dance.mp4", frames, fps=12)
    reference = np.full((SIZE, SIZE, 3), 40, np.uint8)
    reference[16:52, 26:38] = (220, 60, 60)
    Image.fromarray(reference).save(scratch / "reference.png")
    client = ComfyClient(comfy_server.url)
    return {"video": client.upload(scratch / "dance.mp4"), "image": client.upload(scratch / "reference.png")}


def test_shipped_sd15_workflow_runs_with_released_file_names(comfy: ComfyClient, released_files) -> None:
    prompt = load_api_workflow(WORKFLOW)
    set_inputs(prompt, "ZiziLoadVideo", video=released_files["video"], max_frames=FRAMES, width=SIZE, height=SIZE)
    set_inputs(prompt, "ZiziPoseRender", width=SIZE, height=SIZE)
    set_inputs(prompt, "LoadImage", image=released_files["image"])
    set_inputs(prompt, "ZiziLoopController", width=SIZE, height=SIZE, steps=1, cfg=1.0)
    result = comfy.run(prompt, timeout=1500)
    controller = next(i for i, n in prompt.items() if n["class_type"] == "ZiziLoopController")
    saver = next(i for i, n in prompt.items() if n["class_type"] == "ZiziSaveVideo")
    progress = [e["value"] for e in result.progress_events(controller)]
    assert progress and progress[-1] == FRAMES - 1  # every frame but the hint generated, reported as it went
    files = result.output_files(saver)
    assert len(files) == 1 and files[0]["filename"].endswith(".mp4")
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(comfy.view(files[0]))
        f.flush()
        video = read_video(f.name)[0]
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and video[1:].std() > 1.0
    # frame 0 is the reference image (VAE round trip of random weights: loosely), the others are generated
    assert np.abs(video[0, 16:52, 26:38].astype(float) - (220, 60, 60)).mean() < 60

"""ZiziLoadVideo / ZiziSaveVideo through a real ComfyUI server: upload, decode, resample, resize, save."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from devtools.comfy_client import ComfyClient, PromptRejected
from zizi_models.video_io import write_video

pytestmark = pytest.mark.server


def numbered_frames(count: int, height: int, width: int) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, :, : width // 2] = (200, 40, 40)
        frames[i, :, width // 2 :] = (40, 40, 200)
        frames[i, ..., 1] = 10 + 9 * i  # green encodes the frame index
    return frames


def load_save_prompt(video: str, **load_inputs: object) -> dict:
    load = {"video": video, "fps": 0.0, "start_seconds": 0.0, "max_frames": 0, "width": 0, "height": 0}
    load.update(load_inputs)
    return {
        "1": {"class_type": "ZiziLoadVideo", "inputs": load},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "zizi_test/loaded"}},
        "3": {"class_type": "ZiziSaveVideo",
              "inputs": {"images": ["1", 0], "fps": 12.0, "filename_prefix": "zizi_test/resaved", "format": "webm"}},
    }


@pytest.fixture(scope="module")
def uploaded_video(comfy_server, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("videos") / "numbered.mp4"
    write_video(path, numbered_frames(24, 96, 128), fps=24)
    return ComfyClient(comfy_server.url).upload(path)


def test_load_video_resamples_resizes_and_keeps_frame_order(comfy: ComfyClient, uploaded_video: str) -> None:
    assert uploaded_video in comfy.object_info()["ZiziLoadVideo"]["input"]["required"]["video"][0]
    result = comfy.run(load_save_prompt(uploaded_video, fps=12.0, max_frames=10, width=64, height=64), timeout=300)
    files = result.output_files("2")
    assert len(files) == 10  # 24 fps -> 12 fps keeps every other frame, capped at 10
    images = [np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")).astype(int) for f in files]
    assert all(img.shape == (64, 64, 3) for img in images)
    green = np.array([img[..., 1].mean() for img in images])
    np.testing.assert_allclose(green, 10 + 9 * np.arange(0, 20, 2), atol=6)
    # cover-resize + centre crop of a 128x96 frame: the red/blue split stays in the middle
    assert images[0][32, 8, 0] > 150 and images[0][32, 56, 2] > 150
    video = result.output_files("3")
    assert len(video) == 1 and video[0]["filename"].endswith(".webm")
    assert result.progress_events("3")[-1]["value"] == 10


def test_missing_video_and_half_set_size_are_rejected_before_running(comfy: ComfyClient, uploaded_video: str) -> None:
    with pytest.raises(PromptRejected) as missing:
        comfy.queue(load_save_prompt("no_such_clip.mp4"))
    assert "video" in str(missing.value)
    with pytest.raises(PromptRejected) as half_size:
        comfy.queue(load_save_prompt(uploaded_video, width=64, height=0))
    assert "width and height" in str(half_size.value)


def test_path_traversal_is_refused(comfy: ComfyClient) -> None:
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue(load_save_prompt("../../../etc/passwd"))
    assert "video" in str(rejected.value)

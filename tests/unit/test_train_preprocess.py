"""preprocess: videos / frame folders -> latent clips; skips, errors, resume, poses, lazy reading."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train.clip_index import ClipIndex, ShardReader
from train.preprocess import PreprocessOptions, preprocess
from train.synthetic import moving_squares, write_moving_squares
from zizi_models.pose.backends.base import PoseBackend
from zizi_models.pose.schema import empty_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")



class _FakePose(PoseBackend):
    name = "fake"

    def __init__(self) -> None:
        self.frames = 0

    def detect_frame(self, frame: np.ndarray):
        self.frames += 1
        return empty_frame(frame.shape[1], frame.shape[0])


def _options(tmp_path: Path, src: Path, tiny: Path, **kw) -> PreprocessOptions:
    defaults = dict(fps=8.0, size=32, clip_frames=6, min_frames=4, encode_batch=16)
    defaults.update(kw)
    return PreprocessOptions(str(src), str(tmp_path / "data"), str(tiny), **defaults)


def test_empty_input_folder_is_a_clear_error(tmp_path: Path, tiny_sd15_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no input found in .*empty.*video files"):
        preprocess(_options(tmp_path, tmp_path / "empty", tiny_sd15_path))


def test_preprocess_skips_bad_sources_and_resumes(tmp_path: Path, tiny_sd15_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_moving_squares(src / "good.mp4", 10, size=48, fps=8.0, seed=1)  # 10 frames -> clips of 6 + 4
    (src / "good.txt").write_text("two squares")
    (src / "broken.mp4").write_bytes(b"\x00\x01 definitely not a video" * 10)
    write_moving_squares(src / "short.webm", 3, size=32, fps=8.0, seed=2)
    frames_dir = src / "frames"
    frames_dir.mkdir()
    for i, frame in enumerate(moving_squares(6, size=40, seed=3)):  # 6 frames at 16 fps -> 3 at 8 fps
        Image.fromarray(frame).save(frames_dir / f"{i:04d}.png")

    pose = _FakePose()
    with caplog.at_level(logging.WARNING, logger="train.preprocess"):
        report = preprocess(_options(tmp_path, src, tiny_sd15_path, frames_fps=16.0, pose_backend=pose))
    assert sorted(report.processed) == ["good.mp4"]
    assert set(report.skipped) == {"broken.mp4", "short.webm", "frames"}
    assert report.skipped["broken.mp4"].startswith("unreadable")
    assert "too short: 3 frames" in report.skipped["short.webm"]
    assert "too short: 3 frames" in report.skipped["frames"]
    assert "skipped broken.mp4: unreadable" in caplog.text and "skipped short.webm: too short" in caplog.text

    index = ClipIndex.load(tmp_path / "data")
    assert [c.frames for c in index.clips] == [6, 4]
    assert index.latent_shape == [4, 4, 4] and index.clips[0].caption == "two squares"
    assert index.sources["broken.mp4"]["status"] == "skipped"
    assert pose.frames == 10
    poses = json.loads((tmp_path / "data" / index.clips[0].pose).read_text())
    assert len(poses) == 6 and poses[0]["canvas_width"] == 32

    # lazily read frames equal the stored clip
    reader = ShardReader(tmp_path / "data")
    clip = index.clips[0]
    whole = reader.read_frames(clip, list(range(clip.frames)))
    assert whole.shape == (6, 4, 4, 4) and whole.dtype == torch.float32
    assert torch.equal(reader.read_frames(clip, [0, 2, 5]), whole[[0, 2, 5]])

    # resume: nothing is redone; a new source is added
    write_moving_squares(tmp_path / "more.mp4", 6, size=32, fps=8.0, seed=4).rename(src / "more.mov")
    again = preprocess(_options(tmp_path, src, tiny_sd15_path, frames_fps=16.0, pose_backend=pose))
    assert sorted(again.already_done) == ["broken.mp4", "frames", "good.mp4", "short.webm"]
    assert again.processed == ["more.mov"]
    assert len(ClipIndex.load(tmp_path / "data").clips) == 3

    # other settings into the same folder: refused
    with pytest.raises(ValueError, match="other settings"):
        preprocess(_options(tmp_path, src, tiny_sd15_path, size=64))


def test_trimming_and_fps_resampling(tmp_path: Path, tiny_sd15_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_moving_squares(src / "v.mp4", 32, size=32, fps=16.0, seed=5)  # 2 s at 16 fps
    report = preprocess(_options(tmp_path, src, tiny_sd15_path, fps=8.0, trim_head=0.5, trim_tail=0.5,
                                 clip_frames=32, min_frames=2))
    assert report.clips == 1
    (clip,) = ClipIndex.load(tmp_path / "data").clips
    assert 7 <= clip.frames <= 9  # ~1 s left at 8 fps
    assert clip.start_s == 0.5

from __future__ import annotations

import numpy as np
import pytest

from zizi_models.video_io import VideoWriter, probe_video, read_video, to_uint8_frames, write_video


def gradient_frames(count: int, height: int, width: int) -> np.ndarray:
    """Frames whose brightness encodes their index, so a decoded frame tells which one it was."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (xs * 255 // max(width - 1, 1))
        frames[i, ..., 1] = (ys * 255 // max(height - 1, 1))
        frames[i, ..., 2] = (10 + i * 20) % 256  # wraps explicitly: numpy 2 refuses out-of-range uint8 writes
    return frames


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_round_trip_keeps_count_size_fps_and_content(tmp_path, fmt) -> None:
    frames = gradient_frames(12, 48, 64)
    path = write_video(tmp_path / f"clip.{fmt}", frames, fps=12)
    info = probe_video(path)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(12)
    decoded, fps = read_video(path)
    assert decoded.shape == frames.shape
    assert fps == pytest.approx(12)
    assert np.abs(decoded.astype(float) - frames.astype(float)).mean() < 4.0
    blue = decoded[..., 2].mean(axis=(1, 2))
    assert np.all(np.diff(blue) > 10), "frames came back out of order"


def test_fps_resampling_picks_every_other_frame(tmp_path) -> None:
    frames = gradient_frames(24, 32, 32)
    path = write_video(tmp_path / "clip.mp4", frames, fps=24)
    decoded, fps = read_video(path, target_fps=12)
    assert fps == 12
    assert len(decoded) == 12
    expected_blue = frames[::2, 0, 0, 2].astype(float)
    assert np.abs(decoded[:, 16, 16, 2] - expected_blue).max() < 6


def test_upsampling_never_repeats_frames_and_trims(tmp_path) -> None:
    path = write_video(tmp_path / "clip.mp4", gradient_frames(10, 32, 32), fps=10)
    decoded, _ = read_video(path, target_fps=30)
    assert len(decoded) == 10  # a real frame per source frame, no duplicates invented
    trimmed, _ = read_video(path, start_s=0.3, end_s=0.61)
    assert len(trimmed) == 4  # frames at 0.3, 0.4, 0.5, 0.6 s
    assert read_video(path, max_frames=3)[0].shape[0] == 3


def test_streaming_writer_pads_odd_sizes_and_accepts_float_frames(tmp_path) -> None:
    float_frames = gradient_frames(5, 33, 47).astype(np.float32) / 255.0
    with VideoWriter(tmp_path / "odd.mp4", fps=5) as writer:
        writer.write(float_frames[:2])
        writer.write(float_frames[2:])
    assert writer.padded and writer.frames_written == 5
    decoded, _ = read_video(tmp_path / "odd.mp4")
    assert decoded.shape == (5, 34, 48, 3)
    with pytest.raises(ValueError, match="frame size changed"):
        with VideoWriter(tmp_path / "bad.mp4", fps=5) as writer:
            writer.write(gradient_frames(1, 32, 32))
            writer.write(gradient_frames(1, 16, 16))


def test_bad_inputs_have_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="unsupported video format"):
        VideoWriter(tmp_path / "x.avi", fps=5)
    with pytest.raises(ValueError, match=r"\[F, H, W, 3\]"):
        to_uint8_frames(np.zeros((2, 8, 8)))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    with pytest.raises(ValueError, match="not a readable video"):
        read_video(not_video)
    assert to_uint8_frames(np.full((1, 2, 2, 3), 2.0)).max() == 255

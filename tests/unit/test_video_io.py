from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zizi_models.video_io import (
    VideoWriter,
    iter_video_frames,
    probe_video,
    read_video,
    to_uint8_frames,
    write_video,
)


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
    # neighbouring source frames differ by 20 in blue: within 10 of the expected value is that frame and no other
    # (H.264 + yuv420p alone put the pixel 3-6 grey levels off)
    assert np.abs(decoded[:, 16, 16, 2] - expected_blue).max() < 10


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


def test_batches_line_up_in_time_and_the_closed_file_knows_its_duration(tmp_path) -> None:
    frames = gradient_frames(30, 32, 48)
    with VideoWriter(tmp_path / "batches.mp4", fps=12) as writer:
        for start in (0, 7, 8, 20, 29):  # uneven batches, one of a single frame
            writer.write(frames[start : {0: 7, 7: 8, 8: 20, 20: 29, 29: 30}[start]])
    times = [t for t, _ in iter_video_frames(tmp_path / "batches.mp4")]
    assert np.allclose(np.array(times) * 12, np.arange(30), atol=1e-3)
    assert probe_video(tmp_path / "batches.mp4").duration_s == pytest.approx(30 / 12)
    decoded, _ = read_video(tmp_path / "batches.mp4")
    assert np.abs(decoded[:, 16, 24, 2].astype(float) - frames[:, 16, 24, 2]).max() < 8


KILLED_WRITER = """
import sys
import numpy as np
sys.path[:0] = [{repo!r}, {here!r}]
from test_video_io import gradient_frames
from zizi_models.video_io import VideoWriter

frames = gradient_frames(400, 32, 32)
writer = VideoWriter({path!r}, fps=12)
for start in range(0, 400, {chunk}):
    writer.write(frames[start : start + {chunk}])
    print(start + {chunk}, flush=True)  # this chunk's write() has returned
"""


def test_a_writer_killed_mid_stream_leaves_every_finished_chunk_decodable(tmp_path) -> None:
    """SIGKILL (no close(), no atexit): the mp4 still decodes, up to at least the last finished chunk."""
    chunk, path = 8, tmp_path / "killed.mp4"
    here = Path(__file__).resolve().parent
    code = KILLED_WRITER.format(repo=str(here.parents[1]), here=str(here), path=str(path), chunk=chunk)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        while int(child.stdout.readline() or 400) < 3 * chunk:
            pass  # the child keeps writing: the kill lands while a later chunk is being written
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finished = [int(line) for line in child.stdout.read().split()]
    written = max(finished, default=3 * chunk)
    assert child.returncode == -signal.SIGKILL and written < 400, "the child was not killed mid-stream"
    decoded, fps = read_video(path)
    assert fps == pytest.approx(12)
    assert written <= len(decoded) <= written + chunk
    expected = gradient_frames(len(decoded), 32, 32)
    blue = decoded[..., 2].astype(float).mean(axis=(1, 2))  # the frame's index, in steps of 20 levels
    assert np.abs(blue - expected[:, 0, 0, 2]).max() < 6, "frames lost, repeated or out of order"
    assert np.abs(decoded.astype(float) - expected).mean() < 4.0

    # a file cut inside a fragment (the kill landed during a write): the complete fragments before it decode
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - 40])
    assert len(decoded) - chunk <= len(read_video(cut)[0]) < len(decoded)

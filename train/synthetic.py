"""Synthetic training clips (moving coloured squares) for tests, demos and smoke runs of the trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zizi_models.video_io import write_video


def moving_squares(frames: int, size: int = 64, seed: int = 0, squares: int = 2) -> np.ndarray:
    """[F, size, size, 3] uint8: coloured squares moving at constant speed over a flat background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, size=3)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    video[:] = background
    side = max(4, size // 4)
    for _ in range(squares):
        colour = rng.integers(120, 256, size=3)
        start = rng.uniform(0, size - side, size=2)
        velocity = rng.uniform(-2.0, 2.0, size=2) * size / 64
        for f in range(frames):
            y, x = (start + velocity * f) % (size - side)
            video[f, int(y) : int(y) + side, int(x) : int(x) + side] = colour
    return video


def write_moving_squares(path: str | Path, frames: int, size: int = 64, fps: float = 8.0, seed: int = 0) -> Path:
    return write_video(Path(path), moving_squares(frames, size, seed), fps)


def ensure_dataset(folder: str | Path, pretrained: str | Path, videos: int = 4, frames: int = 12, size: int = 64,
                   fps: float = 8.0) -> Path:
    """A preprocessed dataset of `videos` synthetic clips in `folder` (built once: preprocess resumes)."""
    from .preprocess import PreprocessOptions, preprocess

    folder = Path(folder)
    source = folder / "videos"
    source.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        path = source / f"squares_{i:02d}.mp4"
        if not path.is_file():
            write_moving_squares(path, frames, size, fps, seed=i)
    data = folder / "data"
    if (data / "index.json").is_file():
        from .clip_index import ClipIndex

        if len(ClipIndex.load(data).sources) >= videos:
            return data
    preprocess(PreprocessOptions(str(source), str(data), str(pretrained), fps=fps, size=size,
                                 clip_frames=frames, min_frames=min(8, frames)))
    return data

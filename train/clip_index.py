"""The preprocessed dataset on disk: latent shards (safetensors) + `index.json`.

    <dataset>/index.json                   what is there (written atomically after each shard)
    <dataset>/shards/shard_00000.safetensors   clip latents, one tensor per clip [F, 4, h, w] fp16,
                                            already multiplied by the VAE scaling factor
    <dataset>/poses/<clip id>.json          optional POSE_KEYPOINT per clip (pixels of the stored frames)

`index.json` also records every source (video file or frame folder) that was processed or skipped,
so `preprocess` can resume. Readers open shards lazily with `safe_open` (memory-mapped) and read
only the frames a window needs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

INDEX_NAME = "index.json"
INDEX_FORMAT = "zizi-clips"
INDEX_VERSION = 1


@dataclass
class ClipRecord:
    id: str
    source: str  # path relative to the preprocess input folder
    shard: str  # path relative to the dataset folder
    key: str  # tensor name inside the shard
    frames: int
    start_s: float
    caption: str = ""
    pose: str | None = None  # relative path of the POSE_KEYPOINT json


@dataclass
class ClipIndex:
    size: int  # square frame size in pixels
    fps: float
    latent_scale: float
    latent_shape: list[int]  # [4, h, w]
    settings: dict[str, Any] = field(default_factory=dict)
    clips: list[ClipRecord] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> {"status", "reason"|"clips"}

    @classmethod
    def load(cls, folder: str | Path) -> ClipIndex:
        path = Path(folder) / INDEX_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a preprocessed dataset (no {INDEX_NAME}); run `python -m train preprocess` first")
        data = json.loads(path.read_text())
        if data.get("format") != INDEX_FORMAT or int(data.get("version", 0)) > INDEX_VERSION:
            raise ValueError(f"{path}: not a {INDEX_FORMAT} v{INDEX_VERSION} index")
        clips = [ClipRecord(**c) for c in data.get("clips", [])]
        return cls(data["size"], data["fps"], data["latent_scale"], list(data["latent_shape"]),
                   data.get("settings", {}), clips, data.get("sources", {}))

    def save(self, folder: str | Path) -> None:
        data = {"format": INDEX_FORMAT, "version": INDEX_VERSION, **asdict(self)}
        write_atomic_text(Path(folder) / INDEX_NAME, json.dumps(data, indent=1))

    def next_shard_name(self) -> str:
        used = {c.shard for c in self.clips} | {s.get("shard", "") for s in self.sources.values()}
        number = 0
        while f"shards/shard_{number:05d}.safetensors" in used:
            number += 1
        return f"shards/shard_{number:05d}.safetensors"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_shard(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write a safetensors shard atomically (temporary name in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class ShardReader:
    """Lazily opened, memory-mapped shards; one handle per shard per process (DataLoader workers
    open their own on first use)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._handles: dict[str, Any] = {}

    def read_frames(self, clip: ClipRecord, frames: list[int]) -> torch.Tensor:
        """Latents of `frames` (clip frame indices) -> [len(frames), 4, h, w] float32."""
        handle = self._handles.get(clip.shard)
        if handle is None:
            handle = safe_open(str(self.folder / clip.shard), framework="pt", device="cpu")
            self._handles[clip.shard] = handle
        low, high = min(frames), max(frames)
        if low < 0 or high >= clip.frames:
            raise IndexError(f"clip {clip.id} has {clip.frames} frames; asked for {frames}")
        block = handle.get_slice(clip.key)[low : high + 1]  # [high - low + 1, 4, h, w]
        index = torch.tensor([f - low for f in frames], dtype=torch.long)
        return block[index].float()

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_handles": {}}

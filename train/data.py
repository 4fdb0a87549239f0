"""Training data: windows drawn from the cached clip latents, in an order that can be resumed exactly.

`ResumableBatchSampler` walks a seeded permutation of the active clips per epoch (each process its
own share, `perm[rank::world]`) and yields batches of `(clip, window seed, epoch, position)`. The
data position `(epoch, position)` of the last batch the loop CONSUMED is part of the checkpoint, so
a resumed run continues with the next batch (DataLoader prefetching does not matter). The window
itself (task, stride, start frame) is drawn in `__getitem__` from the window seed, so the sample is
the same in any worker.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .clip_index import ClipIndex, ShardReader
from .config import WindowConfig
from .seeding import EPOCH_STREAM, WINDOW_STREAM, derive_seed
from .windows import TASKS, required_clip_length, sample_window

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleKey:
    clip: int  # index into the dataset's clips
    seed: int  # window seed
    epoch: int
    position: int  # position of this sample in the process's share of the epoch


class WindowDataset(Dataset):
    """Clips of a preprocessed dataset -> training windows (see windows.py)."""

    def __init__(self, folder: str | Path, window: WindowConfig, max_positions: int, default_prompt: str = "",
                 pose_line_scale: float | None = None) -> None:
        """`pose_line_scale` set: every sample also holds its frames' rendered poses ("pose")."""
        self.folder = Path(folder)
        self.index = ClipIndex.load(self.folder)
        self.window = window
        self.max_positions = max_positions
        self.default_prompt = default_prompt
        need = required_clip_length(window)
        self.clips = [c for c in self.index.clips if c.frames >= need]
        short = len(self.index.clips) - len(self.clips)
        if short:
            logger.warning("%d of %d clips are shorter than the %d frames a window needs; they are not used",
                           short, len(self.index.clips), need)
        if not self.clips:
            raise ValueError(
                f"{self.folder}: no clip has the {need} frames the window config needs "
                f"({len(self.index.clips)} clips in the index); preprocess longer clips or shorten the window"
            )
        self.reader = ShardReader(self.folder)
        self.pose_line_scale = pose_line_scale
        if pose_line_scale is not None:
            missing = [c.id for c in self.clips if not c.pose]
            if missing:
                raise ValueError(f"{self.folder}: model.pose_encoder needs poses, but {len(missing)} clips have none "
                                 f"(e.g. {missing[0]}); preprocess with --pose or set model.pose_encoder=false")
        self._poses: dict[str, list] = {}

    def pose_images(self, clip, frames: list[int]) -> torch.Tensor:
        """The clip's poses at `frames`, rendered like ZiziRenderPoses at the stored frame size -> [F, 3, S, S] in [0, 1]."""
        import json

        from zizi_models.pose.render import render_pose_keypoint

        if clip.id not in self._poses:
            self._poses[clip.id] = json.loads((self.folder / clip.pose).read_text())
        poses = self._poses[clip.id]
        size = self.index.size
        images = render_pose_keypoint([poses[f] for f in frames], size, size, line_scale=self.pose_line_scale,
                                      as_float=True)  # [F, S, S, 3]
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.clips)

    def clip_ids(self) -> list[str]:
        return [c.id for c in self.clips]

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        clip = self.clips[key.clip]
        spec = sample_window(clip.frames, self.window, self.max_positions, random.Random(key.seed))
        latents = self.reader.read_frames(clip, list(spec.frames))  # [F, 4, h, w]
        sample = {
            "latents": latents,
            "mask": torch.tensor(spec.known, dtype=torch.bool),  # [F]
            "is_anchor": torch.tensor(spec.is_anchor, dtype=torch.bool),  # [F]
            "positions": torch.tensor(spec.positions, dtype=torch.long),  # [F]
            "frames": torch.tensor(spec.frames, dtype=torch.long),  # [F]
            "task": TASKS.index(spec.task),
            "stride": spec.stride,
            "clip": key.clip,
            "caption": clip.caption or self.default_prompt,
            "epoch": key.epoch,
            "position": key.position,
        }
        if self.pose_line_scale is not None:
            sample["pose"] = self.pose_images(clip, list(spec.frames))  # [F, 3, S, S]
        return sample


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    batch: dict[str, Any] = {}
    for name in ("latents", "mask", "is_anchor", "positions", "frames", "pose"):
        if name in samples[0]:
            batch[name] = torch.stack([s[name] for s in samples])  # [B, F, ...]
    for name in ("task", "stride", "clip"):
        batch[name] = torch.tensor([s[name] for s in samples], dtype=torch.long)  # [B]
    batch["caption"] = [s["caption"] for s in samples]
    batch["epoch"] = samples[-1]["epoch"]
    batch["position"] = samples[-1]["position"] + 1  # the data position after this batch
    return batch


class ResumableBatchSampler(Sampler):
    """Endless batches over the active clips, starting at data position (epoch, position)."""

    def __init__(self, active: list[int], batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 epoch: int = 0, position: int = 0) -> None:
        if len(active) // world_size < batch_size:
            raise ValueError(
                f"{len(active)} usable clips cannot fill a batch of {batch_size} on each of {world_size} processes"
            )
        self.active = list(active)
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = epoch
        self.position = position

    def share(self, epoch: int) -> list[int]:
        """This process's clips of `epoch`, in order (equal length on every process)."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, EPOCH_STREAM, epoch))
        order = torch.randperm(len(self.active), generator=gen).tolist()
        per_rank = len(order) // self.world_size
        return [self.active[i] for i in order[self.rank :: self.world_size][:per_rank]]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        epoch, position = self.epoch, self.position
        while True:
            share = self.share(epoch)
            while position + self.batch_size <= len(share):
                yield [
                    SampleKey(share[p], derive_seed(self.seed, WINDOW_STREAM, epoch, self.rank, p), epoch, p)
                    for p in range(position, position + self.batch_size)
                ]
                position += self.batch_size
            epoch, position = epoch + 1, 0

    def __len__(self) -> int:  # endless; DataLoader only needs this for progress bars
        return 2**62


def make_loader(dataset: WindowDataset, active: list[int], batch_size: int, seed: int, rank: int, world_size: int,
                epoch: int, position: int, num_workers: int) -> DataLoader:
    sampler = ResumableBatchSampler(active, batch_size, seed, rank, world_size, epoch, position)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),  # never touch the global RNG
    )

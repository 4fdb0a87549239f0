"""`python -m train preprocess`: videos / frame folders -> clips -> cached VAE latents (+ poses).

For each source (sources.py): decode at `fps`, trim, centre-crop + resize to `size`, cut into clips of
at most `clip_frames` frames (a tail shorter than `min_frames` is dropped; a source with fewer than
`min_frames` frames is skipped with a message), encode every frame with the VAE (latent mean x the VAE
scaling factor, stored fp16), optionally extract poses (zizi_models.pose backend, stored as
POSE_KEYPOINT json next to the shards). Latents are packed into safetensors shards of about
`shard_mb`; after each shard the JSON index is rewritten atomically (clip_index.py).

Resumable: sources already recorded in the index (done or skipped) are not processed again, so an
interrupted run loses at most the sources of the shard being filled. Unreadable videos are skipped
with the reason logged and recorded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from .clip_index import ClipIndex, ClipRecord, write_atomic_text, write_shard
from .models import load_sd15
from .sources import Source, find_sources, iter_clips

logger = logging.getLogger(__name__)


@dataclass
class PreprocessOptions:
    input: str
    output: str
    pretrained: str  # SD1.5 diffusers folder or single file (its VAE encodes the frames)
    fps: float = 8.0
    size: int = 512
    trim_head: float = 0.0  # seconds dropped at the start of every source
    trim_tail: float = 0.0  # seconds dropped at the end
    clip_frames: int = 64  # longest clip; longer sources are cut into several
    min_frames: int = 16  # shortest clip kept (>= the training window's span)
    frames_fps: float = 24.0  # frame rate of frame-folder sources
    caption: str = ""  # default caption (a <video>.txt / caption.txt sidecar wins)
    pose: str = "none"  # none | mediapipe | openpose | dwpose
    encode_batch: int = 8  # frames per VAE call
    shard_mb: float = 256.0
    device: str = "auto"
    pose_backend: Any = field(default=None, repr=False)  # an already built PoseBackend (tests, API use)

    def settings(self) -> dict[str, Any]:
        """What must not change when resuming into the same output folder."""
        data = asdict(self)
        for key in ("input", "output", "encode_batch", "shard_mb", "device", "pose_backend", "caption"):
            data.pop(key)
        return data


@dataclass
class PreprocessReport:
    processed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> reason
    already_done: list[str] = field(default_factory=list)
    clips: int = 0


class _Encoder:
    def __init__(self, options: PreprocessOptions) -> None:
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        parts = load_sd15(options.pretrained, need_text=False)
        self.vae = parts.vae.to(self.device)
        self.scale = parts.vae_scale
        self.batch = options.encode_batch

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """[F, H, W, 3] uint8 -> [F, 4, H/8, W/8] fp16 (VAE mean x scaling factor)."""
        out = []
        for i in range(0, len(frames), self.batch):
            x = torch.from_numpy(frames[i : i + self.batch]).to(self.device)
            x = rearrange(x, "f h w c -> f c h w").float() / 127.5 - 1.0  # [-1, 1]
            out.append((self.vae.encode(x).latent_dist.mean * self.scale).half().cpu())
        return torch.cat(out)


class _ShardBuffer:
    """Clips of finished sources waiting for their shard; flushing writes the shard, then the index."""

    def __init__(self, folder: Path, index: ClipIndex, shard_mb: float) -> None:
        self.folder, self.index, self.limit = folder, index, shard_mb * 2**20
        self.tensors: dict[str, torch.Tensor] = {}
        self.clips: list[ClipRecord] = []
        self.sources: dict[str, dict[str, Any]] = {}
        self.bytes = 0

    def add_source(self, rel: str, status: dict[str, Any], clips: list[tuple[ClipRecord, torch.Tensor]]) -> None:
        for record, latents in clips:
            self.tensors[record.key] = latents
            self.clips.append(record)
            self.bytes += latents.numel() * latents.element_size()
        self.sources[rel] = status
        if self.bytes >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.sources:
            return
        if self.tensors:
            shard = self.index.next_shard_name()
            write_shard(self.folder / shard, self.tensors)
            for record in self.clips:
                record.shard = shard
        self.index.clips.extend(self.clips)
        self.index.sources.update(self.sources)
        self.index.save(self.folder)
        logger.info("wrote %d clips (%d sources) to the index", len(self.clips), len(self.sources))
        self.tensors, self.clips, self.sources, self.bytes = {}, [], {}, 0


def _open_index(options: PreprocessOptions, folder: Path, encoder: _Encoder) -> ClipIndex:
    latent = options.size // 8
    settings = options.settings()
    settings["pretrained"] = str(Path(options.pretrained).name)
    if (folder / "index.json").is_file():
        index = ClipIndex.load(folder)
        if index.settings != settings:
            diff = {k: (index.settings.get(k), v) for k, v in settings.items() if index.settings.get(k) != v}
            raise ValueError(
                f"{folder} was preprocessed with other settings {diff} (old, new); use a new output folder "
                "or the same settings to resume"
            )
        return index
    return ClipIndex(options.size, options.fps, encoder.scale, [4, latent, latent], settings)


def _pose_backend(options: PreprocessOptions):
    if options.pose_backend is not None:
        return options.pose_backend
    if options.pose == "none":
        return None
    from zizi_models.pose.backends import make_backend

    return make_backend(options.pose)


def _process_source(source: Source, options: PreprocessOptions, encoder: _Encoder, pose, folder: Path
                    ) -> tuple[dict[str, Any], list[tuple[ClipRecord, torch.Tensor]]]:
    stats: dict[str, Any] = {}
    clips = []
    caption = source.caption(options.caption)
    for number, (start, frames) in enumerate(
        iter_clips(source, options.fps, options.size, options.trim_head, options.trim_tail, options.frames_fps,
                   options.clip_frames, options.min_frames, stats)
    ):
        clip_id = f"{source.slug}-c{number:03d}"
        pose_rel = None
        if pose is not None:
            pose_rel = f"poses/{clip_id}.json"
            write_atomic_text(folder / pose_rel, json.dumps(pose.detect(frames)))
        start_s = options.trim_head + start / options.fps  # in the source's time
        record = ClipRecord(clip_id, source.rel, "", clip_id, len(frames), start_s, caption, pose_rel)
        clips.append((record, encoder(frames)))
    if not clips:
        reason = (f"too short: {stats.get('frames', 0)} frames at {options.fps:g} fps after trimming, "
                  f"a clip needs at least {options.min_frames}")
        return {"status": "skipped", "reason": reason}, []
    return {"status": "done", "clips": len(clips), "frames": stats["frames"]}, clips


def preprocess(options: PreprocessOptions) -> PreprocessReport:
    sources = find_sources(options.input)
    if not sources:
        raise ValueError(
            f"no input found in {options.input}: expected video files ({', '.join(s[1:] for s in ('.mp4', '.webm', '.mov', '.mkv'))}) "
            "or folders of frames (png/jpg)"
        )
    if options.min_frames < 1 or options.clip_frames < options.min_frames:
        raise ValueError(f"need 1 <= min_frames <= clip_frames, got {options.min_frames}, {options.clip_frames}")
    if options.size % 8 != 0:
        raise ValueError(f"size must be a multiple of 8 (VAE), got {options.size}")
    folder = Path(options.output)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = _Encoder(options)
    index = _open_index(options, folder, encoder)
    buffer = _ShardBuffer(folder, index, options.shard_mb)
    report = PreprocessReport()
    pose = _pose_backend(options)
    try:
        for number, source in enumerate(sources, 1):
            if source.rel in index.sources:
                report.already_done.append(source.rel)
                continue
            try:
                status, clips = _process_source(source, options, encoder, pose, folder)
            except (ValueError, OSError) as err:  # unreadable / corrupt / no video stream
                status, clips = {"status": "skipped", "reason": f"unreadable: {err}"}, []
            if status["status"] == "skipped":
                logger.warning("[%d/%d] skipped %s: %s", number, len(sources), source.rel, status["reason"])
                report.skipped[source.rel] = status["reason"]
            else:
                logger.info("[%d/%d] %s: %d clips", number, len(sources), source.rel, len(clips))
                report.processed.append(source.rel)
                report.clips += len(clips)
            buffer.add_source(source.rel, status, clips)
        buffer.flush()
    finally:
        if pose is not None and options.pose_backend is None:
            pose.close()
    if report.already_done:
        logger.info("%d sources were already in the index (resumed)", len(report.already_done))
    logger.info("preprocess: %d clips from %d sources, %d skipped; %d clips in %s", report.clips,
                len(report.processed), len(report.skipped), len(index.clips), folder)
    return report

"""Host RAM a loop-controller run will hold, and the admission check made before anything big is allocated.

Pure Python (no torch, no ComfyUI). The parts, all float32 on the CPU:

* ``images``: the IMAGE output. "all frames": every frame, ``frames x H x W x 3 x 4`` bytes (the output
  tensor is allocated once and filled chunk by chunk, so there is no second copy from a concatenation);
  streaming: only the last ``decode_chunk`` frames are kept.
* ``latents``: the latent store, ``frames x 4 x H/s x W/s x 4`` bytes (s = the VAE's downscale, 8 for SD1.5),
  returned as the LATENT output without a copy.
* ``decode``: one decoded chunk in flight (float32) plus its uint8 copy for the video writer.
* ``pose``: the pose_images input, counted in ``total`` but already loaded by the node that made it, so
  not in ``new`` (what the run still has to allocate and what is checked against the available RAM).

Not counted: the models, the VAE's own working memory (ComfyUI sizes its decode batches itself) and one
window's tensors (kilobytes to a few MB).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADMISSION_FRACTION", "RunMemory", "admission_problem", "available_bytes", "estimate_run_memory"]

FLOAT32 = 4
RGB = 3
LATENT_CHANNELS = 4
ADMISSION_FRACTION = 0.8  # a run may plan to use at most this share of the RAM available when it starts
GB = 1e9


@dataclass(frozen=True)
class RunMemory:
    """Bytes of host RAM a run holds, by part."""

    images: int
    latents: int
    decode: int
    pose: int = 0

    @property
    def new(self) -> int:
        """What the run allocates itself (the pose images already exist when it starts)."""
        return self.images + self.latents + self.decode

    @property
    def total(self) -> int:
        return self.new + self.pose

    def describe(self) -> str:
        parts = [f"IMAGE output {self.images / GB:.2f} GB", f"latents {self.latents / GB:.2f} GB",
                 f"decoding {self.decode / GB:.2f} GB"]
        if self.pose:
            parts.append(f"pose images {self.pose / GB:.2f} GB, already loaded")
        return ", ".join(parts)


def estimate_run_memory(total_frames: int, width: int, height: int, decode_chunk: int, streaming: bool,
                        latent_scale: int = 8, pose_bytes: int = 0) -> RunMemory:
    """The host RAM a run of ``total_frames`` frames of ``width`` x ``height`` holds at its peak."""
    for name, value in (("total_frames", total_frames), ("width", width), ("height", height),
                        ("decode_chunk", decode_chunk), ("latent_scale", latent_scale)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    frame = width * height * RGB
    chunk = min(decode_chunk, total_frames)
    kept = chunk if streaming else total_frames
    latent_frame = LATENT_CHANNELS * (height // latent_scale) * (width // latent_scale) * FLOAT32
    return RunMemory(images=kept * frame * FLOAT32, latents=total_frames * latent_frame,
                     decode=chunk * frame * (FLOAT32 + 1), pose=max(int(pose_bytes), 0))


def available_bytes() -> int:
    """Host RAM available to new allocations now (``psutil.virtual_memory().available``)."""
    import psutil  # ComfyUI depends on it; imported here so the estimate itself needs nothing

    return int(psutil.virtual_memory().available)


def admission_problem(memory: RunMemory, available: int, total_frames: int, width: int, height: int,
                      streaming: bool, fraction: float = ADMISSION_FRACTION) -> str | None:
    """A one-line refusal when the run would need more than ``fraction`` of the ``available`` RAM, else None."""
    if memory.new <= fraction * available:
        return None
    hint = ("lower total_frames, width or height, or decode_chunk" if streaming else
            "set output to 'stream to file (small IMAGE)' (frames go to an mp4 as they are made and only the last "
            "decode_chunk frames are returned), or lower total_frames, width or height")
    return (f"total_frames: {total_frames} frames of {width}x{height} need about {memory.new / GB:.1f} GB of host RAM "
            f"({memory.describe()}) but only {available / GB:.1f} GB is available (a run may use "
            f"{fraction:.0%} of it); {hint}")

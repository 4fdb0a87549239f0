"""What a per-window cache keys a tensor on: its storage and, where torch tracks one, its in-place version."""

from __future__ import annotations

import torch


def tensor_stamp(tensor: torch.Tensor) -> tuple[int, int | None]:
    """``(data_ptr, version)``; read without touching the device. Inference tensors (created under
    ``torch.inference_mode``, as ComfyUI loads weights and runs nodes) have no version counter, so their
    version is None: the storage identity keys them (a cache lives for one window's sampling)."""
    return tensor.data_ptr(), (None if tensor.is_inference() else tensor._version)

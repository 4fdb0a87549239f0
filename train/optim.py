"""Optimizer (AdamW or bitsandbytes 8-bit AdamW) and learning-rate schedule (warmup + cosine/constant)."""

from __future__ import annotations

import logging
import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from .config import OptimizerConfig

logger = logging.getLogger(__name__)


class OptimizerUnavailable(RuntimeError):
    pass


def _adamw8bit(device: torch.device):
    if device.type != "cuda":
        raise OptimizerUnavailable(
            f"optimizer.name=adamw8bit needs a CUDA GPU (bitsandbytes 8-bit Adam has no {device.type} kernels); "
            "this run is on the CPU: use optimizer.name=adamw"
        )
    try:
        import bitsandbytes as bnb
    except ImportError as err:
        raise OptimizerUnavailable(
            "optimizer.name=adamw8bit needs bitsandbytes, which is not installed (pip install bitsandbytes, on a "
            "machine with a CUDA GPU); or use optimizer.name=adamw"
        ) from err
    return bnb.optim.AdamW8bit


def build_optimizer(groups: list[dict], config: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    """groups: torch param groups (`params`, optional `lr`)."""
    cls = torch.optim.AdamW if config.name == "adamw" else _adamw8bit(device)
    return cls(groups, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay, eps=config.eps)


def lr_lambda(step: int, warmup_steps: int, max_steps: int, kind: str) -> float:
    """Multiplier of the base lr after `step` optimizer steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimizerConfig, max_steps: int) -> LambdaLR:
    """Stepped once per optimizer step (by the training loop, not by accelerate)."""
    warmup, kind = config.warmup_steps, config.scheduler
    return LambdaLR(optimizer, lambda step: lr_lambda(step, warmup, max_steps, kind))

"""Derived seeds: every random draw of a run is a pure function of (run seed, where it happens).

A batch's randomness is seeded from (seed, micro-step, rank), a window's from (seed, epoch, rank,
position), a validation video's from (seed, step). Nothing in the training loop reads the global
RNGs, so a resumed run draws exactly what an uninterrupted one draws, whatever was (or was not)
computed in between (validation, a restarted DataLoader).
"""

from __future__ import annotations

import torch

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes, platforms and Python versions."""
    state = 0x5A17
    for part in parts:
        state = _splitmix64(state ^ (int(part) & _MASK))
    return state & ((1 << 63) - 1)


# stream tags, so that the streams of one step never coincide
BATCH_STREAM = 1
WINDOW_STREAM = 2
VALIDATION_STREAM = 3
EPOCH_STREAM = 4


def generator(device: torch.device | str, *parts: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(*parts))
    return gen

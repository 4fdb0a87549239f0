"""Reference attention: every frame of a window also attends to the anchor frame's spatial self-attention.

Training-free (reference-only attention, the ReferenceNet idea without a second network): in each spatial
self-attention layer, the keys and values of the window's anchor frame (the un-augmented first hint,
which is in every window, its noisy input following its clean latent) are appended to every frame's own,
so each frame can copy the anchor's appearance wherever its queries match. ``strength`` blends the
output with plain self-attention (0 = plain, 1 = with the reference only).

Pure PyTorch: the host passes its own attention function (``attention(q, k, v) -> out`` on
``[B, N, heads * dim]`` projections), so the result is what the host computes, plus the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange, repeat

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def with_reference(x: torch.Tensor, frames: int, anchor: int) -> torch.Tensor:
    """x [(c f), n, d] (c stacked copies of an f-frame window, e.g. cond and uncond) -> [(c f), 2n, d]:
    each frame's tokens followed by the anchor frame's tokens of the same copy."""
    if x.shape[0] % frames:
        raise ValueError(f"attention batch of {x.shape[0]} rows is not a whole number of {frames}-frame windows")
    if not 0 <= anchor < frames:
        raise ValueError(f"reference frame {anchor} is outside the {frames}-frame window")
    per_copy = rearrange(x, "(c f) n d -> c f n d", f=frames)
    reference = repeat(per_copy[:, anchor], "c n d -> c f n d", f=frames)
    return rearrange(torch.cat([per_copy, reference], dim=2), "c f n d -> (c f) n d")


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int, anchor: int,
                        strength: float, attention: Attention) -> torch.Tensor:
    """Self-attention of q/k/v [(c f), n, d] with the anchor frame's keys/values offered to every frame.

    strength 0 returns ``attention(q, k, v)`` untouched; 1 only the attention with the reference; in
    between the blend (1 - s) * plain + s * referenced (two attention calls)."""
    if strength == 0:
        return attention(q, k, v)
    referenced = attention(q, with_reference(k, frames, anchor), with_reference(v, frames, anchor))
    if strength == 1:
        return referenced
    plain = attention(q, k, v)
    return plain + strength * (referenced - plain)

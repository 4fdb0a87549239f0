"""Reference attention: every frame of a window also attends to the anchor frame's spatial self-attention.

Training-free (reference-only attention, the ReferenceNet idea without a second network): in each spatial
self-attention layer, the keys and values of the window's anchor frame (the un-augmented first hint,
which is in every window, its noisy input following its clean latent) are appended to every frame's own,
so each frame can copy the anchor's appearance wherever its queries match. ``strength`` blends the
output with plain self-attention (0 = plain, 1 = with the reference only).

Pure PyTorch: the host passes its own attention function (``attention(q, k, v) -> out`` on
``[B, N, heads * dim]`` projections), so the result is what the host computes, plus the reference.
``reference_attention_per_window`` is the trained form (``TemporalModelConfig.reference_attention``) in the
diffusers UNet, for a batch of windows each with its own anchor or none; the ComfyUI patch computes the
same with ``reference_attention`` at strength 1 (one anchor per sampled window).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def heads_attention(heads: int) -> Attention:
    """Scaled dot-product attention over ``heads`` heads on [B, N, heads * dim] projections (the math of
    diffusers' AttnProcessor2_0 and of ComfyUI's optimized_attention)."""

    def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return rearrange(out, "b h n d -> b n (h d)")

    return attention


def reference_attention_per_window(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int,
                                   anchors: Sequence[int | None], attention: Attention) -> torch.Tensor:
    """q/k/v [(b f), n, d] for b windows of f frames; window i attends to its anchor ``anchors[i]`` at
    strength 1, or plainly where it has none (None). Windows sharing an anchor index go in one call."""
    if q.shape[0] != len(anchors) * frames:
        raise ValueError(f"attention batch of {q.shape[0]} rows is not {len(anchors)} windows of {frames} frames")
    groups: dict[int | None, list[int]] = {}
    for window, anchor in enumerate(anchors):
        groups.setdefault(anchor, []).append(window)

    def run(anchor: int | None, q_: torch.Tensor, k_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
        if anchor is None:
            return attention(q_, k_, v_)
        return reference_attention(q_, k_, v_, frames, anchor, 1.0, attention)

    if len(groups) == 1:
        return run(anchors[0], q, k, v)
    out = None
    for anchor, windows in groups.items():
        rows = torch.tensor([w * frames + i for w in windows for i in range(frames)], device=q.device)
        part = run(anchor, q[rows], k[rows], v[rows])  # [(g f), n, d]
        out = torch.zeros(q.shape[0], *part.shape[1:], dtype=part.dtype, device=part.device) if out is None else out
        out = out.index_copy(0, rows, part)
    return out

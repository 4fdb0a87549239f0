"""Where a generated frame's sampling starts: the signal-leak-aware initial latent.

SD1.5-family schedules (scaled linear, 1000 steps) never reach pure noise: at the last training step
alpha_bar is about 0.0047, so a training input ``x_T = sqrt(alpha_bar) z + sqrt(1 - alpha_bar) eps`` still
holds about 7% of the frame's own latent, and a model learns to read the frame's low frequencies (its
overall colours) from it. Sampling from pure noise then hands it random low frequencies: colours that
change from frame to frame and ignore the known frames (measured: docs/quality_puppet_v2_reference.md).
ComfyUI's samplers start from ``latent_image + sigma_max * noise``, the same mixture as training, so giving
a generated frame a latent that shares the clip's look restores what training saw:

    anchor    the anchor's (the first frame's) latent; the nearest known frame when the window has no anchor
    nearest   the clean latent of the nearest known frame of the window (by frame index; the earlier one on
              a tie): the closest pose, but earlier generated frames' errors carry over
    noise     zeros: pure noise, as a plain KSampler on an empty latent
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NOISE_INIT_MODES = ("anchor", "nearest", "noise")
DEFAULT_NOISE_INIT = "anchor"  # measured best on held-out puppet characters (README, noise_init)


def initial_latents(latents: torch.Tensor, known: torch.Tensor, frames: Sequence[int], anchor: int | None,
                    mode: str) -> torch.Tensor:
    """latents [F, C, h, w]: clean latents of the known frames (``known`` [F] bool), anything elsewhere ->
    [F, C, h, w] with every other frame set to its starting latent under ``mode``."""
    if mode not in NOISE_INIT_MODES:
        raise ValueError(f"noise init: expected one of {', '.join(NOISE_INIT_MODES)}, got {mode!r}")
    known = known.to(torch.bool)
    out = torch.where(known.reshape(-1, 1, 1, 1), latents, torch.zeros_like(latents))
    sources = [i for i in range(len(frames)) if bool(known[i])]
    if mode == "noise" or not sources:
        return out
    for i in range(len(frames)):
        if bool(known[i]):
            continue
        if mode == "anchor" and anchor is not None:
            source = anchor
        else:
            source = min(sources, key=lambda j: (abs(frames[j] - frames[i]), frames[j]))
        out[i] = latents[source]
    return out

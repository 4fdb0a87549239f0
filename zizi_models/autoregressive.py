"""Run a frame plan: the host-neutral heart of the loop controller.

The whole latent video lives on the CPU (``LatentStore``); each plan step gathers its window, builds
the conditioning of its known frames (noise-augmented at the set snr, the anchor never), hands ONE
window to ``sample_window`` (the host: ComfyUI's samplers in the pack, anything in tests), and puts
the generated frames back. Peak accelerator memory is one window's, whatever the video length.
After each step the frames that became final, in order, are reported so the caller can decode and
stream them while the rest is still being generated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .noise_init import DEFAULT_NOISE_INIT, NOISE_INIT_MODES, initial_latents
from .temporal.frame_call import WindowInputs
from .temporal.noise_augmentation import augment_latents, augmentation_level

log = logging.getLogger(__name__)


@dataclass
class WindowRequest:
    """One window to denoise. ``latents`` [F, C, h, w] raw: clean latents of known frames, elsewhere the latent
    each generated frame's sampling starts from (``noise_init``: the anchor's, or zeros = pure noise).
    ``generate`` [F] bool: the frames to sample. ``window``: what the temporal layers get (positions,
    augmented known latents in model space, mask, augmentation levels). ``seed``: the window's noise seed.
    ``anchor``: the index in the window of the un-augmented anchor frame (None: the window has none)."""

    step_index: int
    frames: tuple[int, ...]
    latents: torch.Tensor
    generate: torch.Tensor
    window: WindowInputs
    seed: int
    anchor: int | None = None


class LatentStore:
    """The latent video [T, C, h, w] on the CPU, with which frames exist."""

    def __init__(self, total_frames: int, channels: int, height: int, width: int, dtype: torch.dtype = torch.float32):
        self.latents = torch.zeros(total_frames, channels, height, width, dtype=dtype)
        self.exists = torch.zeros(total_frames, dtype=torch.bool)

    def put(self, frames: Sequence[int], latents: torch.Tensor) -> None:
        index = torch.as_tensor(list(frames), dtype=torch.long)
        self.latents[index] = latents.detach().to(device="cpu", dtype=self.latents.dtype)
        self.exists[index] = True

    def get(self, frames: Sequence[int]) -> torch.Tensor:
        index = torch.as_tensor(list(frames), dtype=torch.long)
        missing = [f for f, ok in zip(frames, self.exists[index].tolist(), strict=True) if not ok]
        if missing:
            raise RuntimeError(f"frames {missing} are used before they exist; the plan is invalid")
        return self.latents[index]


def window_request(step, step_index: int, store: LatentStore, snr: float, seed: int,
                   to_model_space: Callable[[torch.Tensor], torch.Tensor],
                   noise_init: str = DEFAULT_NOISE_INIT) -> WindowRequest:
    """Build the window for one plan step. Known frames other than the anchor are augmented at ``snr``
    (inf = not at all), in the UNet's latent space, with noise drawn from a generator seeded per step.
    ``noise_init``: the latent each generated frame's sampling starts from (zizi_models/noise_init.py)."""
    frames = tuple(step.frames)
    known = torch.tensor([step.is_known(f) for f in frames])
    latents = torch.zeros(len(frames), *store.latents.shape[1:], dtype=store.latents.dtype)
    known_frames = [f for f in frames if step.is_known(f)]
    if known_frames:
        latents[known] = store.get(known_frames)
    frame_snr = torch.tensor([math.inf if (not step.is_known(f) or step.is_anchor(f)) else snr for f in frames])
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step_index)
    augmented = augment_latents(to_model_space(latents), frame_snr, generator=generator)
    augmented = augmented * known.reshape(-1, 1, 1, 1)  # frames to generate carry no content
    level = augmentation_level(frame_snr) * known
    window = WindowInputs(torch.tensor(step.positions), augmented, known.float(), level.float())
    anchor = next((i for i, f in enumerate(frames) if step.is_anchor(f)), None)
    latents = initial_latents(latents, known, frames, anchor, noise_init)
    return WindowRequest(step_index, frames, latents, ~known, window, seed + step_index, anchor)


def run_plan(
    steps: Sequence,
    store: LatentStore,
    sample_window: Callable[[WindowRequest], torch.Tensor],
    snr: float,
    seed: int,
    to_model_space: Callable[[torch.Tensor], torch.Tensor] = lambda z: z,
    on_frames_final: Callable[[list[int]], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
    first_index: int = 0,
    noise_init: str = DEFAULT_NOISE_INIT,
) -> LatentStore:
    """Execute ``steps`` (PlanStep-like: frames, known, generate, positions, is_known, is_anchor).

    ``sample_window(request) -> [F, C, h, w]`` raw latents for the window; only the ``generate`` frames
    are kept. ``on_frames_final(frames)`` gets, after each step, the frames that are now final and
    contiguous from the start (each frame exactly once, in order). ``check_interrupt()`` runs before
    every step and may raise to stop; what exists so far stays in ``store``. ``first_index``: the index
    of ``steps[0]`` in the whole plan (a stage node running part of it), which seeds each step.
    ``noise_init``: where each generated frame's sampling starts (``zizi_models/noise_init.py``).
    """
    if snr < 0 or math.isnan(snr):
        raise ValueError(f"snr must be >= 0 (inf = no augmentation), got {snr}")
    if noise_init not in NOISE_INIT_MODES:
        raise ValueError(f"noise_init: expected one of {', '.join(NOISE_INIT_MODES)}, got {noise_init!r}")
    emitted = 0
    total = store.latents.shape[0]
    for index, step in enumerate(steps):
        if check_interrupt is not None:
            check_interrupt()
        request = window_request(step, first_index + index, store, snr, seed, to_model_space, noise_init)
        sampled = sample_window(request)
        keep = [i for i, f in enumerate(request.frames) if not step.is_known(f)]
        store.put([request.frames[i] for i in keep], sampled[keep])
        ready = emitted
        while ready < total and bool(store.exists[ready]):
            ready += 1
        if on_frames_final is not None and ready > emitted:
            on_frames_final(list(range(emitted, ready)))
        emitted = ready
    return store

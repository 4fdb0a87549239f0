"""Where a generated frame's sampling starts (zizi_models/noise_init.py) and that run_plan's windows get it."""

from __future__ import annotations

import pytest
import torch

from tests.unit.test_autoregressive import PLAN
from zizi_models.autoregressive import LatentStore, run_plan, window_request
from zizi_models.noise_init import initial_latents

FRAMES = (0, 3, 4, 5, 7)
KNOWN = torch.tensor([True, True, False, False, True])


def window_latents() -> torch.Tensor:
    latents = torch.zeros(5, 4, 2, 2)
    for i, frame in enumerate(FRAMES):
        if KNOWN[i]:
            latents[i] = float(frame + 1)  # frame 0 -> 1, frame 3 -> 4, frame 7 -> 8
    return latents


def test_anchor_mode_starts_every_generated_frame_from_the_anchor() -> None:
    out = initial_latents(window_latents(), KNOWN, FRAMES, anchor=0, mode="anchor")
    assert out[:, 0, 0, 0].tolist() == [1.0, 4.0, 1.0, 1.0, 8.0]  # known frames untouched


def test_nearest_mode_takes_the_nearest_known_frame_and_the_earlier_on_a_tie() -> None:
    out = initial_latents(window_latents(), KNOWN, FRAMES, anchor=0, mode="nearest")
    # frame 4 -> frame 3 (1 away); frame 5 -> frames 3 and 7 are 2 away: the earlier, 3
    assert out[:, 0, 0, 0].tolist() == [1.0, 4.0, 4.0, 4.0, 8.0]
    # without an anchor, anchor mode falls back to the nearest known frame
    assert torch.equal(initial_latents(window_latents(), KNOWN, FRAMES, None, "anchor"), out)


def test_noise_mode_and_a_window_without_known_frames_start_from_zeros() -> None:
    latents = window_latents()
    latents[2:4] = 5.0  # whatever sits in the generated slots is not used
    out = initial_latents(latents, KNOWN, FRAMES, anchor=0, mode="noise")
    assert out[:, 0, 0, 0].tolist() == [1.0, 4.0, 0.0, 0.0, 8.0]
    none_known = initial_latents(latents, torch.zeros(5, dtype=torch.bool), FRAMES, None, "anchor")
    assert none_known.abs().sum() == 0
    with pytest.raises(ValueError, match="noise init: expected one of anchor, nearest, noise"):
        initial_latents(latents, KNOWN, FRAMES, 0, "previous")


def test_run_plan_windows_carry_the_initial_latents_and_bad_modes_fail_first() -> None:
    store = LatentStore(12, 4, 2, 2)
    store.put(range(4), torch.arange(1.0, 5.0).reshape(4, 1, 1, 1).expand(4, 4, 2, 2))
    request = window_request(PLAN[1], 1, store, 0.66, seed=3, to_model_space=lambda z: z)  # frames 0 2 3 | 7 11
    assert request.latents[:, 0, 0, 0].tolist() == [1.0, 3.0, 4.0, 1.0, 1.0]  # the default: the anchor
    assert request.window.known[3:].abs().sum() == 0  # the known-frame channels stay empty there
    nearest = window_request(PLAN[1], 1, store, 0.66, seed=3, to_model_space=lambda z: z, noise_init="nearest")
    assert nearest.latents[:, 0, 0, 0].tolist() == [1.0, 3.0, 4.0, 4.0, 4.0]
    calls = []
    with pytest.raises(ValueError, match="noise_init"):
        run_plan(PLAN, store, calls.append, snr=0.66, seed=1, noise_init="bad")
    assert calls == []  # refused before any window

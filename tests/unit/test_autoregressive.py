"""run_plan: windows, noise augmentation of known frames, streaming order, interruption."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from zizi_models.autoregressive import LatentStore, run_plan, window_request


@dataclass(frozen=True)
class Step:
    known: tuple[int, ...]
    generate: tuple[int, ...]
    anchor: int | None = None

    @property
    def frames(self) -> tuple[int, ...]:
        return tuple(sorted(self.known + self.generate))

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(range(len(self.frames)))

    def is_known(self, frame: int) -> bool:
        return frame in self.known

    def is_anchor(self, frame: int) -> bool:
        return frame == self.anchor


PLAN = [Step((0,), (1, 2, 3), anchor=0), Step((0, 2, 3), (7, 11), anchor=0), Step((0, 3, 7), (4, 5, 6), anchor=0),
        Step((0, 7, 11), (8, 9, 10), anchor=0)]


def frame_value_sampler(calls: list):
    """A fake denoiser: every generated frame's latent is filled with its frame index."""
    def sample(request):
        calls.append(request)
        out = torch.zeros_like(request.latents)
        for i, frame in enumerate(request.frames):
            out[i] = float(frame)
        return out
    return sample


def test_every_frame_lands_once_and_streams_in_order() -> None:
    store = LatentStore(12, 4, 2, 2)
    store.put([0], torch.full((1, 4, 2, 2), 0.0))
    calls, streamed = [], []
    run_plan(PLAN, store, frame_value_sampler(calls), snr=0.66, seed=1, on_frames_final=streamed.append)
    assert bool(store.exists.all())
    assert torch.equal(store.latents[:, 0, 0, 0], torch.arange(12.0))
    assert streamed == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]  # the hint frame is frame 0 of the video
    assert [list(c.frames) for c in calls] == [[0, 1, 2, 3], [0, 2, 3, 7, 11], [0, 3, 4, 5, 6, 7], [0, 7, 8, 9, 10, 11]]
    assert calls[1].generate.tolist() == [False, False, False, True, True]


def test_known_frames_are_augmented_as_defined_and_the_anchor_never() -> None:
    store = LatentStore(12, 4, 8, 8)
    torch.manual_seed(0)
    store.put(range(4), torch.randn(4, 4, 8, 8))
    scale = 0.18215
    snr = 0.5
    request = window_request(PLAN[1], 1, store, snr, seed=3, to_model_space=lambda z: z * scale)
    window = request.window
    assert window.mask.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert window.level.tolist() == pytest.approx([0.0, 1 / 1.5, 1 / 1.5, 0.0, 0.0])
    clean = store.latents[[0, 2, 3]] * scale
    assert torch.equal(window.known[0], clean[0])  # the anchor goes in exactly
    a = snr / (1 + snr)
    eps = (window.known[1:3] - math.sqrt(a) * clean[1:]) / math.sqrt(1 - a)
    assert 0.9 < eps.std().item() < 1.1 and abs(eps.mean().item()) < 0.1  # unit Gaussian noise was added
    assert window.known[3:].abs().sum() == 0
    assert torch.equal(request.latents[1], store.latents[2])  # the sampler's latent slot gets the clean frame
    # same seed and step -> the same augmentation noise; snr "off" -> exact copies
    again = window_request(PLAN[1], 1, store, snr, seed=3, to_model_space=lambda z: z * scale)
    assert torch.equal(again.window.known, window.known)
    off = window_request(PLAN[1], 1, store, math.inf, seed=3, to_model_space=lambda z: z * scale)
    assert torch.equal(off.window.known[:3], clean) and off.window.level.abs().sum() == 0


def test_interrupt_keeps_what_exists_and_bad_snr_is_rejected() -> None:
    store = LatentStore(12, 4, 2, 2)
    store.put([0], torch.zeros(1, 4, 2, 2))
    steps_run = []

    def interrupt_after_two() -> None:
        if len(steps_run) == 2:
            raise KeyboardInterrupt

    def sample(request):
        steps_run.append(request.step_index)
        return torch.ones_like(request.latents)

    with pytest.raises(KeyboardInterrupt):
        run_plan(PLAN, store, sample, snr=1.0, seed=0, check_interrupt=interrupt_after_two)
    assert store.exists.tolist() == [True, True, True, True, False, False, False, True, False, False, False, True]
    with pytest.raises(ValueError, match="snr"):
        run_plan(PLAN, store, sample, snr=-0.1, seed=0)


def test_using_a_frame_before_it_exists_is_an_error() -> None:
    store = LatentStore(12, 4, 2, 2)
    with pytest.raises(RuntimeError, match=r"frames \[0\] are used before they exist"):
        run_plan(PLAN, store, frame_value_sampler([]), snr=1.0, seed=0)

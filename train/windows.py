"""Training windows: which frames of a clip one sample holds, which are known, and their positions.

A window has `F = window.frames` frames. With an anchor (the clip's first frame, frame 0, clean,
never augmented) it is `[0] + body` with a body of F - 1 frames at one stride; without an anchor
(probability `window.no_anchor_prob`) the body is all F frames. The task decides which body frames
are known (hints) and which the network generates, as in seed 001's autoregressive scheme:

    starter      anchor | g g g g g g          body at `starter_strides`
    extrapolate  anchor | k k g g g g          body at `extrapolate_strides`, c known frames first
    interpolate  anchor | k k g g g k          body at `interpolate_strides`, known before and after

Positions are what inference uses: `zizi_models.planner.window_positions(frames, anchor,
max_positions, anchor_gap)`: the anchor at 0, other frames `frame - first_non_anchor + anchor_gap`
(no gap without an anchor). Reusing the planner's function keeps training and sampling in step.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .config import ConfigError, WindowConfig

TASKS = ("starter", "extrapolate", "interpolate")


@dataclass(frozen=True)
class WindowSpec:
    """One sampled window. `frames` are clip frame indices (anchor first when present)."""

    task: str
    stride: int
    frames: tuple[int, ...]
    known: tuple[bool, ...]  # per frame: a hint (anchor included)
    anchor: int | None  # the anchor's clip frame index (0), None without an anchor
    positions: tuple[int, ...]

    @property
    def is_anchor(self) -> tuple[bool, ...]:
        return tuple(self.anchor is not None and i == 0 for i in range(len(self.frames)))


def positions_for(frames: Sequence[int], anchor: int | None, max_positions: int, anchor_gap: int) -> list[int]:
    """The planner's position rule (imported lazily: zizi_models.planner is shared with inference)."""
    from zizi_models.planner import window_positions

    return [int(p) for p in window_positions(list(frames), anchor, max_positions, anchor_gap=anchor_gap)]


def _strides(config: WindowConfig, task: str) -> list[int]:
    return list(getattr(config, f"{task}_strides"))


def body_length(config: WindowConfig, with_anchor: bool) -> int:
    return config.frames - 1 if with_anchor else config.frames


def required_clip_length(config: WindowConfig) -> int:
    """Frames a clip needs so that every enabled task/stride fits (with or without the anchor)."""
    need = 0
    for task, weight in config.task_weights.items():
        if weight <= 0:
            continue
        for stride in _strides(config, task):
            for with_anchor in (True, False):
                if with_anchor and config.no_anchor_prob >= 1:
                    continue
                if not with_anchor and config.no_anchor_prob <= 0:
                    continue
                body = body_length(config, with_anchor)
                need = max(need, (1 if with_anchor else 0) + stride * (body - 1) + 1)
    return need


def check_window_config(config: WindowConfig, max_positions: int) -> None:
    """Every window the config can draw must fit the position table and have a frame to generate."""
    body = body_length(config, True)
    for task, weight in config.task_weights.items():
        if weight <= 0:
            continue
        for stride in _strides(config, task):
            last = stride * (body - 1) + config.anchor_gap
            if last >= max_positions:
                raise ConfigError(
                    f"window: {task} at stride {stride} over {config.frames} frames reaches position {last}, "
                    f"but model.max_positions is {max_positions}; lower the stride/frames or raise max_positions"
                )
    if config.task_weights.get("interpolate", 0) > 0 and config.interpolate_before[0] + config.interpolate_after[0] > body - 1:
        raise ConfigError(f"window: interpolation needs at least one generated frame in a body of {body}")
    if config.task_weights.get("extrapolate", 0) > 0 and config.extrapolate_context[0] > body - 1:
        raise ConfigError(f"window: extrapolation context {config.extrapolate_context} leaves no frame to generate")


def _known_body(task: str, body: int, config: WindowConfig, rng: random.Random) -> list[bool]:
    if task == "starter":
        return [False] * body
    if task == "extrapolate":
        low, high = config.extrapolate_context
        context = rng.randint(low, min(high, body - 1))
        return [i < context for i in range(body)]
    # interpolate: known before the gap, generated gap, known after
    after = rng.randint(config.interpolate_after[0], config.interpolate_after[1])
    after = min(after, body - 1 - config.interpolate_before[0])
    before = rng.randint(config.interpolate_before[0], config.interpolate_before[1])
    before = max(0, min(before, body - 1 - after))
    return [i < before or i >= body - after for i in range(body)]


def sample_window(clip_length: int, config: WindowConfig, max_positions: int, rng: random.Random) -> WindowSpec:
    """Draw a task, a stride and a start frame for a clip of `clip_length` frames."""
    tasks = [t for t in TASKS if config.task_weights.get(t, 0) > 0]
    task = rng.choices(tasks, weights=[config.task_weights[t] for t in tasks])[0]
    with_anchor = rng.random() >= config.no_anchor_prob
    body = body_length(config, with_anchor)
    first = 1 if with_anchor else 0  # the body never contains the anchor frame
    strides = [s for s in _strides(config, task) if first + s * (body - 1) < clip_length]
    if not strides:
        raise ValueError(
            f"a clip of {clip_length} frames is too short for a {task} window of {config.frames} frames "
            f"at strides {_strides(config, task)}"
        )
    stride = rng.choice(strides)
    start = rng.randint(first, clip_length - 1 - stride * (body - 1))
    body_frames = [start + stride * i for i in range(body)]
    known_body = _known_body(task, body, config, rng)
    anchor = 0 if with_anchor else None
    frames = ([0] if with_anchor else []) + body_frames
    known = ([True] if with_anchor else []) + known_body
    positions = positions_for(frames, anchor, max_positions, config.anchor_gap)
    return WindowSpec(task, stride, tuple(frames), tuple(known), anchor, tuple(positions))

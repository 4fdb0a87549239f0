"""Training windows: which frames of a clip one sample holds, which are known, and their positions.

A window has `F = window.frames` frames. With an anchor (the clip's first frame, frame 0, clean,
never augmented) it is `[0] + body` with a body of F - 1 frames at one stride; without an anchor
(probability `window.no_anchor_prob`) the body is all F frames. The task decides which body frames
are known (hints) and which the network generates, as in seed 001's autoregressive scheme:

    starter      anchor | g g g g g g          body at `starter_strides`
    extrapolate  anchor | k k g g g g          body at `extrapolate_strides`, c known frames first
    interpolate  anchor | k k g g g k k        gap at `interpolate_strides`, known frames before/after
                                               it spaced by `interpolate_outer_strides` (5, 6 | 7 8 9 | 10, 14)

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


def interpolation_offsets(before: int, gap: int, after: int, stride: int, outer_before: int,
                          outer_after: int) -> list[int]:
    """Body offsets of an interpolation window, as the planner builds them: `before` known frames
    spaced `outer_before` apart ending at the left endpoint, `gap` generated frames `stride` apart, the
    right endpoint, then `after - 1` more known frames spaced `outer_after` apart (5, 6 | 7 8 9 | 10, 14:
    the previous fill before, the next grid frame after)."""
    offsets, position = [], 0
    for i in range(before):
        offsets.append(position)
        position += outer_before if i < before - 1 else stride
    for _ in range(gap + 1):  # the gap, then the right endpoint
        offsets.append(position)
        position += stride
    position = offsets[-1]
    for _ in range(after - 1):
        position += outer_after
        offsets.append(position)
    return offsets


def _layouts(task: str, body: int, config: WindowConfig) -> list[tuple[int, list[int]]]:
    """(stride, body offsets) of the longest windows the config can draw for `task` (for span checks)."""
    out = []
    for stride in _strides(config, task):
        if task != "interpolate":
            out.append((stride, [stride * i for i in range(body)]))
            continue
        outer = max(config.interpolate_outer_strides)  # the widest layouts bound the span
        for before in range(config.interpolate_before[0], config.interpolate_before[1] + 1):
            for after in range(config.interpolate_after[0], config.interpolate_after[1] + 1):
                if before >= 1 and after >= 1 and before + after <= body - 1:
                    gap = body - before - after
                    out.append((stride, interpolation_offsets(before, gap, after, stride, outer, outer)))
    return out


def _enabled(config: WindowConfig) -> list[tuple[str, bool]]:
    anchors = [a for a in (True, False) if (config.no_anchor_prob < 1 if a else config.no_anchor_prob > 0)]
    return [(t, a) for t in TASKS if config.task_weights.get(t, 0) > 0 for a in anchors]


def required_clip_length(config: WindowConfig) -> int:
    """Frames a clip needs so that every window the config can draw fits."""
    need = 0
    for task, with_anchor in _enabled(config):
        for _, offsets in _layouts(task, body_length(config, with_anchor), config):
            need = max(need, (1 if with_anchor else 0) + offsets[-1] + 1)
    return need


def check_window_config(config: WindowConfig, max_positions: int) -> None:
    """Every window the config can draw must fit the position table and have a frame to generate."""
    body = body_length(config, True)
    if config.task_weights.get("interpolate", 0) > 0 and config.interpolate_before[0] + config.interpolate_after[0] > body - 1:
        raise ConfigError(f"window: interpolation needs at least one generated frame in a body of {body}")
    if config.task_weights.get("interpolate", 0) > 0 and min(config.interpolate_before[0], config.interpolate_after[0]) < 1:
        raise ConfigError("window: interpolation needs at least one known frame on each side (interpolate_before/after >= 1)")
    if config.task_weights.get("extrapolate", 0) > 0 and not 1 <= config.extrapolate_context[0] <= body - 1:
        raise ConfigError(f"window: extrapolation context {config.extrapolate_context} must leave a frame to generate")
    for task, with_anchor in _enabled(config):
        gap = config.anchor_gap if with_anchor else 0
        for stride, offsets in _layouts(task, body_length(config, with_anchor), config):
            if offsets[-1] + gap >= max_positions:
                raise ConfigError(
                    f"window: a {task} window of {config.frames} frames at stride {stride} reaches position "
                    f"{offsets[-1] + gap}, but model.max_positions is {max_positions}; lower the strides/frames "
                    "or raise max_positions"
                )


def _draw_body(task: str, body: int, config: WindowConfig, rng: random.Random) -> tuple[int, list[int], list[bool]]:
    """(stride, body offsets, known flags) for one window."""
    stride = rng.choice(_strides(config, task))
    if task == "starter":
        return stride, [stride * i for i in range(body)], [False] * body
    if task == "extrapolate":
        low, high = config.extrapolate_context
        context = rng.randint(low, min(high, body - 1))
        return stride, [stride * i for i in range(body)], [i < context for i in range(body)]
    outer_before = rng.choice(config.interpolate_outer_strides)
    outer_after = rng.choice(config.interpolate_outer_strides)
    after = rng.randint(config.interpolate_after[0], min(config.interpolate_after[1], body - 1 - config.interpolate_before[0]))
    before = rng.randint(config.interpolate_before[0], max(config.interpolate_before[0], min(config.interpolate_before[1], body - 1 - after)))
    gap = body - before - after
    known = [True] * before + [False] * gap + [True] * after
    return stride, interpolation_offsets(before, gap, after, stride, outer_before, outer_after), known


def sample_window(clip_length: int, config: WindowConfig, max_positions: int, rng: random.Random) -> WindowSpec:
    """Draw a task, a layout and a start frame for a clip of `clip_length` frames."""
    tasks = [t for t in TASKS if config.task_weights.get(t, 0) > 0]
    task = rng.choices(tasks, weights=[config.task_weights[t] for t in tasks])[0]
    with_anchor = rng.random() >= config.no_anchor_prob
    body = body_length(config, with_anchor)
    first = 1 if with_anchor else 0  # the body never contains the anchor frame
    stride, offsets, known_body = _draw_body(task, body, config, rng)
    if first + offsets[-1] >= clip_length:
        raise ValueError(
            f"a clip of {clip_length} frames is too short for a {task} window spanning {offsets[-1] + 1} frames "
            f"(clips need {required_clip_length(config)} frames for this window config)"
        )
    start = rng.randint(first, clip_length - 1 - offsets[-1])
    anchor = 0 if with_anchor else None
    frames = ([0] if with_anchor else []) + [start + o for o in offsets]
    known = ([True] if with_anchor else []) + known_body
    positions = positions_for(frames, anchor, max_positions, config.anchor_gap)
    return WindowSpec(task, stride, tuple(frames), tuple(known), anchor, tuple(positions))

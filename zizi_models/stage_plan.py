"""The loop controller's plan one stage at a time: what the starter / extrapolate / interpolate nodes run.

Pure Python (no torch, no ComfyUI). The controller runs ``plan_video``; a graph of stage nodes runs the
same steps, one node call per stage (``stage_calls`` lists them for a plan):

    starter       step 0                       frames = the controller's window (cut to total_frames)
    extrapolate   one extrapolation step       same window / stride / context_frames, and total_frames
                                               (or count = the frames that step makes)
    interpolate   the interpolation steps      same window
                  right after it (stride > 1)

Each function builds its steps with the planner's own code (``_Planner``), started from the frames that
exist (those of the node's input LATENT) instead of from nothing. The controller's plan is the same code
run from the hint, so in the same state a node takes exactly the controller's step: extrapolation from
the latest frame G with the grid frames G, G - stride, ... as context (frame 0 the anchor when it
exists), the tail after the last grid frame at stride 1 (when total_frames says where the video ends),
and each gap filled left to right with the gap's ends plus one more existing frame on each side when it
fits. ``interpolate=False`` in the controller is stride 1 here.

Step indices: ``run_plan`` seeds step i with ``seed + i`` (sampler) and ``seed * 1_000_003 + i``
(augmentation). A node's steps take the index the controller gives them: the number of steps already
run, which the nodes count along in their LATENTs (``zizi_step``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import pairwise

from .planner import ANCHOR_GAP, PlanStep, TaskKind, _Planner

__all__ = ["extrapolation_step", "interpolation_steps", "stage_calls", "stage_steps", "starter_step"]


def _planner(exists: Collection[int], total: int, window: int, max_positions: int, context_frames: int,
             anchor_gap: int) -> _Planner:
    """A planner in the state where ``exists`` are the frames generated so far (frame 0 the anchor if there)."""
    frames = {int(f) for f in exists}
    if any(f < 0 for f in frames):
        raise ValueError(f"frames must be >= 0, got {sorted(frames)}")
    if window > max_positions:
        raise ValueError(f"window: {window} frames exceed the temporal module's {max_positions} positions; "
                         f"use window <= {max_positions}")
    planner = _Planner(total, window, 1, 0 in frames, max_positions, 0 in frames, True, context_frames, anchor_gap)
    planner.exists, planner.highest = frames, max(frames, default=-1)
    return planner


def starter_step(frames: int, max_positions: int, hint: bool, anchor_gap: int = ANCHOR_GAP) -> PlanStep | None:
    """The controller's step 0 for a window of ``frames`` frames (None: a 1-frame video of the hint).

    Generates frames 1..n-1 from the hint (frame 0, the anchor), or 0..n-1 without one; n is ``frames``
    cut to the positions (a hinted window needs one more position for the anchor gap)."""
    if frames < 1:
        raise ValueError(f"frames: {frames} must be >= 1")
    if frames > max_positions:
        raise ValueError(f"frames: {frames} exceed the temporal module's {max_positions} positions; "
                         f"use frames <= {max_positions}")
    planner = _Planner(frames, frames, 1, True, max_positions, bool(hint), False, 1, anchor_gap)
    planner.starter()
    return planner.steps[0] if planner.steps else None


def extrapolation_step(exists: Collection[int], window: int, stride: int, max_positions: int,
                       context_frames: int = 3, total_frames: int | None = None, count: int | None = None,
                       anchor_gap: int = ANCHOR_GAP) -> PlanStep:
    """The controller's extrapolation step from the latest existing frame G.

    Context: frame 0 (the anchor) when it exists and up to ``context_frames`` existing frames G,
    G - stride, ...; new frames G + stride, G + 2 stride, ... as many as fit the window and positions.
    ``total_frames``: where the video ends (no frame past it; after the last frame a stride fits, the
    tail goes at stride 1, as in the controller). ``count``: this many new frames (ValueError if they do
    not fit), at most up to ``total_frames`` when both are given.
    """
    if not exists:
        raise ValueError("known: no frames to extrapolate from")
    if stride < 1:
        raise ValueError(f"stride: {stride} must be >= 1")
    if context_frames < 1:
        raise ValueError(f"context_frames: {context_frames} must be >= 1")
    last = max(exists)
    if total_frames is not None and last >= total_frames - 1:
        raise ValueError(f"total_frames: the known frames already reach frame {last} of a {total_frames}-frame "
                         "video; nothing is left to extrapolate")
    if total_frames is not None and last + stride > total_frames - 1:
        stride = 1  # the tail after the last grid frame: contiguous, as the controller does it
    ends = [last + stride * (count or window) + 1] + ([total_frames] if total_frames is not None else [])
    planner = _planner(exists, min(ends), window, max_positions, context_frames, anchor_gap)
    generated = planner.extrapolate(last, stride)
    if count and len(generated) < count and (total_frames is None or last + stride * count <= total_frames - 1):
        step = planner.steps[-1]
        raise ValueError(
            f"count: {count} new frames at stride {stride} do not fit next to the {len(step.known)} known frames "
            f"{step.known} (window {window}, {max_positions} positions); at most {len(generated)}, or 0 = auto")
    return planner.steps[-1]


def interpolation_steps(exists: Collection[int], window: int, max_positions: int,
                        anchor_gap: int = ANCHOR_GAP) -> list[PlanStep]:
    """The controller's interpolation steps for every gap between existing frames, left to right.

    A gap is filled in steps of at most ``window`` frames: frame 0 (the anchor) when it exists, the
    gap's two ends, one more existing frame on each side when it fits, and new frames."""
    frames = sorted({int(f) for f in exists})
    gaps = [(a, b) for a, b in pairwise(frames) if b - a > 1]
    anchored = bool(frames) and frames[0] == 0
    if gaps and window - anchored - 2 < 1:
        raise ValueError(f"window: {window} leaves no room for a gap frame next to two ends"
                         f"{' and the anchor' if anchored else ''}; use >= {3 + anchored}")
    planner = _planner(frames, max(frames, default=0) + 1, window, max_positions, 1, anchor_gap)
    for a, b in gaps:
        planner.interpolate(a, b)
    return planner.steps


def stage_steps(plan: Sequence[PlanStep], kind: TaskKind) -> list[tuple[int, PlanStep]]:
    """(step index, step) of every step of ``kind`` in a plan."""
    return [(i, step) for i, step in enumerate(plan) if step.kind == kind]


def stage_calls(plan: Sequence[PlanStep]) -> list[tuple[TaskKind, list[tuple[int, PlanStep]]]]:
    """A plan as stage node calls: the starter, then per extrapolation step one extrapolate call followed
    (stride > 1) by one interpolate call for the interpolation steps right after it."""
    calls: list[tuple[TaskKind, list[tuple[int, PlanStep]]]] = []
    for i, step in enumerate(plan):
        if step.kind == "interpolate" and calls and calls[-1][0] == "interpolate":
            calls[-1][1].append((i, step))
        else:
            calls.append((step.kind, [(i, step)]))
    return calls


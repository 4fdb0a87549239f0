"""Autoregressive planner: seed-001 scheme, the shared position rule, plan invariants, streaming helpers, and
the plan one stage at a time (zizi_models/stage_plan.py, what the stage nodes run)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zizi_models.planner import (
    PlanStep,
    format_plan,
    frames_final_after,
    last_use,
    plan_video,
    validate_plan,
    window_positions,
)
from zizi_models.stage_plan import extrapolation_step, interpolation_steps, stage_steps, starter_step

PLAN_20 = """\
  0 starter     0*, 1!, 2!, 3!, 4!, 5!, 6!  @ 0 2 3 4 5 6 7
  1 extrapolate 0*, 2, 6, 10!, 14!, 18!  @ 0 2 6 10 14 18
  2 interpolate 0*, 5, 6, 7!, 8!, 9!, 10  @ 0 2 3 4 5 6 7
  3 interpolate 0*, 9, 10, 11!, 12!, 13!, 14  @ 0 2 3 4 5 6 7
  4 interpolate 0*, 13, 14, 15!, 16!, 17!, 18  @ 0 2 3 4 5 6 7
  5 extrapolate 0*, 16, 17, 18, 19!  @ 0 2 3 4 5"""

PLAN_30 = """\
  0 starter     0*, 1!, 2!, 3!, 4!, 5!, 6!  @ 0 2 3 4 5 6 7
  1 extrapolate 0*, 2, 6, 10!, 14!, 18!, 22!  @ 0 2 6 10 14 18 22
  2 interpolate 0*, 5, 6, 7!, 8!, 9!, 10  @ 0 2 3 4 5 6 7
  3 interpolate 0*, 9, 10, 11!, 12!, 13!, 14  @ 0 2 3 4 5 6 7
  4 interpolate 0*, 13, 14, 15!, 16!, 17!, 18  @ 0 2 3 4 5 6 7
  5 interpolate 0*, 17, 18, 19!, 20!, 21!, 22  @ 0 2 3 4 5 6 7
  6 extrapolate 0*, 14, 18, 22, 26!  @ 0 2 6 10 14
  7 interpolate 0*, 21, 22, 23!, 24!, 25!, 26  @ 0 2 3 4 5 6 7
  8 extrapolate 0*, 24, 25, 26, 27!, 28!, 29!  @ 0 2 3 4 5 6 7"""


# ---------------------------------------------------------------- seed-001 example, exact plans


def test_seed_001_plan_total_20_prints_exactly():
    steps = plan_video(20, window=7, stride=4)
    assert format_plan(steps) == PLAN_20
    validate_plan(steps, 20, window=7, max_positions=32)
    # seed 001 (1-indexed): "1, 2, 3, 7, 11!, 15!, 19!" / "1, 2, 6, 7, 8!, 9!, 10!, 11"
    assert steps[1].generate == (10, 14, 18) and steps[1].known == (0, 2, 6) and steps[1].anchor == 0
    assert steps[2].generate == (7, 8, 9) and steps[2].known == (0, 5, 6, 10)


def test_plan_total_30_prints_exactly():
    steps = plan_video(30, window=7, stride=4)
    assert format_plan(steps) == PLAN_30
    validate_plan(steps, 30, window=7, max_positions=32)


def test_streaming_helpers_on_total_20():
    steps = plan_video(20, window=7, stride=4)
    assert frames_final_after(steps) == [6, 6, 10, 14, 18, 19]
    assert last_use(steps) == {0: 5, 2: 1, 5: 2, 6: 2, 9: 3, 10: 3, 13: 4, 14: 4, 16: 5, 17: 5, 18: 5}


def test_streaming_helpers_without_hint():
    steps = plan_video(3, window=2, hint=False, anchor="none")
    assert [s.generate for s in steps] == [(0, 1), (2,)]
    assert frames_final_after(steps) == [1, 2]
    assert last_use(steps) == {1: 1}
    assert frames_final_after([]) == [] and last_use([]) == {}


def test_plan_step_helpers():
    step = plan_video(20)[2]
    assert step.frames == (0, 5, 6, 7, 8, 9, 10)
    assert step.is_known(5) and not step.is_known(7)
    assert step.is_anchor(0) and not step.is_anchor(5)
    starter = plan_video(5, hint=False)[0]
    assert starter.anchor is None and not starter.is_anchor(0) and starter.positions == (0, 1, 2, 3, 4)


# ---------------------------------------------------------------- small / edge cases


@pytest.mark.parametrize("total", [2, 3, 6, 7])
def test_short_video_is_a_single_starter(total):
    (step,) = plan_video(total, window=7)
    assert step.kind == "starter" and step.known == (0,) and step.anchor == 0
    assert step.generate == tuple(range(1, total))
    (step,) = plan_video(total, window=7, hint=False)
    assert step.known == () and step.anchor is None and step.generate == tuple(range(total))


def test_single_frame():
    assert plan_video(1) == []
    validate_plan([], 1)
    (step,) = plan_video(1, hint=False)
    assert step == PlanStep("starter", (), (0,), None, (0,))


def test_hint_is_starter_anchor_even_without_anchor_policy():
    steps = plan_video(40, anchor="none")
    assert steps[0].anchor == 0 and steps[0].known == (0,)
    assert all(s.anchor is None and 0 not in s.known for s in steps[1:])


def test_without_hint_frame_0_becomes_the_anchor():
    steps = plan_video(40, hint=False)
    assert steps[0].generate[0] == 0 and steps[0].anchor is None
    assert all(s.anchor == 0 and 0 in s.known for s in steps[1:])


def test_interpolate_false_is_contiguous_extrapolation():
    steps = plan_video(30, window=7, stride=4, interpolate=False)
    assert {s.kind for s in steps} == {"starter", "extrapolate"}
    assert steps[1].known == (0, 4, 5, 6) and steps[1].generate == (7, 8, 9)
    assert frames_final_after(steps) == [s.generate[-1] for s in steps]


def test_max_positions_limits_generated_count_not_context():
    steps = plan_video(60, window=16, stride=4, max_positions=16)
    validate_plan(steps, 60, window=16, max_positions=16)
    first = steps[1]
    assert (
        first.kind == "extrapolate" and first.known == (0, 6, 10, 14) and first.generate == (18,)
    )  # 15-frame starter
    assert max(max(s.positions) for s in steps) < 16


def test_starter_shrinks_to_fit_positions():
    (step, *_) = plan_video(40, window=8, max_positions=8)  # hinted starter: gap => 7 frames
    assert step.generate == (1, 2, 3, 4, 5, 6) and step.positions[-1] == 7


def test_long_gap_is_interpolated_in_chunks():
    steps = plan_video(12, window=4, stride=6, hint=False, anchor="none")
    validate_plan(steps, 12, window=4, max_positions=32)
    interp = [s for s in steps if s.kind == "interpolate"]
    assert [s.generate for s in interp] == [(4, 5), (6, 7), (8,)]
    assert all(9 in s.known for s in interp)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(total_frames=0), "total_frames"),
        (dict(total_frames=-3), "total_frames"),
        (dict(total_frames=10, window=1), "window"),
        (dict(total_frames=10, stride=0), "stride"),
        (dict(total_frames=10, window=8, max_positions=7), "max_positions"),
        (dict(total_frames=10, context_frames=0), "context_frames"),
        (dict(total_frames=10, anchor="last"), "anchor"),
        (dict(total_frames=2.5), "total_frames"),
    ],
)
def test_bad_arguments_name_argument_and_range(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be") as err:
        plan_video(**kwargs)
    assert ">=" in str(err.value) or "'first' or 'none'" in str(err.value)


def test_max_positions_error_names_the_window():
    with pytest.raises(ValueError, match=r"max_positions=8") as err:
        plan_video(40, window=8, stride=6, max_positions=8)
    msg = str(err.value)
    assert "\n" not in msg and "frames (0, 6, 12)" in msg and "0..8" in msg


def test_window_too_small_for_interpolation():
    with pytest.raises(ValueError, match=r"window=3 is too small for interpolation"):
        plan_video(20, window=3, stride=2)
    validate_plan(plan_video(20, window=3, stride=2, interpolate=False), 20, window=3)
    validate_plan(plan_video(20, window=3, stride=2, anchor="none"), 20, window=3)


# ---------------------------------------------------------------- the position rule


def test_window_positions_rule():
    assert window_positions((0, 100, 104, 108), 0, 32) == (0, 2, 6, 10)  # far-away anchor stays cheap
    assert window_positions((0, 1, 2), 0, 32) == (0, 2, 3)
    assert window_positions((5, 9, 13), None, 32) == (0, 4, 8)
    assert window_positions((5, 9, 13), 0, 32) == (0, 4, 8)  # anchor not in frames: no gap
    assert window_positions((0, 3, 4), 0, 32, anchor_gap=1) == (0, 1, 2)
    assert window_positions((0,), 0, 1) == (0,)
    assert window_positions((), None, 1) == ()


def test_window_positions_errors():
    with pytest.raises(ValueError, match=r"^window frames \(0, 10, 20\) .*0\.\.12.*max_positions=12$"):
        window_positions((0, 10, 20), 0, 12)
    with pytest.raises(ValueError, match="ascending"):
        window_positions((3, 2), None, 32)


# ---------------------------------------------------------------- validate_plan catches broken plans


def _replace(steps, i, **changes):
    steps = list(steps)
    steps[i] = dataclasses.replace(steps[i], **changes)
    return steps


@pytest.mark.parametrize(
    "mutate,pattern",
    [
        (lambda s: s[:-1], r"never generated: \[19\]"),
        (
            lambda s: _replace(s, 2, generate=(7, 8, 9, 10), known=(0, 5, 6)),
            "step 2 .*frame 10 generated again",
        ),
        (lambda s: _replace(s, 1, known=(0, 2, 7)), "step 1 .*frame 7 is known but not generated"),
        (lambda s: _replace(s, 2, positions=(0, 1, 2, 3, 4, 5, 6)), "step 2 .*frame 5 has position 1"),
        (lambda s: _replace(s, 3, anchor=9), "step 3 .*anchor frame 9"),
        (lambda s: _replace(s, 3, generate=()), "step 3 .*generates no frame"),
        (lambda s: _replace(s, 0, generate=(1, 2, 3, 4, 5, 6, 20)), "step 0 .*frame 20 outside"),
        (lambda s: _replace(s, 5, known=(0, 16, 17, 18, 19), generate=(19,)), "step 5 .*frame 19 is both"),
        (lambda s: _replace(s, 4, kind="starter"), "step 4 .*starter must be the first"),
        (lambda s: _replace(s, 4, kind="jump"), "step 4 .*unknown kind"),
        (lambda s: _replace(s, 0, generate=(0, 1, 2, 3, 4, 5, 6), known=(), anchor=None), "step 0 .*frame 0"),
    ],
)
def test_validate_plan_rejects(mutate, pattern):
    steps = plan_video(20, window=7, stride=4)
    with pytest.raises(ValueError, match=pattern):
        validate_plan(mutate(steps), 20, hint=True)


def test_validate_plan_checks_window_and_max_positions():
    steps = plan_video(20, window=7, stride=4)
    with pytest.raises(ValueError, match=r"step 0 .*7 frames > window 6"):
        validate_plan(steps, 20, window=6)
    with pytest.raises(ValueError, match=r"step 1 .*frame 18 position 18 outside \[0, 16\)"):
        validate_plan(steps, 20, max_positions=16)


def test_validate_plan_checks_interpolation_and_extrapolation_shape():
    steps = plan_video(20, window=7, stride=4)
    bad = _replace(steps, 1, kind="interpolate")
    with pytest.raises(ValueError, match=r"step 1 .*interpolated frame 10 is not between"):
        validate_plan(bad, 20)
    bad = _replace(steps, 2, kind="extrapolate")
    with pytest.raises(ValueError, match=r"step 2 .*extrapolated frame 7 is before known frame 10"):
        validate_plan(bad, 20)


# ---------------------------------------------------------------- property tests


def expected_rejection(total, window, stride, anchor, max_positions, hint, interpolate, context):
    """The argument a valid (already range-checked) call must be rejected for, or None.

    Independent of the planner's code: the starter's size and the grid follow the module docstring.
    """
    a = 1 if anchor == "first" else 0
    gap = 2 if a else 0
    s = stride if interpolate else 1
    if total == 1:
        return None
    if hint and max_positions < 3:  # frame 1 sits at position anchor_gap = 2
        return "max_positions"
    last = min(window, max_positions - 1 if hint else max_positions, total) - 1
    if last == total - 1:
        return None
    if window < 2 + a:  # anchor + 1 known + 1 generated
        return "window"
    stride_phase = last + s <= total - 1
    if stride_phase and max_positions - 1 - gap < s:  # 1 known + 1 generated at stride s
        return "max_positions"
    if stride_phase and s > 1 and window < 3 + a:  # anchor + 2 endpoints + 1 generated
        return "window"
    if (total - 1 - last) % s and max_positions - 1 - gap < 1:  # tail at stride 1
        return "max_positions"
    return None


@st.composite
def plan_args(draw):
    window = draw(st.integers(2, 16))
    return dict(
        total_frames=draw(st.integers(1, 400)),
        window=window,
        stride=draw(st.integers(1, 8)),
        anchor=draw(st.sampled_from(["first", "none"])),
        max_positions=draw(st.integers(window, 64)),
        hint=draw(st.booleans()),
        interpolate=draw(st.booleans()),
        context_frames=draw(st.integers(1, 4)),
    )


def check_invariants(steps, total, window, stride, anchor, max_positions, hint, interpolate, context_frames):
    """Independent re-statement of the invariants (validate_plan is also run)."""
    validate_plan(steps, total, window=window, max_positions=max_positions, hint=hint)
    counts = Counter(f for s in steps for f in s.generate)
    expected = set(range(1 if hint else 0, total))
    assert set(counts) == expected and all(c == 1 for c in counts.values())
    exists = {0} if hint else set()
    s_eff = stride if interpolate else 1
    for i, step in enumerate(steps):
        assert step.generate and not set(step.generate) & set(step.known)
        assert list(step.known) == sorted(step.known) and list(step.generate) == sorted(step.generate)
        assert set(step.known) <= exists, f"step {i} reads a frame before it exists"
        frames = step.frames
        assert all(0 <= f < total for f in frames) and len(frames) <= window
        assert step.positions == window_positions(frames, step.anchor, max_positions)
        assert all(0 <= p < max_positions for p in step.positions)
        assert all(b > a for a, b in pairwise(step.positions))
        if i == 0:
            assert step.kind == "starter"
            assert step.anchor == (0 if hint else None)
            assert step.generate == tuple(range(1 if hint else 0, len(frames)))
        else:
            assert step.kind != "starter"
            assert step.anchor == (0 if anchor == "first" else None)
            assert len(step.known) - (step.anchor is not None) >= 1
        if step.anchor is not None:
            assert step.anchor == 0 and step.is_known(0)
        if step.kind == "extrapolate":
            diffs = {b - a for a, b in pairwise(step.generate)}
            assert diffs <= {s_eff} or diffs == {1}  # stride grid, or the contiguous tail
            assert step.generate[0] - max(f for f in step.known if f != step.anchor) in (s_eff, 1)
            assert len(step.known) - (step.anchor is not None) <= context_frames
        if step.kind == "interpolate":
            assert interpolate and stride > 1
        exists |= set(step.generate)
    assert exists == set(range(total))

    # streaming / memory: frames become final in order with a lag and a live set that do not grow with total
    final = frames_final_after(steps)
    uses = last_use(steps)
    assert final == sorted(final) and (not steps or final[-1] == total - 1)
    exists = {0} if hint else set()
    for i, step in enumerate(steps):
        exists |= set(step.generate)
        assert all(f in exists for f in range(final[i] + 1)) and final[i] + 1 not in exists
        assert max(exists) - final[i] <= window * s_eff
        live = [f for f in exists if uses.get(f, -1) > i or f > final[i]]
        assert len(live) <= window * (s_eff + 1)
    for f, i in uses.items():
        assert steps[i].is_known(f) and not any(s.is_known(f) for s in steps[i + 1 :])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_args())
def test_plan_invariants(args):
    reason = expected_rejection(*args.values())
    if reason is not None:
        with pytest.raises(ValueError, match=rf"\b{reason}=") as err:
            plan_video(**args)
        assert "\n" not in str(err.value)
        return
    steps = plan_video(**args)
    check_invariants(
        steps,
        args["total_frames"],
        args["window"],
        args["stride"],
        args["anchor"],
        args["max_positions"],
        args["hint"],
        args["interpolate"],
        args["context_frames"],
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 400),
    st.integers(7, 16),
    st.integers(2, 6),
    st.booleans(),
    st.sampled_from(["first", "none"]),
)
def test_default_like_settings_are_never_rejected(total, window, stride, hint, anchor):
    steps = plan_video(total, window=window, stride=stride, hint=hint, anchor=anchor, max_positions=32)
    check_invariants(steps, total, window, stride, anchor, 32, hint, True, 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.integers(3, 16), st.integers(1, 8))
def test_windows_are_full_when_frames_remain(total, window, stride):
    """Steps waste no capacity: every extrapolation fills the window unless the video ends or context runs out."""
    steps = plan_video(total, window=window, stride=stride, interpolate=False, max_positions=64)
    for step in steps[1:]:
        if step.generate[-1] < total - 1:
            assert len(step.frames) == window or len(step.known) - 1 < 3


def test_planning_is_linear_in_the_frame_count() -> None:
    """100,000 frames (the controller's maximum) plan in about a second; the old planner took 90 s
    (quadratic: every interpolation step scanned every existing frame)."""
    import time

    def seconds(total: int) -> float:
        started = time.perf_counter()
        steps = plan_video(total, window=8, stride=4)
        assert sum(len(s.generate) for s in steps) == total - 1
        return time.perf_counter() - started

    small, large = min(seconds(10_000) for _ in range(2)), min(seconds(100_000) for _ in range(2))
    assert large < 5.0  # < 1 s on an idle core; slack for a busy CI machine
    assert large / small < 25  # 10x the frames: ~10x the time (quadratic would be ~100x)


def test_long_plans_print_as_a_summary() -> None:
    steps = plan_video(100_000, window=8, stride=4)
    text = format_plan(steps, max_lines=20)
    lines = text.splitlines()
    assert len(lines) <= 21 and len(text) < 4000
    counts = {kind: sum(1 for s in steps if s.kind == kind) for kind in ("starter", "extrapolate", "interpolate")}
    assert lines[0].startswith(f"{len(steps)} steps: starter 1 steps / 7 frames, extrapolate {counts['extrapolate']} steps")
    assert lines[1] == format_plan(steps[:1])  # the first step exactly as in the full plan
    assert lines[-1] == format_plan(steps).splitlines()[-1]  # the last one too
    assert "steps not shown" in text
    short = plan_video(23, window=7, stride=4)
    assert format_plan(short, max_lines=20) == format_plan(short)  # short plans print in full


# ---------------------------------------------------------------- the plan one stage at a time (stage nodes)


def replay_by_stage(total, window, stride, max_positions, hint, interpolate, context_frames, by_count):
    """What a graph of stage nodes computes with the controller's settings, as (step index, step): a starter of
    `window` frames, then per round one extrapolation (told total_frames, or the count of the controller's step and
    its stride) and, at stride > 1, one interpolation. Step indices are counted along as the nodes' zizi_step."""
    plan = plan_video(total, window=window, stride=stride, max_positions=max_positions, hint=hint,
                      interpolate=interpolate, context_frames=context_frames)
    extrapolations = iter(stage_steps(plan, "extrapolate"))
    s = stride if interpolate else 1
    out, exists = [], ({0} if hint else set())

    def run(steps):
        for step in steps:
            out.append((len(out), step))
            exists.update(step.generate)

    first = starter_step(min(window, total), max_positions, hint)
    if first is not None:
        run([first])
    while max(exists) < total - 1:
        if by_count:  # the user copies the controller's step: its count, and its stride (1 in the tail)
            _, ref = next(extrapolations)
            previous = max(f for f in ref.known if f != ref.anchor) if len(ref.known) > (ref.anchor is not None) else 0
            step_stride = ref.generate[0] - previous
            run([extrapolation_step(exists, window, step_stride, max_positions, context_frames, count=len(ref.generate))])
        else:
            run([extrapolation_step(exists, window, s, max_positions, context_frames, total_frames=total)])
        if s > 1:
            run(interpolation_steps(exists, window, max_positions))
    return plan, out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_args(), st.booleans())
def test_stage_by_stage_replay_is_the_controllers_plan(args, by_count):
    """The stage nodes' planning (zizi_models/stage_plan.py), chained as a user mirrors a controller run, takes
    exactly the controller's steps, with the controller's step indices (which seed each step)."""
    args = {**args, "anchor": "first"}  # the controller always anchors frame 0
    assume(expected_rejection(*args.values()) is None)
    args.pop("anchor")
    plan, replayed = replay_by_stage(*args.values(), by_count=by_count)
    assert replayed == list(enumerate(plan))


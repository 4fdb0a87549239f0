"""ZiziPoseRender refuses absurd sizes by name before it allocates (a 200000 x 200000 canvas once asked for 480 GB)."""

from __future__ import annotations

import pytest


def pose(width: int, height: int, frames: int = 2) -> list[dict]:
    return [{"version": 1.3, "units": "pixels", "canvas_width": width, "canvas_height": height, "people": []}] * frames


@pytest.fixture(scope="module")
def common(comfy_pack):
    return comfy_pack.nodes.pose_common


def test_canvas_sized_render_over_the_limit_is_refused_by_name(common) -> None:
    with pytest.raises(ValueError) as err:
        common.render_size(pose(200_000, 200_000), 0, 0)
    message = str(err.value)
    assert message.startswith("width: the pose canvas (200000 x 200000) gives width 200000")
    assert str(common.MAX_RENDER_SIDE) in message and "\n" not in message


def test_aspect_kept_side_over_the_limit_is_refused(common) -> None:
    with pytest.raises(ValueError, match=r"^height: the pose canvas \(100 x 100000\) gives height 512000"):
        common.render_size(pose(100, 100_000), 512, 0)


def test_batch_larger_than_available_memory_is_refused(common, monkeypatch) -> None:
    monkeypatch.setattr(common.psutil, "virtual_memory", lambda: type("VM", (), {"available": 100 * 2**20})())
    with pytest.raises(ValueError, match=r"^pose_keypoint: 50 frames at 512 x 512 need 0\.1 GiB, 0\.1 GiB available"):
        common.render_size(pose(512, 512, frames=50), 0, 0)
    assert common.render_size(pose(512, 512, frames=10), 0, 0) == (512, 512)  # 30 MiB fits


def test_sizes_within_the_limit_resolve_as_before(common) -> None:
    limit = common.MAX_RENDER_SIDE
    assert common.render_size(pose(640, 480), 0, 0) == (640, 480)
    assert common.render_size(pose(640, 480), 320, 0) == (320, 240)
    assert common.render_size(pose(20_000, 10_000), limit, 0) == (limit, limit // 2)

"""OpenPose ControlNet rendering: colours, toggles, sizes."""

import numpy as np

from zizi_models.pose.render import HAND_EDGE_COLORS, render_frame, render_pose_keypoint, stroke_sizes
from zizi_models.pose.schema import empty_frame, frame_from_arrays
from zizi_models.pose.skeleton import (
    BODY_COLORS,
    FACE_SLICE,
    HAND_LEFT_SLICE,
    K_ALL,
    L_SHOULDER,
    NECK,
    R_SHOULDER,
)


def _frame(points: dict[int, tuple[float, float]], width=512, height=512):
    pts = np.zeros((K_ALL, 3))
    for k, (x, y) in points.items():
        pts[k] = (x, y, 0.9)
    return frame_from_arrays([0], pts[None], width, height)


def test_known_limb_and_joint_pixels_have_openpose_colours():
    frame = _frame({NECK: (256, 100), R_SHOULDER: (156, 100), L_SHOULDER: (356, 100)})
    img = render_frame(frame)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    # limb 0 (neck - right shoulder) is [255, 0, 0] x 0.6; limb 1 (neck - left shoulder) [255, 85, 0] x 0.6
    assert tuple(img[100, 206]) == (153, 0, 0)
    assert tuple(img[100, 306]) == (153, 51, 0)
    # joints: neck = colour 1, right shoulder = colour 2, left shoulder = colour 5
    assert tuple(img[100, 256]) == BODY_COLORS[1]
    assert tuple(img[100, 156]) == BODY_COLORS[2]
    assert tuple(img[100, 356]) == BODY_COLORS[5]
    assert tuple(img[300, 300]) == (0, 0, 0)  # black background
    # limb half-width 4 at 512: 3 px off the axis is still limb, 7 px is background
    assert tuple(img[103, 206]) == (153, 0, 0) and tuple(img[107, 206]) == (0, 0, 0)


def test_render_any_size_scales_positions_and_strokes():
    frame = _frame({NECK: (256, 100), R_SHOULDER: (156, 100)})
    img = render_frame(frame, width=1024, height=768)
    assert img.shape == (768, 1024, 3)
    assert tuple(img[150, 412]) == (153, 0, 0)  # (206, 100) scaled by (2, 1.5)
    assert tuple(img[150, 512]) == BODY_COLORS[1]
    assert stroke_sizes(1024, 768)["limb"] == 6 and stroke_sizes(256, 256)["limb"] == 2
    assert stroke_sizes(64, 64)["hand_line"] == 1  # never thinner than 1 px


def test_missing_points_are_not_drawn_and_empty_frames_are_blank():
    frame = _frame({NECK: (256, 100)})  # right shoulder missing: no limb
    img = render_frame(frame)
    assert tuple(img[100, 206]) == (0, 0, 0)
    assert img.sum() > 0
    blank = render_pose_keypoint([empty_frame(320, 240), empty_frame(320, 240)], as_float=True)
    assert blank.shape == (2, 240, 320, 3) and blank.dtype == np.float32 and blank.max() == 0.0


def test_hands_face_and_toggles():
    pts = np.zeros((K_ALL, 3))
    hand = pts[HAND_LEFT_SLICE]
    hand[0] = (100, 300, 1.0)
    hand[1] = (200, 300, 1.0)  # edge 0: wrist -> thumb base
    pts[FACE_SLICE][0] = (400, 400, 1.0)
    frame = frame_from_arrays([0], pts[None], 512, 512)
    img = render_frame(frame)
    assert tuple(img[300, 150]) == HAND_EDGE_COLORS[0] == (255, 0, 0)
    assert tuple(img[300, 100]) == (0, 0, 255)  # hand joints are blue
    assert tuple(img[400, 400]) == (255, 255, 255)  # face points are white
    assert HAND_EDGE_COLORS[5] == (128, 255, 0)  # hue 5/20 of the HSV rainbow (127.5 rounds like cv2)
    no_hands = render_frame(frame, draw_hands=False)
    assert no_hands[300].sum() == 0 and tuple(no_hands[400, 400]) == (255, 255, 255)
    no_face = render_frame(frame, draw_face=False)
    assert tuple(no_face[400, 400]) == (0, 0, 0)


def test_float_output_matches_uint8():
    frame = _frame({NECK: (256, 100), R_SHOULDER: (156, 100)})
    as_u8 = render_pose_keypoint([frame])
    as_f = render_pose_keypoint([frame], as_float=True)
    np.testing.assert_allclose(as_f * 255.0, as_u8.astype(np.float32), atol=1e-3)

"""Keypoint layouts, skeleton edges and drawing colours (OpenPose / ControlNet conventions).

Everything here is a constant: no numpy arrays are mutated, no I/O.

Layouts
-------
* body: 18 points, OpenPose COCO-18 order (``BODY_NAMES``).
* hands: 21 points each, OpenPose / MediaPipe hand order (wrist, then 4 points per finger
  from thumb to little finger, base to tip).
* face: 70 points, OpenPose face order (dlib 68 + 2 pupils):
  jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35,
  right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67, pupils 68 (right), 69 (left).
  "Right"/"left" are the subject's; jaw point 0 is on the image-left side for a subject facing
  the camera.

Internally a person is one ``[K_ALL=130, 3]`` array (x, y, confidence) with the parts
concatenated in the order body, left hand, right hand, face (see the ``*_SLICE`` constants).
"""

from __future__ import annotations

N_BODY = 18
N_HAND = 21
N_FACE = 70
N_FACE_NO_PUPILS = 68  # DWPose / dlib style faces without the two pupils
K_ALL = N_BODY + 2 * N_HAND + N_FACE  # 130

BODY_SLICE = slice(0, N_BODY)
HAND_LEFT_SLICE = slice(N_BODY, N_BODY + N_HAND)
HAND_RIGHT_SLICE = slice(N_BODY + N_HAND, N_BODY + 2 * N_HAND)
FACE_SLICE = slice(N_BODY + 2 * N_HAND, K_ALL)

# POSE_KEYPOINT field name -> (slice in the 130-point layout, number of points)
PART_FIELDS: dict[str, tuple[slice, int]] = {
    "pose_keypoints_2d": (BODY_SLICE, N_BODY),
    "hand_left_keypoints_2d": (HAND_LEFT_SLICE, N_HAND),
    "hand_right_keypoints_2d": (HAND_RIGHT_SLICE, N_HAND),
    "face_keypoints_2d": (FACE_SLICE, N_FACE),
}

BODY_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

# The 17 limbs of the standard OpenPose/ControlNet drawing, in drawing order (0-based joints).
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# 18 RGB colours; joint j is drawn with colour j, limb i with colour i scaled by LIMB_COLOR_SCALE.
BODY_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
LIMB_COLOR_SCALE = 0.6


def limb_color(i: int) -> tuple[int, int, int]:
    """RGB colour of body limb ``i`` as drawn by ControlNet's OpenPose annotator."""
    r, g, b = BODY_COLORS[i]
    return int(r * LIMB_COLOR_SCALE), int(g * LIMB_COLOR_SCALE), int(b * LIMB_COLOR_SCALE)


# The 20 hand edges; edge i gets the HSV rainbow colour hue = i / 20.
HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)
HAND_JOINT_COLOR = (0, 0, 255)
FACE_COLOR = (255, 255, 255)

# Kinematic tree of the body rooted at the neck: (parent, child) bones, parents before children.
BODY_TREE: tuple[tuple[int, int], ...] = (
    (NECK, NOSE), (NECK, R_SHOULDER), (NECK, L_SHOULDER), (NECK, R_HIP), (NECK, L_HIP),
    (NOSE, R_EYE), (NOSE, L_EYE), (R_EYE, R_EAR), (L_EYE, L_EAR),
    (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST),
    (R_HIP, R_KNEE), (R_KNEE, R_ANKLE), (L_HIP, L_KNEE), (L_KNEE, L_ANKLE),
)

# Face points 36-41 / 42-47 are the right / left eye contours; 68 / 69 the pupils.
FACE_RIGHT_EYE = tuple(range(36, 42))
FACE_LEFT_EYE = tuple(range(42, 48))
FACE_RIGHT_PUPIL, FACE_LEFT_PUPIL = 68, 69

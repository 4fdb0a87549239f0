"""The synthetic puppet world: motions (schema, determinism, framing, gait), rendering, clips."""

import dataclasses

import cv2
import numpy as np
import pytest

from zizi_models.pose.schema import body_keypoints, validate_pose_keypoint
from zizi_models.pose.skeleton import (
    L_ANKLE,
    L_EAR,
    L_SHOULDER,
    L_WRIST,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_SHOULDER,
    R_WRIST,
)
from zizi_models.puppet import (
    APPEARANCE_CAPTION,
    BODY_PARTS,
    CHARACTERS,
    MOTIONS,
    appearance_split,
    character_caption,
    demo_clip,
    demo_sequence,
    generate_motion,
    make_clip,
    mixed_motion,
    random_appearance,
    random_clip,
    render_clip,
    render_part_labels,
    render_puppet,
)
from zizi_models.puppet.appearance import HUE_BANDS, UNSEEN_BANDS, hue_band


def _body(poses):
    """[T, 18, 3] of person 0."""
    return np.stack([body_keypoints(f)[0] for f in poses])


def _crossings(x):
    s = np.sign(x)
    return int(np.sum(s[1:] * s[:-1] < 0))


@pytest.mark.parametrize("kind", MOTIONS)
def test_motions_are_strict_pose_keypoint(kind):
    poses = generate_motion(kind, 20, 64, 48, speed=1.3, seed=5)
    validate_pose_keypoint(poses)
    assert len(poses) == 20
    for f in poses:
        assert (f["canvas_width"], f["canvas_height"], f["units"]) == (64, 48, "pixels")
        assert [p["person_id"] for p in f["people"]] == [0]
        person = f["people"][0]
        assert not any(person["hand_left_keypoints_2d"]) and not any(person["face_keypoints_2d"])
    body = _body(poses)
    assert set(np.unique(body[..., 2])) <= {0.0, 1.0}
    assert np.all(body[:, :14, 2] == 1.0)  # all joints present; only eyes/ears may be hidden


def test_mixed_motion_is_valid_long_and_smooth():
    poses = mixed_motion(300, 64, 64, seed=1)
    validate_pose_keypoint(poses)
    body = _body(poses)
    assert body.shape == (300, 18, 3)
    joints = body[:, :14, :2]
    step = np.abs(np.diff(joints, axis=0)).max()
    assert step < 0.12 * 64  # no jumps at the transitions


def test_deterministic_and_seed_dependent():
    a = generate_motion("dance", 30, 64, 64, speed=1.5, seed=3)
    assert a == generate_motion("dance", 30, 64, 64, speed=1.5, seed=3)
    assert a != generate_motion("dance", 30, 64, 64, speed=1.5, seed=4)
    assert mixed_motion(60, 64, 64, seed=2) == mixed_motion(60, 64, 64, seed=2)
    ch = CHARACTERS["mint"]
    assert np.array_equal(render_clip(a[:3], ch), render_clip(a[:3], ch))


@pytest.mark.parametrize("kind", (*MOTIONS, "mixed"))
@pytest.mark.parametrize("size", [(64, 64), (96, 64), (48, 80)])
def test_person_stays_inside_the_frame(kind, size):
    w, h = size
    poses = mixed_motion(240, w, h, 0) if kind == "mixed" else generate_motion(kind, 96, w, h, seed=2)
    body = _body(poses)
    present = body[..., 2] > 0
    assert np.all(body[..., 0][present] >= 0) and np.all(body[..., 0][present] <= w - 1)
    assert np.all(body[..., 1][present] >= 0) and np.all(body[..., 1][present] <= h - 1)
    ch = CHARACTERS["ruby"]
    for frame in poses[::8]:
        img = render_puppet(frame, ch).astype(int)
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        assert np.abs(border - np.array(ch.background)).max() <= 2


def test_height_fraction():
    ch = CHARACTERS["violet"]
    for kind in ("idle", "walk"):
        img = render_puppet(generate_motion(kind, 1, 128, 128)[0], ch)
        rows = np.where(np.any(np.abs(img.astype(int) - ch.background).sum(-1) > 30, axis=1))[0]
        assert 0.70 <= (rows[-1] - rows[0] + 1) / 128 <= 0.85
    body = _body(generate_motion("idle", 1, 128, 128))[0]
    assert 0.6 <= (body[[R_ANKLE, L_ANKLE], 1].max() - body[NOSE, 1]) / 128 <= 0.75
    assert body[NOSE, 1] < body[NECK, 1] < body[R_ANKLE, 1]  # head up, feet down


def test_walk_legs_alternate_and_speed_scales_the_cycle():
    slow = _body(generate_motion("walk", 96, 128, 128, speed=1.0, seed=1))
    fast = _body(generate_motion("walk", 96, 128, 128, speed=2.0, seed=1))
    d1 = slow[:, R_ANKLE, 0] - slow[:, L_ANKLE, 0]
    d2 = fast[:, R_ANKLE, 0] - fast[:, L_ANKLE, 0]
    assert d1[:24].min() < -5 and d1[:24].max() > 5  # one stride cycle: each leg leads once
    n1, n2 = _crossings(d1), _crossings(d2)
    assert 7 <= n1 <= 9  # 96 frames = 4 cycles of 24 at speed 1 -> 8 sign changes
    assert abs(n2 - 2 * n1) <= 1
    # arms swing against the legs: right wrist leads when the left ankle leads
    w = slow[:, R_WRIST, 0] - slow[:, L_WRIST, 0]
    assert np.corrcoef(w, -d1)[0, 1] > 0.8


def test_turn_changes_width_and_swaps_sides():
    body = _body(generate_motion("turn", 96, 128, 128, seed=0))
    across = body[:, L_SHOULDER, 0] - body[:, R_SHOULDER, 0]
    width = np.abs(across)
    assert width.min() / width.max() < 0.5
    assert across.min() < -10 and across.max() > 10  # left/right swap through the turn
    one_ear = (body[:, R_EAR, 2] > 0) != (body[:, L_EAR, 2] > 0)
    assert one_ear.any() and not one_ear.all()  # profile views hide the far ear


def test_render_colours_and_missing_limb():
    ch = CHARACTERS["sunny"]
    frame = generate_motion("idle", 1, 128, 128, seed=0)[0]
    img = render_puppet(frame, ch)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    body = body_keypoints(frame)[0]
    nx, ny = np.round(body[NOSE, :2]).astype(int)
    assert tuple(img[ny, nx]) == ch.head
    assert tuple(img[0, 0]) == ch.background and tuple(img[-1, -1]) == ch.background
    mid = np.round((body[R_ELBOW, :2] + body[R_WRIST, :2]) / 2).astype(int)
    assert tuple(img[mid[1], mid[0]]) == ch.lower_arm_right

    missing = {**frame, "people": [dict(frame["people"][0])]}
    kp = list(missing["people"][0]["pose_keypoints_2d"])
    kp[3 * R_WRIST : 3 * R_WRIST + 3] = [0.0, 0.0, 0.0]
    missing["people"][0]["pose_keypoints_2d"] = kp
    img2 = render_puppet(missing, ch)
    changed = np.any(img != img2, axis=-1)
    assert changed.sum() > 20
    # the forearm is gone: no pixel keeps its colour; what it covered is background or the body behind
    assert np.sum(np.all(img == ch.lower_arm_right, axis=-1)) > 20
    assert not np.any(np.all(img2 == ch.lower_arm_right, axis=-1))
    wx, wy = np.round(body[R_WRIST, :2]).astype(int)
    assert tuple(img[wy, wx]) == ch.lower_arm_right and tuple(img2[wy, wx]) != ch.lower_arm_right


def test_left_and_right_limbs_have_different_shades():
    for ch in CHARACTERS.values():
        assert ch.upper_arm_left != ch.upper_arm_right and ch.lower_leg_left != ch.lower_leg_right


def test_small_render_matches_downsampled_large_render():
    ch = CHARACTERS["forest"]
    for frame in generate_motion("dance", 16, 256, 256, seed=2)[::5]:
        big = render_puppet(frame, ch)
        small = render_puppet(frame, ch, 64, 64)
        down = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
        assert small.shape == (64, 64, 3)
        assert np.abs(small.astype(float) - down).mean() < 3.0


def test_characters_and_captions():
    assert len(CHARACTERS) >= 4
    for name, ch in CHARACTERS.items():
        assert ch.name == name
        for colour in ch.body_colours():
            assert np.linalg.norm(np.subtract(colour, ch.background, dtype=float)) > 80
        caption = character_caption(ch)
        assert caption.startswith("a puppet with") and caption.endswith("background")
    assert "red torso" in character_caption(CHARACTERS["ruby"])
    assert len({character_caption(c) for c in CHARACTERS.values()}) == len(CHARACTERS)


def test_clips():
    a, b = random_clip(11, 8, 32), random_clip(11, 8, 32)
    assert (a.kind, a.speed, a.seed, a.character) == (b.kind, b.speed, b.seed, b.character)
    assert np.array_equal(a.frames, b.frames) and a.frames.shape == (8, 32, 32, 3)
    assert a.kind in MOTIONS and 0.5 <= a.speed <= 2.0 and a.caption == APPEARANCE_CAPTION
    assert a.character.startswith("train-")  # training clips draw their look from the train split
    assert len({random_clip(s, 2, 16).kind for s in range(12)}) > 1
    assert len({random_clip(s, 1, 16).frames.tobytes() for s in range(12)}) == 12
    named = random_clip(11, 8, 32, world=1)  # world 1: a named character with its caption (the shipped weights)
    assert named.character in CHARACTERS and named.caption == character_caption(CHARACTERS[named.character])
    with pytest.raises(ValueError, match="world"):
        random_clip(11, 8, 32, world=3)
    demo = demo_sequence(frames=40, size=32)
    assert demo.kind == "mixed" and demo.frames.shape == (40, 32, 32, 3) and len(demo.poses) == 40
    held_out = demo_clip(4, 32, seed=0, appearance_seed=3)
    assert held_out.character == "unseen-3" and held_out.caption == APPEARANCE_CAPTION
    clip = make_clip("turn", 4, 32, speed=0.5, character=CHARACTERS["mint"], seed=1)
    assert clip.character == "mint" and clip.frames.dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kind": "jump"}, "kind"),
        ({"frames": 0}, "frames"),
        ({"width": 8}, "width"),
        ({"height": 15}, "height"),
        ({"speed": 0.0}, "speed"),
        ({"speed": -1.0}, "speed"),
    ],
)
def test_bad_inputs_raise(kwargs, name):
    args = {"kind": "walk", "frames": 4, "width": 64, "height": 64, "speed": 1.0, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=name):
        generate_motion(**args)


def test_bad_inputs_name_valid_values():
    with pytest.raises(ValueError, match="walk, dance, turn, idle"):
        generate_motion("jump", 4, 64, 64)
    with pytest.raises(ValueError, match="frames"):
        mixed_motion(0, 64, 64)
    with pytest.raises(ValueError, match="character"):
        make_clip("walk", 2, 32, character="nobody")
    with pytest.raises(ValueError, match="mixed"):
        make_clip("jump", 2, 32)


def test_appearance_splits_are_disjoint_by_construction():
    train = [random_appearance(seed, "train") for seed in range(1500)]
    unseen = [random_appearance(seed, "unseen") for seed in range(500)]
    assert {appearance_split(c) for c in train} == {"train"} and {appearance_split(c) for c in unseen} == {"unseen"}
    assert {hue_band(c.torso) for c in unseen} == set(UNSEEN_BANDS)
    assert {hue_band(c.torso) for c in train} == set(range(HUE_BANDS)) - UNSEEN_BANDS  # every other band is used
    assert not {c.torso for c in train} & {c.torso for c in unseen}
    assert random_appearance(7, "unseen") == random_appearance(7, "unseen") != random_appearance(8, "unseen")
    with pytest.raises(ValueError, match="split"):
        random_appearance(0, "test")


def test_appearances_vary_in_every_attribute_and_keep_the_background_apart():
    looks = [random_appearance(seed, "train") for seed in range(300)]
    for attribute in ("head", "torso", "upper_arm_right", "lower_leg_right", "background"):
        assert len({getattr(c, attribute) for c in looks}) > 250
    assert {c.pattern for c in looks} == {"flat", "stripes_h", "stripes_v", "checker"}
    assert min(c.limb_thickness for c in looks) < 0.9 and max(c.limb_thickness for c in looks) > 1.2
    assert min(c.head_scale for c in looks) < 0.9 and max(c.head_scale for c in looks) > 1.15
    for c in looks:
        assert c.upper_arm_left != c.upper_arm_right
        for colour in c.body_colours():
            assert np.linalg.norm(np.subtract(colour, c.background, dtype=float)) >= 80


def test_patterned_background_and_part_labels():
    pose = generate_motion("idle", 1, 64, 64, seed=0)[0]
    striped = next(c for c in (random_appearance(s, "unseen") for s in range(50)) if c.pattern == "stripes_v")
    image = render_puppet(pose, striped, 64, 64)
    corner = image[:4].reshape(-1, 3)  # the top rows: background only
    assert {tuple(v) for v in corner} >= {striped.background, striped.pattern_colour}
    labels = render_part_labels(pose, striped, 64, 64)
    assert labels.shape == (64, 64) and labels.dtype == np.int8
    for k, part in enumerate(BODY_PARTS):
        region = labels == k + 1
        if region.any():  # a pixel wholly one part has exactly that part's colour
            assert np.all(image[region] == getattr(striped, part)), part
    assert (labels == 2).sum() > 30 and (labels == 1).sum() > 10  # torso and head are seen
    assert (labels == -1).sum() > 0 and (labels == 0).sum() > 2000  # edges, background
    bigger_head = render_part_labels(pose, dataclasses.replace(striped, head_scale=1.2), 64, 64)
    assert (bigger_head == 1).sum() > (labels == 1).sum()

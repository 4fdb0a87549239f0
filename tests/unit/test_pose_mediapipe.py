"""MediaPipe Holistic backend on real photos shipped with scikit-image (offline, CPU)."""

import cv2
import numpy as np
import pytest
from skimage import data

from zizi_models.pose.backends.mediapipe_backend import MediaPipeBackend
from zizi_models.pose.schema import body_keypoints, frame_to_arrays, validate_pose_keypoint
from zizi_models.pose.skeleton import L_HIP, L_SHOULDER, NECK, NOSE, R_EYE, R_HIP, R_SHOULDER


@pytest.fixture(scope="module")
def backend():
    with MediaPipeBackend(static_image_mode=True, num_workers=1) as be:
        yield be


@pytest.fixture(scope="module")
def astronaut_body(backend):
    frames = backend.detect(data.astronaut())
    return body_keypoints(frames[0])[0]


def _inside(points, width, height):
    present = points[points[:, 2] > 0]
    return np.all((present[:, 0] >= 0) & (present[:, 0] < width) & (present[:, 1] >= 0) & (present[:, 1] < height))


def test_astronaut_pose_is_plausible(backend):
    frames = backend.detect(data.astronaut())  # [512, 512, 3] uint8 RGB
    validate_pose_keypoint(frames)
    assert len(frames) == 1 and len(frames[0]["people"]) == 1
    assert frames[0]["people"][0]["person_id"] == 0
    ids, pts = frame_to_arrays(frames[0])
    assert _inside(pts[0], 512, 512)
    body = pts[0, :18]
    for k in (NOSE, NECK, R_SHOULDER, L_SHOULDER, R_EYE):
        assert body[k, 2] > 0.5, f"keypoint {k} not found"
    assert body[R_EYE, 1] < body[NOSE, 1] < body[NECK, 1], "eyes above nose above neck"
    assert body[R_SHOULDER, 0] < body[NECK, 0] < body[L_SHOULDER, 0], "subject's right shoulder on image left"
    assert 150 < body[NOSE, 0] < 300 and 60 < body[NOSE, 1] < 200  # the face is in the upper middle
    face = pts[0, 60:]
    assert (face[:, 2] > 0).sum() >= 68
    assert np.all(np.abs(face[face[:, 2] > 0, :2] - body[NOSE, :2]).max(0) < 120)  # face around the nose


def test_grayscale_camera_man_nose_above_neck_above_hips(backend):
    frames = backend.detect(data.camera())  # [512, 512] grey uint8: one frame
    assert len(frames) == 1
    body = body_keypoints(frames[0])[0]
    assert _inside(body, 512, 512)
    assert body[NOSE, 2] > 0 and body[NECK, 2] > 0 and body[R_HIP, 2] > 0 and body[L_HIP, 2] > 0
    hips_y = (body[R_HIP, 1] + body[L_HIP, 1]) / 2
    assert body[NOSE, 1] < body[NECK, 1] < hips_y
    assert hips_y - body[NECK, 1] > 100  # a real torso, not a collapsed skeleton


def test_large_frame_reports_original_pixels(backend, astronaut_body):
    big = cv2.resize(data.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    frames = backend.detect(big[None])  # [1, 2048, 2048, 3]
    assert (frames[0]["canvas_width"], frames[0]["canvas_height"]) == (2048, 2048)
    body = body_keypoints(frames[0])[0]
    both = (body[:, 2] > 0) & (astronaut_body[:, 2] > 0)
    assert both.sum() >= 8
    err = np.abs(body[both, :2] / 4.0 - astronaut_body[both, :2])  # in 512-px units
    assert np.median(err) < 3.0 and err.max() < 12.0, err


def test_small_frame_is_upscaled_for_detection(backend, astronaut_body):
    small = cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    body = body_keypoints(backend.detect(small)[0])[0]
    assert body[NOSE, 2] > 0
    np.testing.assert_allclose(body[NOSE, :2], astronaut_body[NOSE, :2] / 4.0, atol=4.0)


def test_blank_and_odd_inputs(backend, astronaut_body):
    blank = np.zeros((2, 256, 320, 3), dtype=np.uint8)
    frames = backend.detect(blank)
    assert [f["people"] for f in frames] == [[], []]
    assert (frames[0]["canvas_width"], frames[0]["canvas_height"]) == (320, 256)
    img = data.astronaut()
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    as_float = img.astype(np.float32) / 255.0  # ComfyUI IMAGE convention
    for variant in (rgba, as_float[None]):
        body = body_keypoints(backend.detect(variant)[0])[0]
        np.testing.assert_allclose(body[NOSE, :2], astronaut_body[NOSE, :2], atol=2.0)
    with pytest.raises(ValueError, match="expected an image"):
        backend.detect(np.zeros((4, 5, 6, 7), np.uint8))


def test_video_mode_threads_callback_and_interrupt():
    img = data.astronaut()
    clip = np.stack([np.roll(img, 3 * i, axis=1) for i in range(6)])  # [6, 512, 512, 3]
    calls = []
    with MediaPipeBackend(num_workers=2) as be:
        frames = be.detect(clip, on_frame=calls.append)
        assert calls == list(range(6))
        assert all(len(f["people"]) == 1 for f in frames)
        noses = np.array([body_keypoints(f)[0][NOSE, 0] for f in frames])
        # results come back in frame order and follow the 3 px/frame shift (15 px in all; MediaPipe's
        # own landmark smoothing lags a little inside each worker's chunk)
        assert np.all(np.diff(noses) > -1.0) and abs((noses[-1] - noses[0]) - 15.0) < 6.0, noses

        class Interrupted(Exception):
            pass

        def interrupt(i):
            if i == 1:
                raise Interrupted

        with pytest.raises(Interrupted):
            be.detect(clip, on_frame=interrupt)
        assert len(be.detect(clip[:2])) == 2  # still usable after an interrupt


def test_only_the_shipped_model_complexity_is_accepted():
    with pytest.raises(ValueError, match="model_complexity=1"):
        MediaPipeBackend(model_complexity=2)

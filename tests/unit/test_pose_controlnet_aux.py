"""OpenPose / DWPose backends: local weights only, and conversion of their raw outputs.

No real weights exist here: the networks are replaced by fabricated outputs (and, for the
DWPose runner, by tiny TorchScript files with the released models' input/output shapes).
"""

import numpy as np
import pytest

from zizi_models.pose.backends import MissingWeightsError, find_weights, make_backend
from zizi_models.pose.backends.controlnet_aux_backend import (
    DWPoseBackend,
    OpenPoseBackend,
    OpenPoseModels,
    face_box,
    face_peaks,
    hand_boxes,
    mm_dwpose_to_coco133,
    openpose_bodies,
)
from zizi_models.pose.schema import body_keypoints, frame_to_arrays, validate_pose_keypoint
from zizi_models.pose.skeleton import (
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_SHOULDER,
    L_WRIST,
    N_BODY,
    NECK,
    NOSE,
    R_EAR,
    R_EYE,
)


def test_missing_openpose_weights_name_files_and_directory(tmp_path):
    with pytest.raises(MissingWeightsError) as info:
        OpenPoseBackend(weights_dir=tmp_path)
    msg = str(info.value)
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth", str(tmp_path.resolve())):
        assert name in msg
    (tmp_path / "body_pose_model.pth").write_bytes(b"")
    with pytest.raises(MissingWeightsError) as info:
        OpenPoseBackend(weights_dir=tmp_path, include_face=False)
    assert "hand_pose_model.pth" in str(info.value) and "facenet.pth" not in str(info.value)
    assert "body_pose_model.pth" not in str(info.value)
    with pytest.raises(MissingWeightsError, match="does not exist"):
        make_backend("openpose", weights_dir=tmp_path / "nope")
    with pytest.raises(MissingWeightsError, match="no weights directory given"):
        make_backend("openpose")
    assert isinstance(info.value, FileNotFoundError)


def test_missing_dwpose_weights_lists_onnx_torchscript_and_mmpose_files(tmp_path):
    with pytest.raises(MissingWeightsError) as info:
        DWPoseBackend(weights_dir=tmp_path)
    msg = str(info.value)
    for name in ("yolox_l.onnx", "yolox_l.torchscript.pt", "dw-ll_ucoco_384.onnx",
                 "dw-ll_ucoco_384_bs5.torchscript.pt", "dw-ll_ucoco_384.pth", str(tmp_path.resolve())):
        assert name in msg


def test_weights_are_found_in_nested_folders(tmp_path):
    nested = tmp_path / "ckpts" / "yzd-v" / "DWPose"
    nested.mkdir(parents=True)
    (nested / "yolox_l.onnx").write_bytes(b"")
    (tmp_path / "dw-ll_ucoco_384_bs5.torchscript.pt").write_bytes(b"")
    found = find_weights(tmp_path, {"det": ("yolox_l.onnx",), "pose": ("dw-ll_ucoco_384.onnx",
                                                                        "dw-ll_ucoco_384_bs5.torchscript.pt")}, "x")
    assert found["det"] == nested / "yolox_l.onnx"
    assert found["pose"].name == "dw-ll_ucoco_384_bs5.torchscript.pt"


def test_openpose_box_heuristics():
    body = np.zeros((N_BODY, 3))
    body[[L_SHOULDER, L_ELBOW, L_WRIST]] = [(100, 100, 1), (100, 200, 1), (100, 300, 1)]
    assert hand_boxes(body, 1000, 1000) == [(25, 258, 150, True)]
    assert hand_boxes(body, 1000, 300) == [(25, 258, 42, True)]  # clipped by the image bottom
    assert hand_boxes(body, 1000, 270) == []  # ... to less than 20 px: no box
    body[NOSE] = (500, 500, 1)
    body[R_EYE], body[L_EYE] = (490, 490, 1), (510, 490, 1)
    assert face_box(body, 1000, 1000) == (470, 470, 60)
    body[R_EAR], body[L_EAR] = (470, 495, 1), (530, 495, 1)
    assert face_box(body, 1000, 1000) == (455, 455, 90)
    body[NOSE, 2] = 0
    assert face_box(body, 1000, 1000) is None


def _fake_openpose(width, height, det_scale):
    """Fabricated controlnet-aux outputs for a 2-person image seen at ``det_scale``."""
    rng = np.random.default_rng(0)
    truth = np.zeros((2, N_BODY, 3))
    truth[..., 0] = rng.uniform(100, width - 100, (2, N_BODY))
    truth[..., 1] = rng.uniform(100, height - 100, (2, N_BODY))
    truth[..., 2] = rng.uniform(0.3, 0.95, (2, N_BODY))
    truth[1, 9] = 0.0  # missing right knee
    truth[1, NOSE] = 0.0  # person 1: no nose, so no face box
    # a standing left arm for person 0 so a hand box exists; a face around the nose
    truth[0, [L_SHOULDER, L_ELBOW, L_WRIST], :2] = [(300, 200), (300, 300), (300, 400)]
    truth[0, NOSE, :2], truth[0, R_EYE, :2], truth[0, L_EYE, :2] = (500, 150), (490, 140), (510, 140)
    cand, rows = [], []
    for p in range(2):
        row = -np.ones(20)
        for j in range(N_BODY):
            if truth[p, j, 2] > 0:
                row[j] = len(cand)
                cand.append([truth[p, j, 0] * det_scale[0], truth[p, j, 1] * det_scale[1], truth[p, j, 2], len(cand)])
        rows.append(row)
    candidate, subset = np.array(cand), np.array(rows)
    seen = {}

    def body(img):
        seen["body"] = img.shape
        return candidate, subset

    def hand(crop):
        assert crop.shape[0] == crop.shape[1]  # square crops
        peaks = np.stack([np.arange(21) + 5.0, np.arange(21) + 7.0], 1)
        peaks[20] = 0  # not found
        return peaks.astype(np.int64)

    def face(crop):
        heat = np.zeros((71,) + crop.shape[:2])
        heat[:60, 4, 6] = 0.8  # 60 points found at crop (6, 4); 10 below threshold
        return heat

    return truth, OpenPoseModels(body, hand, face), seen


def test_openpose_outputs_become_pixel_keypoints_with_real_confidences():
    width, height = 1024, 768
    truth, models, seen = _fake_openpose(width, height, det_scale=(683 / 1024, 512 / 768))
    backend = OpenPoseBackend(models=models, detect_resolution=512)
    frames = backend.detect(np.zeros((1, height, width, 3), np.uint8))
    validate_pose_keypoint(frames)
    assert seen["body"] == (512, 683, 3)  # detection on the downscaled copy
    assert frames[0]["canvas_width"] == width
    ids, pts = frame_to_arrays(frames[0])
    assert ids == [0, 1]
    body = pts[:, :N_BODY]
    np.testing.assert_allclose(body[..., :2], truth[..., :2], atol=1e-6)
    np.testing.assert_allclose(body[..., 2], truth[..., 2], atol=1e-6)  # real scores, not 1.0
    # hand: crop origin + peak, scaled back; point 20 missing
    x0, y0, side, is_left = hand_boxes(body[0] * [683 / 1024, 512 / 768, 1], 683, 512)[0]
    assert is_left
    left_hand = pts[0, N_BODY:N_BODY + 21]
    np.testing.assert_allclose(left_hand[3, :2], [(x0 + 8) * 1024 / 683, (y0 + 10) * 768 / 512], atol=1e-6)
    assert left_hand[3, 2] == 1.0 and np.all(left_hand[20] == 0)
    face = pts[0, 60:]
    assert (face[:, 2] > 0).sum() == 60 and face[0, 2] == pytest.approx(0.8)
    assert np.all(pts[1, 60:] == 0)  # person 1 has no face box: no face
    assert body_keypoints(frames[0])[1, 9, 2] == 0.0 and body_keypoints(frames[0])[1, NOSE, 2] == 0.0


def test_openpose_bodies_reads_candidate_subset():
    candidate = np.array([[10, 20, 0.5, 0], [30, 40, 0.9, 1]])
    subset = -np.ones((1, 20))
    subset[0, NOSE], subset[0, NECK] = 1, 0
    out = openpose_bodies(candidate, subset)
    np.testing.assert_allclose(out[0, NOSE], [30, 40, 0.9])
    np.testing.assert_allclose(out[0, NECK], [10, 20, 0.5])
    assert np.all(out[0, 2:] == 0)
    heat = np.zeros((71, 8, 8))
    heat[3, 2, 5] = 1.7
    peaks = face_peaks(heat)
    np.testing.assert_allclose(peaks[3], [5, 2, 1.0])


def test_dwpose_backend_converts_wholebody_and_tracks_people():
    def model(rgb):
        h, w = rgb.shape[:2]
        kps = np.zeros((2, 133, 2))
        kps[0] = np.stack([np.linspace(10, w - 10, 133), np.linspace(10, h - 10, 133)], 1)
        kps[1] = kps[0] + [5, 3]
        sc = np.full((2, 133), 0.9)
        sc[1, 91:112] = 0.1  # person 1: left hand below threshold
        order = [1, 0] if rgb[0, 0, 0] else [0, 1]  # the detector returns them in varying order
        return kps[order], sc[order]

    frames_in = np.zeros((3, 120, 160, 3), np.uint8)
    frames_in[1, 0, 0] = 255
    out = DWPoseBackend(model=model).detect(frames_in)
    validate_pose_keypoint(out)
    for f in out:
        ids, pts = frame_to_arrays(f)
        assert ids == [0, 1]
        assert pts[0, NOSE, 0] < pts[1, NOSE, 0]  # id 0 is always the same person
        assert np.all(pts[1, 18:39] == 0) and np.all(pts[0, 18:39, 2] == pytest.approx(0.9))


def test_mm_wholebody_layout_maps_back_to_coco():
    coco = np.stack([np.arange(133.0), np.arange(133.0) * 2], 1)
    op_body = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
    kp134 = np.zeros((134, 2))
    for op_idx, c in enumerate(op_body):
        kp134[op_idx] = coco[c] if c is not None else (coco[5] + coco[6]) / 2
    kp134[18:] = coco[17:]
    kp, sc = mm_dwpose_to_coco133(kp134, np.ones(134))
    np.testing.assert_allclose(kp, coco)


def test_dwpose_runner_with_torchscript_files(tmp_path):
    torch = pytest.importorskip("torch")
    from zizi_models.pose.backends.dwpose_runner import DWPoseRunner

    # image 320x240 -> letterbox ratio 2; person box x 100..180, y 40..200 -> centre (280, 240), 160x320 in input
    raw = torch.zeros(1, 8400, 85)
    anchor = 6400 + 1600 + 7 * 20 + 8  # stride 32, grid (8, 7)
    raw[0, anchor, :4] = torch.tensor([280 / 32 - 8, 240 / 32 - 7, np.log(160 / 32), np.log(320 / 32)])
    raw[0, anchor, 4], raw[0, anchor, 5] = 0.9, 0.95

    class Det(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("out", raw)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[1] == 3 and x.shape[2] == 640 and x.shape[3] == 640
            return self.out

    u = torch.arange(133) + 50  # crop x of keypoint k (of 288)
    v = torch.arange(133) + 100  # crop y (of 384)

    sx = torch.zeros(1, 133, 576)
    sy = torch.zeros(1, 133, 768)
    sx[0, torch.arange(133), 2 * u] = 0.9
    sy[0, torch.arange(133), 2 * v] = 0.8

    class Pose(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("sx", sx)
            self.register_buffer("sy", sy)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            assert x.shape[0] == 5 and x.shape[2] == 384 and x.shape[3] == 288  # a batch-5 trace
            return self.sx.expand(5, -1, -1), self.sy.expand(5, -1, -1)

    det_path, pose_path = tmp_path / "yolox_l.torchscript.pt", tmp_path / "dw-ll_ucoco_384_bs5.torchscript.pt"
    torch.jit.script(Det()).save(str(det_path))
    torch.jit.script(Pose()).save(str(pose_path))
    runner = DWPoseRunner.from_files(det_path, pose_path)
    boxes = runner.boxes(np.zeros((240, 320, 3), np.uint8))
    np.testing.assert_allclose(boxes, [[100, 40, 180, 200]], atol=1e-3)
    kps, scores = runner(np.zeros((240, 320, 3), np.uint8))
    # box enlarged 1.25x -> 100x200, widened to 3:4 -> 150x200, centred on (140, 120)
    k = np.arange(133)
    np.testing.assert_allclose(kps[0, :, 0], (50 + k) / 288 * 150 + 140 - 75, atol=1e-3)
    np.testing.assert_allclose(kps[0, :, 1], (100 + k) / 384 * 200 + 120 - 100, atol=1e-3)
    np.testing.assert_allclose(scores[0], 0.8)  # min(max_x, max_y)
    frames = DWPoseBackend(model=runner).detect(np.zeros((240, 320, 3), np.uint8))
    body = body_keypoints(frames[0])[0]
    np.testing.assert_allclose(body[NOSE, :2], kps[0, 0], atol=1e-6)
    assert body[NOSE, 2] == pytest.approx(0.8)

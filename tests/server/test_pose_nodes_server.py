"""Pose nodes through a real ComfyUI server, over HTTP: extraction on real photographs, JSON save and
load (controlnet_aux round trip), smoothing, retargeting, rendering, bad input, interrupt and /free."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data

from devtools.comfy_client import ComfyClient, PromptFailed, PromptRejected
from devtools.workflows import load_api_workflow, node_ids, set_inputs
from zizi_models.pose.skeleton import BODY_LIMBS, L_SHOULDER, NECK, NOSE, R_SHOULDER, limb_color
from zizi_models.video_io import write_video

pytestmark = pytest.mark.server

POSE_WORKFLOW = "pose_extract_api.json"
SCALE, PAD = 2, 256  # the astronaut (512 x 512) upscaled x2 and padded on the right: 1280 x 1024
WIDTH, HEIGHT = 512 * SCALE + PAD, 512 * SCALE
R_HIP, L_HIP = 8, 11
CREATED = "pose detector mediapipe created"
RELEASED_BY_COMFY = "pose detector mediapipe released (ComfyUI unloaded models"


def big_frame(img: np.ndarray) -> np.ndarray:
    big = np.kron(img, np.ones((SCALE, SCALE, 1), dtype=np.uint8))
    return np.pad(big, ((0, 0), (0, PAD), (0, 0)))


def body(frame: dict, person: int = 0) -> np.ndarray:
    return np.asarray(frame["people"][person]["pose_keypoints_2d"], dtype=float).reshape(18, 3)


def fetch_json(comfy: ComfyClient, result, node_id: str):
    files = result.output_files(node_id, "pose_json")
    assert len(files) == 1 and files[0]["filename"].endswith(".json")
    return json.loads(comfy.view(files[0]))


def fetch_pngs(comfy: ComfyClient, result, node_id: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")) for f in result.output_files(node_id)]


def extract_inputs(images: list, **overrides: object) -> dict:
    inputs = {"images": images, "backend": "mediapipe", "detect_resolution": 512, "include_hands": True,
              "include_face": True, "mode": "video", "line_scale": 1.0}
    inputs.update(overrides)
    return inputs


def save_node(source: list, prefix: str, fmt: str = "zizi") -> dict:
    return {"class_type": "ZiziPoseSave", "inputs": {"pose_keypoint": source, "filename_prefix": prefix, "format": fmt}}


def upload_png(comfy: ComfyClient, tmp_path, name: str, img: np.ndarray) -> str:
    path = tmp_path / name
    Image.fromarray(img).save(path)
    return comfy.upload(path)


def upload_json(comfy: ComfyClient, tmp_path, name: str, payload: object | str) -> str:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return comfy.upload(path)


def assert_limb_colour(img: np.ndarray, neck: np.ndarray, shoulder: np.ndarray, limb: tuple[int, int], scale: float):
    mid = np.round((neck[:2] + shoulder[:2]) / 2 * scale).astype(int)
    colour = img[mid[1], mid[0]]
    np.testing.assert_array_equal(colour, limb_color(BODY_LIMBS.index(limb)))


@pytest.fixture(scope="module")
def clip(comfy_server, tmp_path_factory) -> str:
    """5 frames 1280 x 1024: astronaut, mirrored astronaut, black, astronaut, mirrored astronaut."""
    astronaut, mirrored = big_frame(data.astronaut()), big_frame(data.astronaut()[:, ::-1])
    frames = np.stack([astronaut, mirrored, np.zeros_like(astronaut), astronaut, mirrored])
    path = tmp_path_factory.mktemp("pose_clip") / "pose_clip.mp4"
    write_video(path, frames, fps=5)
    return ComfyClient(comfy_server.url).upload(path)


def test_shipped_workflow_extracts_a_batch_in_original_pixels(comfy: ComfyClient, clip: str) -> None:
    prompt = load_api_workflow(POSE_WORKFLOW)
    set_inputs(prompt, "ZiziLoadVideo", video=clip)
    extract = set_inputs(prompt, "ZiziPoseExtract", detect_resolution=512)
    smoothed_save = node_ids(prompt, "ZiziPoseSave")[0]
    prompt["20"] = save_node([extract, 0], "zizi_test/raw_pose")
    prompt["21"] = {"class_type": "SaveImage", "inputs": {"images": [extract, 1], "filename_prefix": "zizi_test/pose"}}
    prompt["22"] = {"class_type": "ZiziPoseRender", "inputs": {
        "pose_keypoint": [extract, 0], "width": 640, "height": 0, "draw_body": True, "draw_hands": True,
        "draw_face": True, "line_scale": 1.0, "min_confidence": 0.0}}
    prompt["23"] = {"class_type": "SaveImage", "inputs": {"images": ["22", 0], "filename_prefix": "zizi_test/pose_half"}}
    result = comfy.run(prompt, timeout=300)
    assert result.status == "success"

    # one progress event per detected frame
    assert [e["value"] for e in result.progress_events(extract)] == [1, 2, 3, 4, 5]
    assert all(e["max"] == 5 for e in result.progress_events(extract))

    raw = fetch_json(comfy, result, "20")
    assert len(raw) == 5
    assert all((f["canvas_width"], f["canvas_height"], f["units"]) == (WIDTH, HEIGHT, "pixels") for f in raw)
    assert raw[2]["people"] == []  # the black frame: nobody, no crash
    for t in (0, 1, 3, 4):
        assert len(raw[t]["people"]) == 1, f"frame {t}: {len(raw[t]['people'])} people"
        pts = body(raw[t])
        present = pts[pts[:, 2] > 0]
        assert np.all((present[:, 2] > 0) & (present[:, 2] <= 1))
        assert np.all((present[:, 0] >= 0) & (present[:, 0] < WIDTH) & (present[:, 1] >= 0) & (present[:, 1] < HEIGHT))
        assert pts[NOSE, 2] > 0 and pts[NECK, 2] > 0 and pts[NOSE, 1] < pts[NECK, 1]
        # nose at about (223, 128) in the 512-px photograph (x mirrored in frames 1 and 4); the keypoints
        # are in the 1280 x 1024 frame, not in the 512-px copy the detector saw
        nose_x = 223 if t in (0, 3) else 511 - 223
        np.testing.assert_allclose(pts[NOSE, :2], (nose_x * SCALE, 128 * SCALE), atol=30)
        assert pts[:, 1].max() > 600

    # the rendering: input size, black where nobody is, OpenPose limb colours on the limbs
    rendered = fetch_pngs(comfy, result, "21")
    assert len(rendered) == 5 and all(img.shape == (HEIGHT, WIDTH, 3) for img in rendered)
    assert rendered[2].max() == 0
    pts = body(raw[0])
    assert_limb_colour(rendered[0], pts[NECK], pts[R_SHOULDER], (NECK, R_SHOULDER), 1.0)
    assert_limb_colour(rendered[0], pts[NECK], pts[L_SHOULDER], (NECK, L_SHOULDER), 1.0)
    half = fetch_pngs(comfy, result, "23")
    assert all(img.shape == (HEIGHT // 2, WIDTH // 2, 3) for img in half)
    assert_limb_colour(half[0], pts[NECK], pts[R_SHOULDER], (NECK, R_SHOULDER), 0.5)

    # the shipped chain: smoothing fills the one-frame dropout with low-confidence points; a video is saved
    smoothed = fetch_json(comfy, result, smoothed_save)
    assert len(smoothed) == 5 and len(smoothed[2]["people"]) == 1
    filled = body(smoothed[2])
    assert 0 < filled[filled[:, 2] > 0, 2].max() <= 0.5
    video = result.output_files(node_ids(prompt, "ZiziSaveVideo")[0])
    assert len(video) == 1 and video[0]["filename"].endswith(".mp4")


def test_rgba_grey_and_tiny_images(comfy: ComfyClient, tmp_path) -> None:
    astronaut = data.astronaut()
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 255, np.uint8)], axis=2)
    rgba_name = upload_png(comfy, tmp_path, "astronaut_rgba.png", rgba)
    grey_name = upload_png(comfy, tmp_path, "camera_grey.png", data.camera())
    tiny_name = upload_png(comfy, tmp_path, "astronaut_tiny.png", np.asarray(Image.fromarray(astronaut).resize((64, 64))))
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": rgba_name}},
        "2": {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["1", 0], "alpha": ["1", 1]}},  # [1, H, W, 4]
        "3": {"class_type": "ZiziPoseExtract", "inputs": extract_inputs(["2", 0], mode="images")},
        "4": save_node(["3", 0], "zizi_test/rgba"),
        "5": {"class_type": "LoadImage", "inputs": {"image": grey_name}},
        "6": {"class_type": "ZiziPoseExtract", "inputs": extract_inputs(["5", 0], mode="images")},
        "7": save_node(["6", 0], "zizi_test/grey"),
        "8": {"class_type": "LoadImage", "inputs": {"image": tiny_name}},
        "9": {"class_type": "ZiziPoseExtract", "inputs": extract_inputs(["8", 0], mode="images")},
        "10": save_node(["9", 0], "zizi_test/tiny"),
        "11": {"class_type": "SaveImage", "inputs": {"images": ["9", 1], "filename_prefix": "zizi_test/tiny"}},
    }
    result = comfy.run(prompt, timeout=300)
    rgba_pose, grey_pose, tiny_pose = (fetch_json(comfy, result, n) for n in ("4", "7", "10"))
    assert (rgba_pose[0]["canvas_width"], rgba_pose[0]["canvas_height"]) == (512, 512)
    np.testing.assert_allclose(body(rgba_pose[0])[NOSE, :2], (223, 128), atol=15)
    camera_man = body(grey_pose[0])  # the whole upper body: nose above neck above hips
    hips = camera_man[[R_HIP, L_HIP]]
    assert (hips[:, 2] > 0).any()
    assert camera_man[NOSE, 1] < camera_man[NECK, 1] < hips[hips[:, 2] > 0, 1].min()
    assert (tiny_pose[0]["canvas_width"], tiny_pose[0]["canvas_height"]) == (64, 64)
    np.testing.assert_allclose(body(tiny_pose[0])[NOSE, :2], (223 / 8, 128 / 8), atol=4)
    assert fetch_pngs(comfy, result, "11")[0].shape == (64, 64, 3)


def controlnet_aux_frames() -> list[dict]:
    """Three frames the way comfyui_controlnet_aux writes them: normalised, null parts; frame 1 lost a wrist."""
    rng = np.random.default_rng(0)
    base = np.stack([rng.uniform(0.2, 0.8, 18), rng.uniform(0.1, 0.9, 18)], axis=1)  # [18, 2]
    frames = []
    for t in range(3):
        pts = np.concatenate([base + 0.01 * t, np.ones((18, 1))], axis=1)
        if t == 1:
            pts[4] = 0.0  # right wrist not detected
        person = {"pose_keypoints_2d": [round(float(v), 6) for v in pts.reshape(-1)],
                  "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None, "face_keypoints_2d": None}
        frames.append({"people": [person], "canvas_width": 640, "canvas_height": 480})
    return frames


def test_controlnet_aux_json_round_trip_smooth_and_retarget(comfy: ComfyClient, tmp_path) -> None:
    original = controlnet_aux_frames()
    name = upload_json(comfy, tmp_path, "cnaux_pose.json", original)
    load = {"class_type": "ZiziPoseLoad", "inputs": {"pose_json": name, "units": "auto"}}
    prompt = {
        "1": load,
        "2": save_node(["1", 0], "zizi_test/cn_pixels"),
        "3": save_node(["1", 0], "zizi_test/cn_back", "controlnet_aux"),
        "4": {"class_type": "ZiziPoseSmooth", "inputs": {
            "pose_keypoint": ["1", 0], "method": "none", "fps": 30.0, "min_cutoff": 1.0, "beta": 5.0,
            "d_cutoff": 1.0, "window": 7, "polyorder": 2, "max_gap": 5}},
        "5": save_node(["4", 0], "zizi_test/cn_filled"),
        "6": {"class_type": "ZiziPoseRetarget", "inputs": {
            "driving": ["1", 0], "reference": ["1", 0], "driving_person_id": -1, "reference_person_id": -1,
            "keep_others": True}},
        "7": save_node(["6", 0], "zizi_test/cn_retarget"),
        "8": {"class_type": "ZiziPoseLoad", "inputs": {"pose_json": name, "units": "pixels"}},
        "9": save_node(["8", 0], "zizi_test/cn_forced_pixels"),
    }
    result = comfy.run(prompt, timeout=60)
    expected = [np.asarray(f["people"][0]["pose_keypoints_2d"]).reshape(18, 3) for f in original]

    pixels = fetch_json(comfy, result, "2")
    assert [(f["canvas_width"], f["canvas_height"], f["units"]) for f in pixels] == [(640, 480, "pixels")] * 3
    for frame, exp in zip(pixels, expected, strict=True):
        np.testing.assert_allclose(body(frame)[:, :2], exp[:, :2] * (640, 480), atol=1e-6)
        np.testing.assert_array_equal(body(frame)[:, 2], exp[:, 2])
        assert frame["people"][0]["hand_left_keypoints_2d"] == [0.0] * 63

    back = fetch_json(comfy, result, "3")  # what comfyui_controlnet_aux reads: normalised again, null parts
    assert [set(f) for f in back] == [{"people", "canvas_width", "canvas_height"}] * 3
    for frame, exp in zip(back, expected, strict=True):
        np.testing.assert_allclose(np.asarray(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3), exp, atol=1e-9)
        assert frame["people"][0]["face_keypoints_2d"] is None

    filled = body(fetch_json(comfy, result, "5")[1])[4]  # the lost wrist: halfway, half the confidence
    np.testing.assert_allclose(filled[:2], (expected[0][4, :2] + expected[2][4, :2]) / 2 * (640, 480), atol=1e-6)
    assert filled[2] == pytest.approx(0.5)

    retargeted = fetch_json(comfy, result, "7")  # onto its own first frame: unchanged
    for frame, exp in zip(retargeted, expected, strict=True):
        present = exp[:, 2] > 0
        np.testing.assert_allclose(body(frame)[present, :2], exp[present, :2] * (640, 480), atol=1e-3)

    forced = fetch_json(comfy, result, "9")  # units=pixels: the numbers are taken as they are
    np.testing.assert_allclose(body(forced[0])[:, :2], expected[0][:, :2], atol=1e-9)


def test_bad_json_and_missing_files_give_clear_errors(comfy: ComfyClient, tmp_path) -> None:
    def run_load(name: str) -> str:
        prompt = {"1": {"class_type": "ZiziPoseLoad", "inputs": {"pose_json": name, "units": "auto"}},
                  "2": save_node(["1", 0], "zizi_test/bad")}
        with pytest.raises(PromptFailed) as failed:
            comfy.run(prompt, timeout=60)
        return failed.value.error["exception_message"]

    broken = upload_json(comfy, tmp_path, "broken_pose.json", '[{"canvas_width": 64, "canvas_height": 64, "people": [')
    message = run_load(broken)
    assert "pose_json" in message and "broken_pose.json" in message and "line 1" in message
    assert "\n" not in message.strip()

    short = [{"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": [1, 2, 3]}]}]
    message = run_load(upload_json(comfy, tmp_path, "short_pose.json", short))
    assert "short_pose.json" in message and "pose_keypoints_2d" in message and "54" in message

    with pytest.raises(PromptRejected) as rejected:
        comfy.queue({"1": {"class_type": "ZiziPoseLoad", "inputs": {"pose_json": "nope.json", "units": "auto"}},
                     "2": save_node(["1", 0], "zizi_test/bad")})
    assert "pose_json" in str(rejected.value)

    smooth = {"class_type": "ZiziPoseSmooth", "inputs": {
        "pose_keypoint": ["1", 0], "method": "savgol", "fps": 30.0, "min_cutoff": 1.0, "beta": 5.0, "d_cutoff": 1.0,
        "window": 6, "polyorder": 2, "max_gap": 0}}
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue({"1": {"class_type": "ZiziPoseLoad", "inputs": {"pose_json": broken, "units": "auto"}},
                     "2": smooth, "3": save_node(["2", 0], "zizi_test/bad")})
    assert "window: expected an odd number" in str(rejected.value)


def test_openpose_without_weights_names_the_files_and_folder(comfy: ComfyClient, comfy_server, tmp_path) -> None:
    image = upload_png(comfy, tmp_path, "tiny_black.png", np.zeros((32, 32, 3), np.uint8))
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
              "2": {"class_type": "ZiziPoseExtract", "inputs": extract_inputs(["1", 0], backend="openpose")},
              "3": save_node(["2", 0], "zizi_test/openpose")}
    with pytest.raises(PromptFailed) as failed:
        comfy.run(prompt, timeout=60)
    message = failed.value.error["exception_message"]
    assert "backend 'openpose'" in message and "body_pose_model.pth" in message
    assert str(comfy_server.models_dir / "pose") in message


def repeat_prompt(image: str, amount: int, prefix: str) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": amount}},
            "3": {"class_type": "ZiziPoseExtract", "inputs": extract_inputs(["2", 0], detect_resolution=256)},
            "4": save_node(["3", 0], prefix)}


def test_interrupt_stops_a_long_extraction_and_the_cached_detector_still_works(
    comfy: ComfyClient, comfy_server, tmp_path
) -> None:
    image = upload_png(comfy, tmp_path, "astronaut_256.png", np.asarray(Image.fromarray(data.astronaut()).resize((256, 256))))
    comfy.run(repeat_prompt(image, 1, "zizi_test/warm"), timeout=60)  # builds the detector for these settings
    created_before = comfy_server.log_text().count(CREATED)
    interrupted = threading.Event()

    def interrupt_on_first_frame(event: dict) -> None:
        if event["type"] == "progress" and event["data"]["node"] == "3" and not interrupted.is_set():
            interrupted.set()
            comfy.interrupt()

    result = comfy.run(repeat_prompt(image, 200, "zizi_test/long"), timeout=300,
                       on_event=interrupt_on_first_frame, raise_on_error=False)
    assert interrupted.is_set() and result.status == "interrupted"
    done = max(e["value"] for e in result.progress_events("3"))
    assert done < 100, f"extraction ran {done} of 200 frames after /interrupt"

    after = comfy.run(repeat_prompt(image, 3, "zizi_test/after"), timeout=60)
    poses = fetch_json(comfy, after, "4")
    assert len(poses) == 3 and all(len(f["people"]) == 1 for f in poses)
    assert comfy_server.log_text().count(CREATED) == created_before  # the same detector, reused


def test_free_memory_releases_the_detector(comfy: ComfyClient, comfy_server, tmp_path) -> None:
    image = upload_png(comfy, tmp_path, "astronaut_free.png", data.astronaut())
    comfy.run(repeat_prompt(image, 1, "zizi_test/free1"), timeout=60)
    released_before = comfy_server.log_text().count(RELEASED_BY_COMFY)
    comfy.post_json("/free", {"unload_models": True})
    deadline = time.monotonic() + 20
    while comfy_server.log_text().count(RELEASED_BY_COMFY) == released_before:
        assert time.monotonic() < deadline, "POST /free did not release the pose detector"
        time.sleep(0.2)
    created_before = comfy_server.log_text().count(CREATED)
    result = comfy.run(repeat_prompt(image, 2, "zizi_test/free2"), timeout=60)
    assert len(fetch_json(comfy, result, "4")) == 2
    assert comfy_server.log_text().count(CREATED) == created_before + 1  # built again on demand
    assert not re.search(r"memory leak with model ZiziExternalModel", comfy_server.log_text())

"""``make demo``: run the pack's shipped puppet workflow end to end on a real ComfyUI server.

Default job (the shipped small puppet model, ``weights/zizi_puppet_*.safetensors``):

1. writes the puppet demo sequence's poses (``zizi_puppet_demo_poses.json``) and its ground-truth
   first frame (``zizi_puppet_demo_frame0.png``) into the server's input folder;
2. starts a ComfyUI server with the pack and queues ``workflows/puppet_long_video_api.json`` over
   HTTP, logging the loop controller's websocket progress;
3. copies the generated video to ``output/demo/puppet_long_video.mp4`` and writes
   ``output/demo/puppet_side_by_side.mp4`` (pose | generated | ground truth, each 4x nearest) and
   ``output/demo/puppet_strip.png`` (8 frames spread over the video; rows: pose, generated, ground truth).

The weights come from ``python -m train puppet -c train/configs/puppet.yaml`` followed by
``python -m train puppet -c train/configs/puppet_more.yaml`` (``--weights DIR`` or
``$ZIZI_PUPPET_WEIGHTS`` point at another folder holding the two files).

``--sd15`` runs the older job instead: ``workflows/sd15_frames_to_video_api.json`` with the seeded
random full-size SD1.5 checkpoint (noise-like textures: the point is the pipeline), or
``--checkpoint /path/to/sd15.safetensors``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devtools.comfy_client import ComfyClient
from devtools.comfy_server import ComfyServer
from devtools.comfyui_provision import find_comfyui
from devtools.workflows import load_api_workflow, node_ids, set_inputs

REPO_ROOT = Path(__file__).resolve().parent.parent
SD15_WORKFLOW = "sd15_frames_to_video_api.json"
PUPPET_WORKFLOW = "puppet_long_video_api.json"
PUPPET_BASE = "zizi_puppet_base.safetensors"
PUPPET_TEMPORAL = "zizi_puppet_temporal.safetensors"
PUPPET_POSES = "zizi_puppet_demo_poses.json"
PUPPET_FRAME0 = "zizi_puppet_demo_frame0.png"
PUPPET_BUILD_COMMAND = ("python -m train puppet -c train/configs/puppet.yaml && "
                        "python -m train puppet -c train/configs/puppet_more.yaml")
PUPPET_SIZE = 64  # the size the puppet model was trained at
PREVIEW_SCALE = 4  # nearest-neighbour upscale of the 64 px frames in the previews
STRIP_FRAMES = 8

log = logging.getLogger("zizi.demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sd15", action="store_true", help="run the SD1.5 frames-to-video job instead of the puppet")
    parser.add_argument("--frames", type=int, help="video length (default: puppet 240, --sd15 8)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the workflow's; --sd15 4)")
    parser.add_argument("--seed", type=int, help="sampling seed (default: the workflow's)")
    parser.add_argument("--weights", type=Path, default=Path(os.environ.get("ZIZI_PUPPET_WEIGHTS") or REPO_ROOT / "weights"),
                        help=f"folder with {PUPPET_BASE} and {PUPPET_TEMPORAL} "
                             "(default: $ZIZI_PUPPET_WEIGHTS, else the pack's weights/)")
    parser.add_argument("--checkpoint", type=Path, help="--sd15: an SD1.5 .safetensors checkpoint (default: random SD1.5)")
    parser.add_argument("--size", type=int, default=128, help="--sd15: width = height, a multiple of 8")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "output" / "demo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    return run_sd15(args) if args.sd15 else run_puppet(args)


# puppet ---------------------------------------------------------------------------------------------


class ProgressLog:
    """Logs one node's websocket progress about every 10 %, with the rate and an ETA."""

    def __init__(self, node_id: str, label: str) -> None:
        self.node_id, self.label = node_id, label
        self.started: float | None = None
        self.finished: float | None = None
        self.next_report = 0.0
        self.last: tuple[int, int] | None = None

    def __call__(self, event: dict) -> None:
        if event["type"] == "executing" and event["data"].get("node") == self.node_id:
            self.started = time.perf_counter()
            log.info("%s: started", self.label)
        if event["type"] != "progress" or event["data"].get("node") != self.node_id:
            return
        value, total = int(event["data"]["value"]), int(event["data"]["max"])
        self.last = (value, total)
        if value >= total:
            self.finished = time.perf_counter()
        if value < self.next_report * total and value < total:
            return
        self.next_report = min(1.0, value / max(total, 1) + 0.1)
        elapsed = time.perf_counter() - (self.started or time.perf_counter())
        eta = elapsed / value * (total - value) if value else float("nan")
        log.info("%s: %d/%d frames (%.0f s, %.2f s/frame, ~%.0f s left)", self.label, value, total, elapsed,
                 elapsed / max(value, 1), eta)

    def elapsed(self) -> float:
        """Seconds from the node's start to its last frame (or to now)."""
        if self.started is None:
            return float("nan")
        return (self.finished or time.perf_counter()) - self.started


def missing_weights(folder: Path) -> list[Path]:
    return [folder / name for name in (PUPPET_BASE, PUPPET_TEMPORAL) if not (folder / name).is_file()]


def write_puppet_inputs(input_dir: Path, clip) -> None:
    """The demo sequence's poses (our strict schema, pixels) and its ground-truth frame 0, as the workflow expects."""
    from PIL import Image

    from zizi_models.pose import save_pose_json

    input_dir.mkdir(parents=True, exist_ok=True)
    save_pose_json(clip.poses, input_dir / PUPPET_POSES)
    Image.fromarray(clip.frames[0]).save(input_dir / PUPPET_FRAME0)


def render_poses(poses: list, size: int, line_scale: float) -> np.ndarray:
    """The pose images the workflow feeds the pose encoder (ZiziPoseRender: body only)."""
    from zizi_models.pose.render import render_pose_keypoint

    return render_pose_keypoint(poses, size, size, draw_body=True, draw_hands=False, draw_face=False,
                                line_scale=line_scale)


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale of ``[..., H, W, 3]`` frames."""
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def side_by_side(pose: np.ndarray, generated: np.ndarray, truth: np.ndarray, factor: int = PREVIEW_SCALE) -> np.ndarray:
    """``[F, H, W, 3]`` x3 -> ``[F, H*f, 3*W*f, 3]``: pose | generated | ground truth."""
    return np.concatenate([upscale(pose, factor), upscale(generated, factor), upscale(truth, factor)], axis=2)


def strip_image(pose: np.ndarray, generated: np.ndarray, truth: np.ndarray, count: int = STRIP_FRAMES,
                factor: int = PREVIEW_SCALE) -> tuple[np.ndarray, list[int]]:
    """``count`` frames spread over the video as a labelled grid: rows pose / generated / ground truth."""
    import cv2

    picks = [int(i) for i in np.linspace(0, len(generated) - 1, min(count, len(generated))).round()]
    tile = generated.shape[1] * factor
    gap, label_w, header_h = 4, 150, 28
    rows = (("pose", pose), ("generated", generated), ("ground truth", truth))
    height = header_h + len(rows) * (tile + gap)
    width = label_w + len(picks) * (tile + gap)
    canvas = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for c, index in enumerate(picks):
        x = label_w + c * (tile + gap)
        cv2.putText(canvas, f"frame {index}", (x + 4, header_h - 8), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        for r, (_, frames) in enumerate(rows):
            y = header_h + r * (tile + gap)
            canvas[y:y + tile, x:x + tile] = upscale(frames[index], factor)
    for r, (name, _) in enumerate(rows):
        y = header_h + r * (tile + gap) + tile // 2
        cv2.putText(canvas, name, (8, y), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas, picks


def run_puppet(args: argparse.Namespace) -> int:
    from PIL import Image

    from zizi_models.puppet import demo_sequence
    from zizi_models.video_io import read_video, write_video

    started = time.perf_counter()
    weights = args.weights.resolve()
    missing = missing_weights(weights)
    if missing:
        log.error("puppet weights missing: %s. Build them with `%s` (writes weights/%s and weights/%s), "
                  "or point --weights / $ZIZI_PUPPET_WEIGHTS at a folder that has them; `--sd15` runs the "
                  "SD1.5 job instead.", ", ".join(str(p) for p in missing), PUPPET_BUILD_COMMAND, PUPPET_BASE,
                  PUPPET_TEMPORAL)
        return 2

    prompt = load_api_workflow(PUPPET_WORKFLOW)
    controller = node_ids(prompt, "ZiziLoopController")[0]
    saver = node_ids(prompt, "ZiziSaveVideo")[0]
    frames = args.frames or int(prompt[controller]["inputs"]["total_frames"])
    overrides = {"total_frames": frames}
    if args.steps:
        overrides["steps"] = args.steps
    if args.seed is not None:
        overrides["seed"] = args.seed
    set_inputs(prompt, "ZiziLoopController", **overrides)
    settings = prompt[controller]["inputs"]
    render = prompt[node_ids(prompt, "ZiziPoseRender")[0]]["inputs"]
    fps = float(prompt[saver]["inputs"]["fps"])

    clip = demo_sequence(frames=frames, size=PUPPET_SIZE, seed=0)
    positive = prompt[controller]["inputs"]["positive"][0]  # two CLIPTextEncode nodes: the one feeding "positive"
    prompt[positive]["inputs"]["text"] = clip.caption
    log.info("puppet demo: %d frames %dx%d, window %d, stride %d, snr %g, %d steps, cfg %g, %s/%s; weights from %s",
             frames, settings["width"], settings["height"], settings["window"], settings["stride"], settings["snr"],
             settings["steps"], settings["cfg"], settings["sampler_name"], settings["scheduler"], weights)

    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zizi-demo-") as scratch:
        server = ComfyServer(find_comfyui(), Path(scratch))
        server.prepare()
        write_puppet_inputs(server.input_dir, clip)
        if weights != (REPO_ROOT / "weights").resolve():  # the pack's weights/ is registered by the pack itself
            for folder, name in (("zizi_checkpoints", PUPPET_BASE), ("zizi", PUPPET_TEMPORAL)):
                (server.models_dir / folder).mkdir(parents=True, exist_ok=True)
                (server.models_dir / folder / name).symlink_to(weights / name)
        try:
            server_started = time.perf_counter()
            with server:
                log.info("ComfyUI up in %.0f s; queueing %s on %s", time.perf_counter() - server_started,
                         PUPPET_WORKFLOW, server.url)
                client = ComfyClient(server.url)
                progress = ProgressLog(controller, "loop controller")
                queued = time.perf_counter()
                result = client.run(prompt, timeout=3600, on_event=progress)
                prompt_s = time.perf_counter() - queued
                loop_s = progress.elapsed()
                outputs = result.output_files(saver)
                if not outputs:
                    log.error("the workflow finished without a video (history outputs: %s)", result.outputs)
                    return 1
                video_path = args.output / "puppet_long_video.mp4"
                video_path.write_bytes(client.view(outputs[0]))
        finally:
            if server.log_path.exists():
                shutil.copy(server.log_path, args.output / "comfyui-server.log")

    generated, _ = read_video(video_path)
    if progress.last is None or progress.last[0] != progress.last[1]:
        log.warning("the loop controller's progress ended at %s, not at its total", progress.last)
    if len(generated) != frames:
        log.error("%s has %d frames, expected %d", video_path, len(generated), frames)
        return 1
    pose = render_poses(clip.poses, PUPPET_SIZE, float(render["line_scale"]))
    truth = clip.frames
    write_video(args.output / "puppet_side_by_side.mp4", side_by_side(pose, generated, truth), fps=fps)
    strip, picks = strip_image(pose, generated, truth)
    Image.fromarray(strip).save(args.output / "puppet_strip.png")

    error = np.abs(generated.astype(np.float32) - truth.astype(np.float32)).mean(axis=(1, 2, 3))
    quarters = np.array_split(error, 4)
    log.info("mean abs error vs ground truth (0..255): frame 0 %.1f, whole video %.1f, by quarter %s",
             error[0], error.mean(), " ".join(f"{q.mean():.1f}" for q in quarters))
    log.info("wrote %s, %s, %s (strip frames %s)", video_path, args.output / "puppet_side_by_side.mp4",
             args.output / "puppet_strip.png", picks)
    log.info("timing: loop controller %.0f s (%.2f s/frame), prompt %.0f s, total %.0f s",
             loop_s, loop_s / frames, prompt_s, time.perf_counter() - started)
    return 0


# SD1.5 ----------------------------------------------------------------------------------------------


def run_sd15(args: argparse.Namespace) -> int:
    from devtools.random_sd15 import full_sd15_checkpoint

    started = time.perf_counter()
    checkpoint = args.checkpoint.resolve() if args.checkpoint else full_sd15_checkpoint()
    if not checkpoint.is_file():
        log.error("--checkpoint %s: no such file", checkpoint)
        return 2
    written = []
    with tempfile.TemporaryDirectory(prefix="zizi-demo-") as scratch:
        server = ComfyServer(find_comfyui(), Path(scratch))
        server.prepare()
        (server.models_dir / "checkpoints" / checkpoint.name).symlink_to(checkpoint)
        with server:
            client = ComfyClient(server.url)
            prompt = load_api_workflow(SD15_WORKFLOW)
            set_inputs(prompt, "CheckpointLoaderSimple", ckpt_name=checkpoint.name)
            set_inputs(prompt, "EmptyLatentImage", width=args.size, height=args.size, batch_size=args.frames or 8)
            set_inputs(prompt, "KSampler", steps=args.steps or 4)
            if args.seed is not None:
                set_inputs(prompt, "KSampler", seed=args.seed)

            def report(event: dict) -> None:
                if event["type"] == "progress":
                    data = event["data"]
                    log.info("node %s: %d/%d", data["node"], data["value"], data["max"])

            log.info("queueing %s on %s", SD15_WORKFLOW, server.url)
            result = client.run(prompt, timeout=3600, on_event=report)
            args.output.mkdir(parents=True, exist_ok=True)
            for node_outputs in result.outputs.values():
                for info in node_outputs.get("images", []):
                    target = args.output / Path(info["filename"]).name
                    target.write_bytes(client.view(info))
                    written.append(target)
        if server.log_path.exists():
            shutil.copy(server.log_path, args.output / "comfyui-server.log")
    videos = [p for p in written if p.suffix in {".mp4", ".webm"}]
    log.info("wrote %d files to %s in %.0f s", len(written), args.output, time.perf_counter() - started)
    for video in videos:
        log.info("video: %s", video)
    return 0 if videos else 1


if __name__ == "__main__":
    sys.exit(main())

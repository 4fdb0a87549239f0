"""Pose detection speed: frames per second at 512x512 for each available backend.

    python bench/pose.py [--frames 120] [--size 512] [--weights-dir DIR] [--device cpu|cuda|auto]

MediaPipe (embedded, offline) is always measured, in video mode with 1 worker and with the
default number of workers (threads, one Holistic graph each), and in static-image mode.
OpenPose / DWPose (controlnet-aux networks, local weights) are measured only when
``--weights-dir`` holds their files, on the CPU and on CUDA when available.
The clip is scikit-image's astronaut photo panned left and right (one person, moving).
Prints a markdown table with the device, library versions and the command.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zizi_models.pose.backends import MissingWeightsError, PoseBackend, make_backend  # noqa: E402


def make_clip(n_frames: int, size: int) -> np.ndarray:
    """[F, size, size, 3] uint8: the astronaut photo panned +-12% of the width over 2 s (30 fps)."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    shifts = np.round(0.12 * size * np.sin(2 * np.pi * np.arange(n_frames) / 60)).astype(int)
    return np.stack([np.roll(img, int(s), axis=1) for s in shifts])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = [f"python {platform.python_version()}"]
    for dist in ("numpy", "opencv-python-headless", "mediapipe", "torch", "controlnet-aux", "scipy"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def time_backend(backend: PoseBackend, clip: np.ndarray) -> tuple[float, float]:
    """-> (seconds for the whole clip in one detect call, fraction of frames with a person)."""
    backend.detect(clip[:2])  # warm-up: model loading, first inference
    start = time.perf_counter()
    frames = backend.detect(clip)
    seconds = time.perf_counter() - start
    return seconds, sum(bool(f["people"]) for f in frames) / len(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights-dir", default=None, help="folder with OpenPose / DWPose weight files")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    clip = make_clip(args.frames, args.size)
    cpus = os.cpu_count() or 1
    runs: list[tuple[str, str, str, dict]] = [
        ("mediapipe", "video mode, 1 worker", "cpu", dict(num_workers=1)),
        ("mediapipe", f"video mode, {min(4, cpus)} workers (default)", "cpu", {}),
        ("mediapipe", f"static images, {min(4, cpus)} workers", "cpu", dict(static_image_mode=True)),
    ]
    if args.weights_dir:
        devices = ["cpu"]
        try:
            import torch

            if args.device in ("auto", "cuda") and torch.cuda.is_available():
                devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
        except ImportError:
            pass
        for dev in devices:
            runs.append(("openpose", "body + hands + face, detect 512", dev, dict(weights_dir=args.weights_dir, device=dev)))
            runs.append(("dwpose", "YOLOX-L + DWPose-L (ONNX via OpenCV on CPU, or TorchScript)", dev,
                         dict(weights_dir=args.weights_dir, device=dev)))

    rows = []
    for name, config, device, kwargs in runs:
        try:
            backend = make_backend(name, **kwargs)
        except (MissingWeightsError, ImportError) as err:
            print(f"{name} on {device} skipped: {err}", file=sys.stderr)
            why = "weight files not found" if isinstance(err, MissingWeightsError) else "missing dependency"
            rows.append(f"| {name} | {config} | {device} | - | - | skipped: {why} (details on stderr) |")
            continue
        with backend:
            seconds, found = time_backend(backend, clip)
        rows.append(f"| {name} | {config} | {device} | {args.frames / seconds:.1f} | {seconds:.2f} | {found:.0%} |")
        print(rows[-1], file=sys.stderr, flush=True)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"\n**Pose detection speed**, {args.frames} frames of {args.size}x{args.size} RGB (one moving person)\n")
    print(f"- device: {cpu_name()}, {cpus} CPU cores" + (f"; GPU: {_gpu_name()}" if _gpu_name() else "; no GPU"))
    print(f"- versions: {versions()}")
    print(f"- load average (1, 5, 15 min) at the end: {load} (other work on the machine slows these numbers)")
    print("- MediaPipe's Python solutions run on the CPU only; OpenPose/DWPose need --weights-dir")
    print(f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| backend | configuration | device | fps | seconds | frames with a person |")
    print("|---|---|---|---:|---:|---:|")
    print("\n".join(rows))
    return 0


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())

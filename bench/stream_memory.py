"""Loop controller host RAM: streaming to an mp4 vs keeping all frames, for short and long videos (issue #13).

    python bench/stream_memory.py [--frames 500 5000] [--size 256] [--decode-chunk 16] [--writer real|count]

Runs ZiziLoopController.generate in an in-process ComfyUI: the real planning, latent store, run_plan,
chunked decoding, output collection (nodes/loop_output.py) and, with ``--writer real``, the real H.264
VideoWriter. The window sampler and the VAE are cheap stand-ins (a sampled frame is a constant, the VAE
upsamples latents by nearest neighbour), so the numbers are the controller's own memory, not a model's.
Peak RSS growth is sampled every 2 ms by a thread, from just before each run. Each mode also shows the
controller's admission estimate (zizi_models/run_memory.py). Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import torch
from einops import repeat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peak_rss import PeakRss  # noqa: E402
from devtools.comfy_inprocess import import_pack  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402

log = logging.getLogger("bench.stream_memory")
MODES = {"all frames": "all frames", "stream": "stream to file (small IMAGE)"}


class StandInVAE:
    downscale_ratio = 8

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the benchmark runs without a hint image")

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return repeat(latents[:, :3].clamp(0, 1), "n c h w -> n (h a) (w b) c", a=8, b=8).contiguous()


class StandInSampler:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, request) -> torch.Tensor:
        values = torch.tensor([f % 256 / 255 for f in request.frames]).reshape(-1, 1, 1, 1)
        return values.expand_as(request.latents).clone()

    def to_model_space(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


class CountingWriter:
    def __init__(self, path, fps: float) -> None:
        self.path, self.frames_written = Path(path), 0

    def write(self, frames) -> None:
        self.frames_written += len(frames)

    def close(self) -> None:
        pass


def mp4_frames(folder: Path) -> int:
    """Frames in the newest mp4 of ``folder`` (packets counted, nothing decoded)."""
    import av

    newest = max(folder.rglob("*.mp4"), key=lambda p: p.stat().st_mtime_ns)
    with av.open(str(newest)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def peak_rss_growth(work) -> tuple[object, float, float]:
    """(result of work(), peak RSS growth of this process in MiB, seconds), RSS sampled every 2 ms."""
    gc.collect()
    with PeakRss(os.getpid(), interval=0.002) as rss:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    return result, (rss.peak - rss.start) / 2**20, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--decode-chunk", type=int, default=16)
    parser.add_argument("--writer", choices=["real", "count"], default="real")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    pack = import_pack(find_comfyui())
    lc = pack.nodes.loop_controller
    lc.require_temporal_model = lambda model: SimpleNamespace(config=SimpleNamespace(max_positions=32), pose_encoder=None)
    lc.WindowSampler = StandInSampler
    if args.writer == "count":
        pack.nodes.loop_output.VideoWriter = CountingWriter
    output = Path(tempfile.mkdtemp(prefix="zizi-stream-bench-"))
    pack.nodes.comfy.folders.output_directory = lambda: output
    run_memory = pack.zizi_models.run_memory
    controller = lc.ZiziLoopController()

    def generate(frames: int, mode: str):
        return controller.generate(None, [], [], StandInVAE(), args.size, args.size, frames, 16, 4, 0.66, 0, 1, 1.0,
                                   "euler", "normal", decode_chunk=args.decode_chunk, output=MODES[mode])

    generate(64, "stream")  # warm-up: imports, allocator pools, the encoder
    rows = []
    for frames in args.frames:
        for mode in MODES:
            estimate = run_memory.estimate_run_memory(frames, args.size, args.size, args.decode_chunk, mode == "stream")
            (images, latent, _), growth, seconds = peak_rss_growth(lambda f=frames, m=mode: generate(f, m))
            written = mp4_frames(output) if mode == "stream" and args.writer == "real" else "-"
            rows.append((frames, mode, images.shape[0], written, estimate.new / 2**20, growth, seconds))
            del images, latent
    streamed = sorted(output.rglob("*.mp4"))
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPU cores, {psutil.virtual_memory().total / 2**30:.0f} GiB "
          f"RAM; torch {torch.__version__}, {torch.get_num_threads()} threads; {args.size}x{args.size}, decode_chunk "
          f"{args.decode_chunk}, writer {args.writer} ({len(streamed)} mp4 files in {output})")
    print("command: python bench/stream_memory.py --frames " + " ".join(map(str, args.frames))
          + f" --size {args.size} --decode-chunk {args.decode_chunk} --writer {args.writer}")
    print()
    print("| frames | output | IMAGE frames returned | frames in the mp4 | admission estimate (MiB) "
          "| peak RSS growth (MiB) | seconds |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for frames, mode, returned, written, estimate, growth, seconds in rows:
        print(f"| {frames} | {mode} | {returned} | {written} | {estimate:.0f} | {growth:.0f} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed and host memory side by side with ComfyUI-AnimateDiff-Evolved 1.5.7, in one server (issue #15, item 1).

    python bench/versus_ade.py                          # (a) 16-frame batch, (b) N = 32, 128, 512
    python bench/versus_ade.py --frames 32 128 --size 64 --steps 4

One ComfyUI server (the one ``devtools.comfyui_provision`` finds, 0.3.75 by default; ``COMFYUI_PATH``
picks another) holds both packs and the same files: the random full-size SD1.5 checkpoint and a random
AnimateDiff v2-layout motion module as a ``.ckpt`` (speed does not depend on weight values). Every run
is a prompt over HTTP, timed from queueing to the last output, after one warm-up run of each graph;
seeds change per run so ComfyUI's cache never answers. Runs alternate ours / ADE.

(a) a 16-frame latent batch through KSampler (+ VAE decode): ours (ZiziTemporalModelLoader, schedule
    auto) vs ADE (ADE_AnimateDiffLoaderGen1, autoselect): seconds, median of ``--repeats`` runs.
(b) N-frame videos: ADE's context windows (ADE_StandardUniformContextOptions: 16 frames, overlap 4)
    through KSampler vs ZiziLoopController (window/stride auto: 16/4 for AnimateDiff modules, every frame
    generated once) with each of ``--plans``: "default" (interpolation, 3 context frames) and "fast"
    (extrapolation only, 1 context frame: 14 new frames per 16-frame window), each decoded to IMAGE.
    Seconds per output frame and the server's peak RSS above its level just before the run (sampled
    every 50 ms), one run each.

Prints markdown tables (stdout) for docs/benchmarks.md, with the device, versions and command.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peak_rss import PeakRss  # noqa: E402
from devtools.ade_anchor import ADE_LOADER, OUR_ANIMATEDIFF_PREFIX, server_with_ade  # noqa: E402
from devtools.comfy_client import ComfyClient  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402
from devtools.random_addons import sd15_motion_module_ckpt  # noqa: E402
from devtools.random_sd15 import full_sd15_checkpoint  # noqa: E402

log = logging.getLogger("bench.versus_ade")

CHECKPOINT, MODULE = "sd15_random.safetensors", "mm_random_v2.ckpt"
CONTEXT_LENGTH, CONTEXT_OVERLAP = 16, 4


def common_nodes(size: int, frames: int) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dancer on a stage", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": frames}},
    }


def ksampler(model: list, seed: int, steps: int, cfg: float) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
        "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}


def decoded(prompt: dict, samples: list) -> dict:
    prompt["90"] = {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": ["1", 2]}}
    prompt["91"] = {"class_type": "PreviewImage", "inputs": {"images": ["90", 0]}}
    return prompt


def ours_batch(size: int, frames: int, seed: int, steps: int, cfg: float) -> dict:
    prompt = common_nodes(size, frames)
    prompt["10"] = {"class_type": "ZiziTemporalModelLoader", "inputs": {
        "model": ["1", 0], "temporal_module": OUR_ANIMATEDIFF_PREFIX + MODULE, "beta_schedule": "auto"}}
    prompt["11"] = ksampler(["10", 0], seed, steps, cfg)
    return decoded(prompt, ["11", 0])


def ade_batch(size: int, frames: int, seed: int, steps: int, cfg: float, context: bool = False) -> dict:
    prompt = common_nodes(size, frames)
    prompt["20"] = {"class_type": ADE_LOADER, "inputs": {
        "model": ["1", 0], "model_name": MODULE, "beta_schedule": "autoselect"}}
    if context:
        prompt["22"] = {"class_type": "ADE_StandardUniformContextOptions", "inputs": {
            "context_length": CONTEXT_LENGTH, "context_stride": 1, "context_overlap": CONTEXT_OVERLAP}}
        prompt["20"]["inputs"]["context_options"] = ["22", 0]
    prompt["21"] = ksampler(["20", 0], seed, steps, cfg)
    return decoded(prompt, ["21", 0])


# ZiziLoopController plans: (interpolate, context_frames); "fast" = every window extrapolates, from the anchor
# and one earlier frame (the window-efficiency option of docs/quality.md: the most new frames per window)
PLANS = {"default": (True, 3), "fast": (False, 1)}


def ours_loop(size: int, frames: int, seed: int, steps: int, cfg: float, plan: str = "default") -> dict:
    interpolate, context_frames = PLANS[plan]
    prompt = common_nodes(size, frames)
    prompt["10"] = {"class_type": "ZiziTemporalModelLoader", "inputs": {
        "model": ["1", 0], "temporal_module": OUR_ANIMATEDIFF_PREFIX + MODULE, "beta_schedule": "auto"}}
    prompt["12"] = {"class_type": "ZiziLoopController", "inputs": {
        "model": ["10", 0], "positive": ["2", 0], "negative": ["3", 0], "vae": ["1", 2], "width": size,
        "height": size, "total_frames": frames, "window": 0, "stride": 0, "snr": 0.66, "seed": seed,
        "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "interpolate": interpolate,
        "context_frames": context_frames, "decode_chunk": 16}}
    prompt["91"] = {"class_type": "PreviewImage", "inputs": {"images": ["12", 0]}}
    return prompt


def timed(client: ComfyClient, prompt: dict, pid: int) -> tuple[float, float]:
    with PeakRss(pid) as rss:
        started = time.perf_counter()
        client.run(prompt, timeout=24 * 3600)
        seconds = time.perf_counter() - started
    return seconds, rss.growth_gb


def batch_table(client: ComfyClient, pid: int, args: argparse.Namespace) -> list[str]:
    builders = {"ours": ours_batch, "ADE": ade_batch}
    times: dict[str, list[float]] = {name: [] for name in builders}
    for build in builders.values():  # warm-up: loaders, first allocation
        timed(client, build(args.size, 16, 1, args.steps, args.cfg), pid)
    for run in range(args.repeats):
        for name, build in builders.items():
            seconds, _ = timed(client, build(args.size, 16, 100 + run, args.steps, args.cfg), pid)
            times[name].append(seconds)
            log.info("(a) %s run %d: %.1f s", name, run + 1, seconds)
    ours, ade = statistics.median(times["ours"]), statistics.median(times["ADE"])
    return ["| graph | seconds (median) | runs |", "|---|---:|---|",
            f"| ours: ZiziTemporalModelLoader -> KSampler | {ours:.1f} | {', '.join(f'{t:.1f}' for t in times['ours'])} |",
            f"| ADE: ADE_AnimateDiffLoaderGen1 -> KSampler | {ade:.1f} | {', '.join(f'{t:.1f}' for t in times['ADE'])} |",
            f"| ratio ours / ADE | {ours / ade:.2f} | |"]


def video_table(client: ComfyClient, pid: int, args: argparse.Namespace) -> None:
    """Printed row by row as the runs finish (a long sweep cut short keeps what it measured)."""
    builders = {f"ours {plan}": (lambda *a, plan=plan: ours_loop(*a, plan=plan)) for plan in args.plans}
    builders["ADE"] = lambda *a: ade_batch(*a, context=True)
    for build in builders.values():  # warm-up at the smallest length
        timed(client, build(args.size, min(args.frames), 2, args.steps, args.cfg), pid)
    ours = [name for name in builders if name != "ADE"]
    print("| N | " + " | ".join(f"{n} s/frame" for n in ours) + " | ADE s/frame | "  # noqa: T201
          + " | ".join(f"{n} / ADE" for n in ours) + " | " + " | ".join(f"{n} peak RSS (GB)" for n in ours)
          + " | ADE peak RSS (GB) |\n|---:|" + "---:|" * (3 * len(ours) + 2), flush=True)
    for n in args.frames:
        row = {}
        for name, build in builders.items():
            seconds, growth = timed(client, build(args.size, n, 200 + n, args.steps, args.cfg), pid)
            row[name] = (seconds / n, growth)
            log.info("(b) %s N=%d: %.2f s/frame, peak RSS +%.2f GB", name, n, seconds / n, growth)
        print(f"| {n} | " + " | ".join(f"{row[o][0]:.2f}" for o in ours) + f" | {row['ADE'][0]:.2f} | "  # noqa: T201
              + " | ".join(f"{row[o][0] / row['ADE'][0]:.2f}" for o in ours) + " | "
              + " | ".join(f"{row[o][1]:.2f}" for o in ours) + f" | {row['ADE'][1]:.2f} |", flush=True)


def machine_line(comfy_dir: Path) -> str:
    import torch

    version = (comfy_dir / "comfyui_version.py").read_text().split('"')[1] if (comfy_dir / "comfyui_version.py").is_file() else "?"
    return (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} CPU threads, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; torch {torch.__version__}, ComfyUI {version}, "
            "AnimateDiff-Evolved 1.5.7")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-batch", action="store_true", help="only the N-frame table (b)")
    parser.add_argument("--plans", nargs="+", choices=sorted(PLANS), default=["default", "fast"],
                        help="ZiziLoopController plans in table (b): default (interpolation, 3 context frames), "
                             "fast (extrapolation only, 1 context frame)")
    parser.add_argument("--gpu", action="store_true", help="let ComfyUI use the GPU (default: --cpu)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    comfy_dir = find_comfyui()
    with tempfile.TemporaryDirectory(prefix="zizi-versus-ade-") as scratch:
        server = server_with_ade(comfy_dir, Path(scratch), {CHECKPOINT: full_sd15_checkpoint(seed=0)},
                                 {MODULE: sd15_motion_module_ckpt("v2", seed=0)})
        server.cpu = not args.gpu
        with server:
            client = ComfyClient(server.url, timeout=3600)
            if ADE_LOADER not in client.object_info():
                raise SystemExit(f"AnimateDiff-Evolved did not load:\n{server.log_tail()}")
            pid = server.process.pid
            print(f"Machine: {machine_line(comfy_dir)}\n"  # noqa: T201
                  f"Command: `python bench/versus_ade.py {shlex.join(argv if argv is not None else sys.argv[1:])}`\n"
                  f"{args.size}x{args.size}, {args.steps} euler steps, cfg {args.cfg}, random full-size SD1.5 + "
                  f"random AnimateDiff v2 .ckpt\n", flush=True)
            if not args.skip_batch:
                print("(a) 16-frame batch through KSampler\n\n" + "\n".join(batch_table(client, pid, args)) + "\n",  # noqa: T201
                      flush=True)
            print("(b) N-frame videos: ours ZiziLoopController (auto window/stride) vs ADE context windows "  # noqa: T201
                  f"({CONTEXT_LENGTH} frames, overlap {CONTEXT_OVERLAP})\n", flush=True)
            video_table(client, pid, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

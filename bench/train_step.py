"""Training step time and peak memory of the temporal layers on a full-size SD1.5-shaped UNet.

    python bench/train_step.py                     # CUDA: 16 frames at 512x512; CPU: a reduced config
    python bench/train_step.py --frames 8 --size 256 --steps 5

One step = the trainer's real step (train/batch.py convention, ZiziVideoUNet, masked loss, backward,
grad clipping, optimizer step) on random weights (devtools.random_sd15, speed does not depend on
values) for one window with an anchor, 3 known and F-4 generated frames, batch 1. Each configuration
runs in its own process so peak memory is its own: backbone dtype (fp16 with a GradScaler / bf16 /
fp32), gradient checkpointing off/on, AdamW vs bitsandbytes 8-bit AdamW (CUDA only).
Peak memory is torch.cuda.max_memory_allocated on CUDA and the process's peak RSS on the CPU.
Prints a markdown table with the device; results go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.random_sd15 import SD15_UNET_CONFIG, build_unet  # noqa: E402
from train.batch import build_training_batch, masked_mse  # noqa: E402
from train.config import OptimizerConfig  # noqa: E402
from train.optim import OptimizerUnavailable, build_optimizer  # noqa: E402
from zizi_models.planner import window_positions  # noqa: E402
from zizi_models.temporal import SD15_CONFIG, ZiziTemporalModel, ZiziVideoUNet, freeze_backbone  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _window(frames: int, latent: int, device: torch.device):
    """An extrapolation-like window: anchor + 3 known context frames (fewer in short windows), the rest generated."""
    body = list(range(5, 5 + frames - 1))
    frame_ids = [0] + body
    positions = torch.tensor([window_positions(frame_ids, 0, SD15_CONFIG.max_positions)], device=device)
    mask = torch.zeros(1, frames, dtype=torch.bool, device=device)
    mask[:, : min(4, frames - 1)] = True
    anchor = torch.zeros_like(mask)
    anchor[:, 0] = True
    latents = torch.randn(1, frames, 4, latent, latent, device=device)
    return latents, mask, anchor, positions


def run_one(frames: int, size: int, dtype_name: str, checkpointing: bool, optimizer: str, steps: int,
            device: torch.device) -> dict:
    dtype = DTYPES[dtype_name]
    try:  # fail fast (before building 1.3 B parameters) when the optimizer cannot run here
        build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1, device=device))]}],
                        OptimizerConfig(name=optimizer), device)
    except OptimizerUnavailable as err:
        return {"error": str(err).split(";")[0].split(" (")[0]}
    with torch.device(device):
        unet = build_unet(SD15_UNET_CONFIG, seed=0)
        temporal = ZiziTemporalModel(SD15_CONFIG)
    unet.to(dtype=dtype)
    video = ZiziVideoUNet(unet, temporal, gradient_checkpointing=checkpointing)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    params = freeze_backbone(video)
    opt = build_optimizer([{"params": params}], OptimizerConfig(name=optimizer, lr=1e-5), device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    alphas = torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, 0).to(device)
    latents, mask, anchor, positions = _window(frames, size // 8, device)
    text = torch.randn(1, 77, 768, device=device, dtype=dtype)
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(steps + 1):  # step 0 warms up (allocator, kernels) and is not timed
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        tb = build_training_batch(latents, mask, anchor, positions, alphas,
                                  torch.Generator(device).manual_seed(step), 0.25, 4.0)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            pred = video(tb.noisy, tb.timesteps, text, positions=tb.positions, known_latents=tb.known_latents,
                         mask=tb.mask, aug_level=tb.aug_level)
            loss = masked_mse(pred, tb.noise, tb.loss_mask).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step > 0:
            times.append(time.perf_counter() - started)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"step_s": sorted(times)[len(times) // 2], "peak_gib": peak, "loss": float(loss)}


def _configs(device: torch.device) -> list[tuple[str, bool, str]]:
    if device.type == "cuda":
        dtypes = ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
        return [(d, gc, opt) for d, gc, opt in itertools.product(dtypes, [False, True], ["adamw", "adamw8bit"])]
    # CPU: fp16 kernels are slow or missing; 8-bit Adam needs CUDA (reported, not run)
    return [("fp32", False, "adamw"), ("bf16", False, "adamw"), ("bf16", True, "adamw"), ("bf16", True, "adamw8bit")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=None, help="default: 16 on CUDA, 4 on CPU")
    parser.add_argument("--size", type=int, default=None, help="default: 512 on CUDA, 256 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 5 on CUDA, 1 on CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    frames = args.frames or (16 if cuda else 4)
    size = args.size or (512 if cuda else 256)
    steps = args.steps or (5 if cuda else 1)
    if args.one:
        dtype_name, checkpointing, optimizer = json.loads(args.one)
        print(json.dumps(run_one(frames, size, dtype_name, checkpointing, optimizer, steps, device)))  # noqa: T201
        return 0

    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; window {frames} frames at {size}x{size} "  # noqa: T201
          f"(latent {size // 8}x{size // 8}), batch 1, SD1.5-shaped UNet + full temporal module"
          + ("" if cuda else "; REDUCED configuration (no CUDA device)"))
    print("\n| backbone | grad ckpt | optimizer | step time | peak memory |")  # noqa: T201
    print("|---|---|---|---:|---:|")  # noqa: T201
    for dtype_name, checkpointing, optimizer in _configs(device):
        cmd = [sys.executable, __file__, "--device", args.device, "--frames", str(frames), "--size", str(size),
               "--steps", str(steps), "--one", json.dumps([dtype_name, checkpointing, optimizer])]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            result = {"error": "out of memory" if "out of memory" in proc.stderr.lower() else tail[:80]}
        else:
            result = json.loads(lines[-1])
        memory_kind = "GiB (CUDA max allocated)" if cuda else "GiB (peak RSS)"
        if "error" in result:
            row = f"| {dtype_name} | {'on' if checkpointing else 'off'} | {optimizer} | n/a | {result['error']} |"
        else:
            row = (f"| {dtype_name} | {'on' if checkpointing else 'off'} | {optimizer} | {result['step_s']:.2f} s | "
                   f"{result['peak_gib']:.2f} {memory_kind} |")
        print(row, flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

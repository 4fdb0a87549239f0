"""Training step time and peak memory of the temporal layers on a full-size SD1.5-shaped UNet.

    python bench/train_step.py                     # CUDA: 16 frames at 512x512; CPU: a reduced config
    python bench/train_step.py --frames 8 --size 256 --steps 5
    python bench/train_step.py --configs bf16:on:adamw8bit --strategies deepspeed_zero2 fsdp   # CUDA

One step = the trainer's real step (train/batch.py convention, ZiziVideoUNet, masked loss, backward,
grad clipping, optimizer step) on random weights (devtools.random_sd15, speed does not depend on
values) for one window with an anchor, 3 known and F-4 generated frames, batch 1. Each configuration
runs in its own process so peak memory is its own: backbone dtype (fp16 with a GradScaler / bf16 /
fp32), gradient checkpointing off/on, AdamW vs bitsandbytes 8-bit AdamW (CUDA only); `--configs` picks
some (`dtype:ckpt:optimizer`, e.g. `bf16:on:adamw8bit`).
`--strategies NAME ...` adds one row per launcher config of the trainer (`train/accelerate/NAME.yaml`,
e.g. `deepspeed_zero2`, `fsdp`): that process runs under `accelerate launch --num_processes 1` and the step
goes through accelerate as in `train/fit.py` (TrainableParts prepared with the optimizer,
`accelerator.backward`, `clip_grad_norm_`), bf16 backbone, gradient checkpointing on, AdamW.
Peak memory is torch.cuda.max_memory_allocated on CUDA and the process's peak RSS on the CPU.
Prints a markdown table with the device; results go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import re
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
            device: torch.device, launched: bool = False) -> dict:
    """launched: under `accelerate launch` (a --strategies row): the step goes through accelerate."""
    dtype = DTYPES[dtype_name]
    accelerator = None
    if launched:
        from accelerate import Accelerator

        accelerator = Accelerator(mixed_precision="no" if dtype == torch.float32 else dtype_name)
        device = accelerator.device
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
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16 and accelerator is None)
    if accelerator is not None:
        step_fn = _accelerate_step(accelerator, video, opt, dtype)
    else:
        def step_fn(tb, text) -> torch.Tensor:
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
            return loss
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
        loss = step_fn(tb, text)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step > 0:
            times.append(time.perf_counter() - started)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"step_s": sorted(times)[len(times) // 2], "peak_gib": peak, "loss": float(loss)}


def _accelerate_step(accelerator, video: ZiziVideoUNet, opt: torch.optim.Optimizer, dtype: torch.dtype):
    """The trainer's step through accelerate (train/fit.py): TrainableParts prepared with the optimizer."""
    from accelerate.utils import DistributedType

    from train.trainable import TrainableParts

    if accelerator.distributed_type == DistributedType.DEEPSPEED:  # as train/fit.py: no dataloader to infer it from
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
    wrapped, opt = accelerator.prepare(TrainableParts(video), opt)
    wrapped.train()
    params = [p for p in wrapped.parameters() if p.requires_grad]

    autocast = torch.autocast(accelerator.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step(tb, text) -> torch.Tensor:
        with autocast:  # as train/fit.py: accelerate does not autocast under DeepSpeed
            pred = wrapped(tb.noisy, tb.timesteps, text, tb.positions, tb.known_latents, tb.mask, tb.aug_level)
        loss = masked_mse(pred, tb.noise, tb.loss_mask).mean()
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def failure_reason(stderr: str) -> str:
    """One line for the table from a failed row's stderr: "out of memory", else the first exception line, the
    worker's (under a launcher each line may carry a "[rank0]: " prefix, and the launcher's ChildFailedError
    follows), else the last line."""
    if "out of memory" in stderr.lower():
        return "out of memory"
    lines = [re.sub(r"^\[rank\d+\]:\s*", "", line).strip() for line in stderr.strip().splitlines()]
    exceptions = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", line)
                  and "ChildFailedError" not in line]
    return ((exceptions or [line for line in lines if line] or ["?"])[0 if exceptions else -1])[:160].replace("|", "/")


def _parse_config(text: str) -> tuple[str, bool, str]:
    """"bf16:on:adamw8bit" -> ("bf16", True, "adamw8bit")."""
    dtype_name, checkpointing, optimizer = text.split(":")
    if dtype_name not in DTYPES or checkpointing not in ("on", "off") or optimizer not in ("adamw", "adamw8bit"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected DTYPE:on|off:adamw|adamw8bit with DTYPE in {list(DTYPES)}")
    return dtype_name, checkpointing == "on", optimizer


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
    parser.add_argument("--configs", type=_parse_config, nargs="*", default=None,
                        help="DTYPE:on|off:OPTIMIZER rows to run (default: every combination for the device; "
                             "none with --strategies: those rows only)")
    parser.add_argument("--row-timeout", type=float, default=None, help="seconds one row's process may take")
    parser.add_argument("--strategies", nargs="*", default=[],
                        help="launcher configs of the trainer (train/accelerate/NAME.yaml) to run one bf16 row each")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    parser.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)  # internal: under accelerate launch
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    frames = args.frames or (16 if cuda else 4)
    size = args.size or (512 if cuda else 256)
    steps = args.steps or (5 if cuda else 1)
    if args.one:
        dtype_name, checkpointing, optimizer = json.loads(args.one)
        result = run_one(frames, size, dtype_name, checkpointing, optimizer, steps, device, args.launched)
        print(json.dumps(result))  # noqa: T201
        return 0

    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; window {frames} frames at {size}x{size} "  # noqa: T201
          f"(latent {size // 8}x{size // 8}), batch 1, SD1.5-shaped UNet + full temporal module"
          + ("" if cuda else "; REDUCED configuration (no CUDA device)"))
    print("\n| strategy | backbone | grad ckpt | optimizer | step time | peak memory |")  # noqa: T201
    print("|---|---|---|---|---:|---:|")  # noqa: T201
    rows = [("plain", *c) for c in (args.configs if args.configs is not None else _configs(device))]
    rows += [(name, "bf16", True, "adamw") for name in args.strategies]
    for strategy, dtype_name, checkpointing, optimizer in rows:
        cmd = [__file__, "--device", args.device, "--frames", str(frames), "--size", str(size),
               "--steps", str(steps), "--one", json.dumps([dtype_name, checkpointing, optimizer])]
        if strategy == "plain":
            cmd = [sys.executable, *cmd]
        else:
            launch_config = ROOT / "train" / "accelerate" / f"{strategy}.yaml"
            if not launch_config.is_file():
                raise SystemExit(f"--strategies {strategy}: no launcher config {launch_config}")
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch_config),
                   "--num_processes", "1", "--num_machines", "1", "--mixed_precision", dtype_name, *cmd, "--launched"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=args.row_timeout)
        except subprocess.TimeoutExpired as err:
            stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
            proc = subprocess.CompletedProcess(cmd, -1, "", stderr + f"\ntimed out after {args.row_timeout:g} s")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            result = {"error": failure_reason(proc.stderr)}
            print(f"--- {strategy} {dtype_name} {optimizer}: exit {proc.returncode}; its output:\n{proc.stderr}",
                  file=sys.stderr, flush=True)
        else:
            result = json.loads(lines[-1])
        memory_kind = "GiB (CUDA max allocated)" if cuda else "GiB (peak RSS)"
        if "error" in result:
            row = f"| {strategy} | {dtype_name} | {'on' if checkpointing else 'off'} | {optimizer} | n/a | {result['error']} |"
        else:
            row = (f"| {strategy} | {dtype_name} | {'on' if checkpointing else 'off'} | {optimizer} | {result['step_s']:.2f} s | "
                   f"{result['peak_gib']:.2f} {memory_kind} |")
        print(row, flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the temporal layers cost at SD1.5 scale: parameters, FLOPs per frame, load + inject time.

    python bench/temporal_cost.py [--frames 16] [--size 512]

FLOPs are counted by torch's FlopCounterMode during a real forward on the CPU with random weights:
the UNet alone vs the UNet with a full-size temporal module, for one window of F frames at 512x512
(latent 64x64), divided by F. Load + inject: reading a full-size fp16 temporal module file, building the
model, and injecting it into ComfyUI's SD1.5 (in-process, CPU), the work ZiziTemporalModelLoader does.
Prints a markdown table; the results go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.random_sd15 import SD15_UNET_CONFIG, build_unet, full_sd15_checkpoint, sd15_temporal_module  # noqa: E402
from zizi_models.temporal import SD15_CONFIG, ZiziTemporalModel, ZiziVideoUNet  # noqa: E402


def count_flops(frames: int, size: int, with_temporal: bool) -> int:
    latent = size // 8
    unet = build_unet(SD15_UNET_CONFIG, seed=0)
    sample = torch.randn(1, frames, 4, latent, latent)
    context = torch.randn(1, 77, 768)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        if with_temporal:
            video = ZiziVideoUNet(unet, ZiziTemporalModel(SD15_CONFIG))
            video(sample, torch.tensor(500.0), context, positions=torch.arange(frames)[None],
                  known_latents=torch.zeros_like(sample), mask=torch.zeros(1, frames))
        else:
            unet(sample[0], torch.tensor(500.0), context.expand(frames, -1, -1))
    return counter.get_total_flops()


def load_and_inject_seconds(repeats: int) -> tuple[float, float]:
    from devtools.comfy_inprocess import import_pack
    from devtools.comfyui_provision import find_comfyui

    pack = import_pack(find_comfyui())
    import comfy.sd

    bridge = pack.nodes.comfy
    model = comfy.sd.load_checkpoint_guess_config(str(full_sd15_checkpoint()), output_vae=False, output_clip=False)[0]
    path = sd15_temporal_module(seed=0, fresh=False)
    load_times, inject_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        temporal = pack.zizi_models.temporal.load_temporal_model(path)
        loaded = time.perf_counter()
        bridge.inject_temporal_model(model, temporal)
        load_times.append(loaded - started)
        inject_times.append(time.perf_counter() - loaded)
    return min(load_times), min(inject_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with torch.device("meta"):  # parameter counts need no memory
        unet_params = sum(p.numel() for p in build_unet(SD15_UNET_CONFIG, seed=0).parameters())
        temporal = ZiziTemporalModel(SD15_CONFIG)
    temporal_params = sum(p.numel() for p in temporal.parameters())
    motion_params = sum(p.numel() for _, m in temporal.motion_modules() for p in m.parameters())
    base = count_flops(args.frames, args.size, with_temporal=False) / args.frames
    inflated = count_flops(args.frames, args.size, with_temporal=True) / args.frames
    load_s, inject_s = load_and_inject_seconds(args.repeats)

    print(f"device: CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {torch.__version__}; command: python bench/temporal_cost.py --frames {args.frames} --size {args.size}")
    print()
    print("| quantity | value |")
    print("|---|---:|")
    print(f"| SD1.5 UNet parameters | {unet_params / 1e6:.1f} M |")
    print(f"| temporal module parameters (all parts) | {temporal_params / 1e6:.1f} M (+{100 * temporal_params / unet_params:.0f}%) |")
    print(f"| of which motion modules | {motion_params / 1e6:.1f} M |")
    print(f"| UNet FLOPs per frame, {args.size}x{args.size} | {base / 1e9:.1f} GFLOP |")
    print(f"| UNet + temporal FLOPs per frame, window of {args.frames} | {inflated / 1e9:.1f} GFLOP (+{100 * (inflated - base) / base:.1f}%) |")
    print(f"| load full-size fp16 temporal module (best of {args.repeats}) | {load_s:.2f} s |")
    print(f"| inject into ComfyUI SD1.5 MODEL (clone + patches) | {inject_s * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What reference attention costs per window: one window sampled with and without ZiziReferenceAttention.

    python bench/reference_cost.py [--steps 4] [--repeats 3] [--threads 2] [--skip-sd15]

In-process ComfyUI on the CPU (or the GPU ComfyUI picks). Two models:
  puppet  the shipped puppet model (weights/zizi_puppet_*), 64x64, window 8 (its trained window)
  sd15    full-size random SD1.5 + a random AnimateDiff v2 motion module (.ckpt, AnimateDiff's layout),
          64x64, window 16 (AnimateDiff's)
One window with the anchor (frame 0) known and the other frames generated, `steps` euler steps, cfg 1 and
cfg 7 (both CFG halves in one UNet batch), sampled by ``bridge.sample_window`` (the loop controller's path).
Timed: reference off (the plain inflated MODEL), strength 1 (one attention over own + anchor tokens) and
strength 0.5 (that and plain attention, blended). Median of `repeats` alternating runs after a warm-up.
Prints a markdown table; the results go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devtools.comfy_inprocess import import_pack  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402

STRENGTHS = (0.0, 1.0, 0.5)


def load_puppet(pack):
    bridge = pack.nodes.comfy
    weights = REPO_ROOT / "weights"
    model, clip, _ = bridge.sd15_family_from_checkpoint(weights / "zizi_puppet_base.safetensors")
    temporal = pack.zizi_models.temporal.load_temporal_model(weights / "zizi_puppet_temporal.safetensors")
    return bridge.inject_temporal_model(model, temporal), clip, 8, 4  # window, VAE downscale


def load_sd15(pack):
    import comfy.sd

    from devtools.random_addons import sd15_motion_module_ckpt
    from devtools.random_sd15 import full_sd15_checkpoint

    temporal_pkg = pack.zizi_models.temporal
    model, clip, _ = comfy.sd.load_checkpoint_guess_config(str(full_sd15_checkpoint()))[:3]
    temporal = temporal_pkg.model_from_state(temporal_pkg.read_temporal_state(sd15_motion_module_ckpt("v2")))
    return pack.nodes.comfy.inject_temporal_model(model, temporal), clip, 16, 8


def time_window(pack, model, conds: tuple, frames: int, latent: int, steps: int, cfg: float, strength: float) -> float:
    bridge, temporal_pkg = pack.nodes.comfy, pack.zizi_models.temporal
    if strength:
        model = bridge.with_reference_attention(model, strength, 0.0, 1.0)
    positive, negative = conds
    latents = torch.zeros(frames, 4, latent, latent)
    latents[0] = torch.randn(4, latent, latent, generator=torch.Generator().manual_seed(0))
    known = torch.zeros(frames)
    known[0] = 1
    window = temporal_pkg.WindowInputs(torch.arange(frames), bridge.latent_to_model_space(model, latents) * known[:, None, None, None],
                                       known, torch.zeros(frames))
    started = time.perf_counter()
    with torch.inference_mode():
        bridge.sample_window(model, window, latents, known == 0, positive, negative, 0, steps, cfg, "euler", "normal",
                             reference=0)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--skip-sd15", action="store_true", help="the puppet model only (minutes less on a CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pack = import_pack(find_comfyui())
    rows = []
    loaders = [("puppet (Zizi module)", load_puppet)] + ([] if args.skip_sd15 else [("SD1.5 + AnimateDiff v2", load_sd15)])
    for name, load in loaders:
        model, clip, frames, downscale = load(pack)
        conds = tuple(clip.encode_from_tokens_scheduled(clip.tokenize(text)) for text in ("a puppet", ""))
        latent = args.size // downscale
        for cfg in (1.0, 7.0):
            time_window(pack, model, conds, frames, latent, 1, cfg, 1.0)  # warm-up
            times = {s: [] for s in STRENGTHS}
            for _ in range(args.repeats):
                for strength in STRENGTHS:
                    times[strength].append(time_window(pack, model, conds, frames, latent, args.steps, cfg, strength))
            median = {s: statistics.median(t) for s, t in times.items()}
            rows.append((name, frames, cfg, median))
            print(f"{name}, cfg {cfg:g}: " + ", ".join(f"strength {s:g} {median[s]:.2f} s" for s in STRENGTHS), flush=True)
    print(f"\ndevice: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {args.threads}, "
          f"{args.size}x{args.size}, {args.steps} euler steps, median of {args.repeats}\n")
    print("| model | window | cfg | off (s) | strength 1 (s) | cost | strength 0.5 (s) | cost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, frames, cfg, m in rows:
        print(f"| {name} | {frames} | {cfg:g} | {m[0.0]:.2f} | {m[1.0]:.2f} | {m[1.0] / m[0.0] - 1:+.0%} | "
              f"{m[0.5]:.2f} | {m[0.5] / m[0.0] - 1:+.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

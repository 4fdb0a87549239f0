"""Loop controller speed and peak memory for short vs long videos (issue: samplers and controller).

    python bench/loop_memory.py [--frames 32 512] [--size 64] [--steps 1] [--cfg 1.0] [--model sd15|puppet]

Runs ZiziLoopController in an in-process ComfyUI, the same code path the node runs, on the full-size
random SD1.5 checkpoint with a full-size random temporal module (`sd15`), or on the shipped small
puppet model in weights/ (`puppet`: 64x64 frames, cheap enough for 512 frames on a CPU). For each video length it reports
output frames per second and peak memory: on a GPU the peak allocated CUDA memory of the run (must not
grow with the number of frames), on the CPU the process's peak RSS growth during the run (weights are
loaded before the first measurement). Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.comfy_inprocess import import_pack  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402
from devtools.random_sd15 import full_sd15_checkpoint, sd15_temporal_module  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--model", choices=["sd15", "puppet"], default="sd15")
    parser.add_argument("--window", type=int, default=None, help="default: 7 (sd15), 8 (puppet)")
    args = parser.parse_args()
    window = args.window or (8 if args.model == "puppet" else 7)

    pack = import_pack(find_comfyui())
    import comfy.model_management
    import comfy.sd

    if args.model == "puppet":
        weights = Path(__file__).resolve().parent.parent / "weights"
        model, clip, vae = pack.nodes.comfy.sd15_family_from_checkpoint(weights / "zizi_puppet_base.safetensors")
        temporal = pack.zizi_models.temporal.load_temporal_model(weights / "zizi_puppet_temporal.safetensors")
    else:
        model, clip, vae = comfy.sd.load_checkpoint_guess_config(str(full_sd15_checkpoint()))[:3]
        temporal = pack.zizi_models.temporal.load_temporal_model(sd15_temporal_module(seed=0, fresh=False))
    inflated = pack.nodes.comfy.inject_temporal_model(model, temporal)
    tokens = clip.tokenize("a dancer")
    positive = [[clip.encode_from_tokens(tokens), {}]]
    negative = [[clip.encode_from_tokens(clip.tokenize("")), {}]]
    controller = pack.nodes.loop_controller.ZiziLoopController()
    device = comfy.model_management.get_torch_device()
    cuda = device.type == "cuda"
    rows = []
    for frames in [min(args.frames)] + list(args.frames):  # the first run warms up and is not reported
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        images, _, _ = controller.generate(inflated, positive, negative, vae, args.size, args.size, frames, window, 4, 0.66,
                                           0, args.steps, args.cfg, "euler", "normal")
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb() - rss_before
        rows.append((frames, images.shape[0], seconds, images.shape[0] / seconds, peak))
    rows = rows[1:]
    memory = "peak CUDA allocated (MiB)" if cuda else "peak RSS growth over the warm-up run (MiB)"
    print(f"device: {torch.cuda.get_device_name() if cuda else 'CPU ' + platform.machine()}, {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}; command: python bench/loop_memory.py --frames {' '.join(map(str, args.frames))} "
          f"--size {args.size} --steps {args.steps} --cfg {args.cfg} --model {args.model} (window {window})")
    print()
    print(f"| frames | frames out | seconds | frames/s | {memory} |")
    print("|---:|---:|---:|---:|---:|")
    for frames, out, seconds, fps, peak in rows:
        print(f"| {frames} | {out} | {seconds:.1f} | {fps:.2f} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

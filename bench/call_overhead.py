"""Per-call overhead of the temporal glue: one window's UNet calls through the hook vs the bare forwards.

    python bench/call_overhead.py [--frames 8] [--latent 32] [--steps 10] [--repeats 5] [--threads 1]

In-process ComfyUI on the CPU, the tiny random SD1.5-family UNet with a temporal module that has every
part switched on and random (motion modules, temporal convs, known-frame channels, augmentation
embedding, a pose encoder on 8x the latent grid). One window of F frames with non-contiguous positions,
known frames, levels and pose images; CFG, so every UNet call holds 2F rows. Timed, min over repeats:

  base 2D      the received (not inflated) UNet, `steps` forwards of 2F rows: no temporal layer at all
  bare         the inflated UNet, `steps` forwards with a FrameCall built beforehand on the device and no
               caching: base UNet + every temporal layer + known-frame / pose / level features per call,
               and no per-call glue. This is "the sum of the bare UNet forwards"
  bare, window features made once   the same with a caching FrameCall whose window-only features (known
               frames, pose encoder, level embedding) were made before the timing: the network's per-call compute
  hook         the same `steps` calls the way ComfyUI's samplers make them: the DIFFUSION_MODEL wrapper
               builds (or, with the per-window cache, reuses) the FrameCall from the window each call
  sample       bridge.sample_window: the window sampled by ComfyUI's KSampler machinery (euler, `steps`
               steps, cfg 7), i.e. what the loop controller does per window, sampler overhead included

Ratios are against `bare`. Prints a markdown table; the results go into docs/benchmarks.md. Runs on the
code of the tree it lives in (copy it into another checkout to time that one).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.comfy_inprocess import import_pack  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402
from devtools.random_sd15 import TINY_UNET_CONFIG, TINY_VAE_CONFIG, build_unet  # noqa: E402

POSE_DOWNSCALE = 8


def build(pack, frames: int, latent: int):
    from zizi_models.sd15_keys import to_ldm

    bridge, temporal_pkg = pack.nodes.comfy, pack.zizi_models.temporal
    unet = build_unet(TINY_UNET_CONFIG, seed=3).float()
    base = bridge.sd15_model_from_state_dict(to_ldm(unet.state_dict(), {}, {}, TINY_UNET_CONFIG, TINY_VAE_CONFIG),
                                             dtype=torch.float32)
    config = temporal_pkg.temporal_config_for_unet(unet, has_temporal_conv=True, pose_channels=3,
                                                   pose_downscale=POSE_DOWNSCALE)
    temporal = temporal_pkg.ZiziTemporalModel(config)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in temporal.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05 + (p if p.ndim == 1 else 0))
    patched = bridge.inject_temporal_model(base, temporal.eval())
    mask = torch.zeros(frames)
    mask[: max(1, frames // 4)] = 1
    level = torch.rand(frames, generator=generator) * mask
    level[0] = 0
    positions = torch.cat([torch.arange(frames // 2), torch.arange(frames - frames // 2) * 4 + frames])
    known = torch.randn(frames, 4, latent, latent, generator=generator) * mask[:, None, None, None]
    pose = torch.rand(frames, 3, latent * POSE_DOWNSCALE, latent * POSE_DOWNSCALE, generator=generator)
    window = temporal_pkg.WindowInputs(positions, known, mask, level, pose)
    return bridge, base, patched, window


def unet_options(model, extra: dict, wrappers: bool) -> dict:
    options = dict(model.model_options["transformer_options"])
    if wrappers:
        options["wrappers"] = model.wrappers
    options["cond_or_uncond"] = [0, 1]
    options.update(extra)
    return options


def fresh_window(pack, window):
    """A new WindowInputs with the same data: nothing cached from an earlier repeat."""
    return pack.zizi_models.temporal.WindowInputs(window.positions, window.known, window.mask, window.level, window.pose)


def bare_call(window, rows: int):
    try:
        return window.for_batch(rows, torch.device("cpu"), cache=False)
    except TypeError:  # the code before the per-window cache: a FrameCall never caches
        return window.for_batch(rows, torch.device("cpu"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pack = import_pack(find_comfyui(), cpu=True)
    import comfy.model_management

    bridge, base, patched, window = build(pack, args.frames, args.latent)
    hooks = sys.modules[f"{pack.__name__}.nodes.comfy.temporal_hooks"]
    frames, rows, steps = args.frames, 2 * args.frames, args.steps
    generator = torch.Generator().manual_seed(5)
    xs = [torch.randn(rows, 4, args.latent, args.latent, generator=generator) for _ in range(steps)]
    ts = [torch.full((rows,), 999.0 - 90 * i) for i in range(steps)]
    context = torch.randn(rows, 77, TINY_UNET_CONFIG["cross_attention_dim"], generator=generator)

    def unet_loop(model, options: dict):
        def run() -> None:
            for x, t in zip(xs, ts, strict=True):
                model.model.diffusion_model(x, t, context=context, transformer_options=options)
        return run

    def setup_base():
        comfy.model_management.load_models_gpu([base])
        return unet_loop(base, unet_options(base, {}, wrappers=False))

    def setup_bare():
        comfy.model_management.load_models_gpu([patched])
        return unet_loop(patched, unet_options(patched, {hooks.CALL_OPTION: bare_call(window, rows)}, wrappers=False))

    def setup_warm():
        comfy.model_management.load_models_gpu([patched])
        call = fresh_window(pack, window).for_batch(rows, torch.device("cpu"))  # caching FrameCall
        if getattr(call, "cache", None) is None:
            return None  # the code before the per-window cache has no such thing
        options = unet_options(patched, {hooks.CALL_OPTION: call}, wrappers=False)
        patched.model.diffusion_model(xs[0], ts[0], context=context, transformer_options=options)  # features made
        return unet_loop(patched, options)

    def setup_hook():
        comfy.model_management.load_models_gpu([patched])
        return unet_loop(patched, unet_options(patched, {hooks.WINDOW_OPTION: fresh_window(pack, window)}, wrappers=True))

    positive = [[context[:1], {}]]
    negative = [[torch.zeros_like(context[:1]), {}]]
    generate = window.mask == 0
    latents = torch.zeros(frames, 4, args.latent, args.latent)

    def setup_sample():
        chosen = fresh_window(pack, window)
        return lambda: bridge.sample_window(patched, chosen, latents, generate, positive, negative, 0, steps, 7.0,
                                            "euler", "normal")

    setups = {"base 2D": setup_base, "bare": setup_bare, "bare, window features made once": setup_warm,
              "hook": setup_hook, "sample": setup_sample}
    best = dict.fromkeys(setups, float("inf"))
    with torch.no_grad():
        for name, setup in setups.items():  # warm-up: model loading, allocator, first-call paths
            run = setup()
            if run is None:
                best[name] = None
            else:
                run()
        for _ in range(args.repeats):  # interleaved, so load from other jobs hits every row alike
            for name, setup in setups.items():
                run = setup() if best[name] is not None else None
                if run is None:
                    continue
                started = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - started)

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); "  # noqa: T201
          f"window {frames} frames, latent {args.latent}x{args.latent}, pose {args.latent * POSE_DOWNSCALE}px, "
          f"{steps} UNet calls of {rows} rows (CFG), min of {args.repeats}")
    print("| path | seconds | ms per UNet call | / bare |")  # noqa: T201
    print("|---|---:|---:|---:|")  # noqa: T201
    for name, seconds in best.items():
        if seconds is None:
            print(f"| {name} | n/a | n/a | n/a |")  # noqa: T201
        else:
            print(f"| {name} | {seconds:.3f} | {seconds / steps * 1000:.1f} | {seconds / best['bare']:.3f} |")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Generation speed, memory and the hardware limit of the loop controller at SD1.5 scale (issue #8, item 1).

    python bench/generate.py                  # the whole sweep: 512x512, bf16 on CUDA (fp32 on the CPU)
    python bench/generate.py --live --frames-speed 512   # live preset only: 4 steps, no CFG, frames/s
    python bench/generate.py --live --compile # the live preset with the UNet and temporal blocks torch.compile'd
    python bench/generate.py --tiny --size 64 --frames 16 32 --frames-speed 16 --steps 1 --cfg-modes nocfg  # CPU smoke

On a GPU (H100/H200) run the first command (or bench/gpu_sweep.sh, which runs it among the others); the
default sweep takes about 4 minutes on an H200, plus 50 s to build the cached random weights on a machine
without them. Paste the printed tables into docs/benchmarks.md.

Model: the full-size random SD1.5 checkpoint and a full-size random temporal module
(devtools.random_sd15; speed does not depend on weight values), loaded by ComfyUI in this process
(`--dtype` goes to ComfyUI's UNet loading; the VAE dtype is ComfyUI's choice and is printed), the
temporal module injected with nodes.comfy.inject_temporal_model, and every run is the
ZiziLoopController node's generate() under torch.inference_mode(), as ComfyUI's executor runs it.
`--tiny` swaps in the tiny random SD1.5-family model for a CPU smoke run (numbers mean nothing).
`--compile` compiles, in place with torch.compile (default mode, shapes made dynamic after the first
recompile), every ResBlock and SpatialTransformer of ComfyUI's UNet and every temporal transformer of
the temporal module; the compile time lands in the warm-up run and is printed.
Window and stride default to 16 and 4: what the node's auto (0) picks for a temporal module without
trained-window metadata, such as this random one, and for AnimateDiff modules.

Tables (markdown, stdout, each printed as soon as its runs finish, so a run cut short keeps the earlier
ones; diagnostics go to stderr through logging):
1. loop controller frames/s for each steps x CFG setting (`--frames-speed` frames, after warm-up runs);
2. the limit: FLOPs per output frame = FLOPs of one UNet+temporal denoising call on a window (counted
   with FlopCounterMode, both CFG halves included) / window frames x steps x window overhead (frames
   sampled in windows / output frames, from zizi_models.planner.plan_video) + one VAE decode per frame,
   divided by a measured matmul throughput (bf16 8192^3 on CUDA, fp32 2048^3 on the CPU): the limit in
   frames/s and the measured fraction of it;
3. peak memory for each `--frames` length at the smallest steps and the first CFG mode (the live
   setting by default, so the 512-frame row is also the live preset's sustained frames/s):
   torch.cuda.max_memory_allocated (reset per run) on CUDA, peak RSS during the run on the CPU (both
   with the weights), and the ratio largest / smallest length (target: <= 1.05);
4. (CUDA) host synchronisations: one loop run of `--frames-speed` frames at 1 step under
   torch.cuda.set_sync_debug_mode("warn"), the syncs counted by the Python line that caused them;
5. an AnimateDiff-style baseline on the same injected model: whole 16-frame windows, nothing known,
   no overlap, one ComfyUI sampling call per window (nodes.comfy.sample_window) + VAE decode, its
   frames/s next to the loop's, and its own fraction of the limit (window overhead 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import platform
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.comfy_inprocess import import_pack  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402
from devtools.random_sd15 import full_sd15_checkpoint, sd15_temporal_module, tiny_base_checkpoint  # noqa: E402
from zizi_models.planner import plan_video  # noqa: E402

log = logging.getLogger("bench.generate")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CFG_SCALES = {"nocfg": 1.0, "cfg": 7.0}
BASELINE_WINDOW = 16  # AnimateDiff's context length
SAMPLER, SCHEDULER, SNR, STRIDE_DEFAULT = "euler", "normal", 0.66, 4


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


# FlopCounterMode knows CUDA's fused attention kernels but not the CPU one (it would count 0 for attention)
EXTRA_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


class PeakMemory:
    """Peak memory of a block, weights included: CUDA max allocated (reset on entry), or on the CPU the peak
    RSS sampled every 5 ms from /proc/self/statm (ru_maxrss never goes down between runs; RSS growth is
    meaningless once the allocator reuses freed memory)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.peak_mib = cuda, 0.0
        self._stop = threading.Event()

    @staticmethod
    def _rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self._top = max(self._top, self._rss_mib())

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._top = self._rss_mib()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mib = max(self._top, self._rss_mib())


def timed(fn: Callable[[], object], cuda: bool) -> tuple[object, float]:
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - started


def matmul_tflops(device: torch.device) -> tuple[float, str]:
    """Measured dense matmul throughput of the device: bf16 8192^3 on CUDA, fp32 2048^3 on the CPU."""
    cuda = device.type == "cuda"
    n, dtype, repeats = (8192, torch.bfloat16, 50) if cuda else (2048, torch.float32, 3)
    a, b, c = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(3))

    def matmuls(count: int) -> None:
        for _ in range(count):
            torch.matmul(a, b, out=c)

    matmuls(3)  # warm-up (cuBLAS heuristics, clocks)
    _, seconds = timed(lambda: matmuls(repeats), cuda)
    return 2 * n**3 * repeats / seconds / 1e12, f"{'bf16' if cuda else 'fp32'} {n}^3"


def compile_in_place(diffusion_model: torch.nn.Module, temporal: torch.nn.Module) -> str:
    """torch.compile (nn.Module.compile, in place) the UNet's ResBlocks and SpatialTransformers and the temporal
    module's TemporalTransformers: the blocks whose forward takes tensors only, so the temporal glue between
    them (FrameCall, transformer_options) stays eager. Returns what was compiled, e.g. "25 ResBlock, ..."."""
    # one compiled graph per block shape: SD1.5's ResBlocks alone have more input widths than dynamo's default
    # recompile limit (8) per code object (all ResBlocks share ResBlock.forward); past it they ran eager
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    counts: dict[str, int] = {}
    for root, kinds in ((diffusion_model, ("ResBlock", "SpatialTransformer")), (temporal, ("TemporalTransformer",))):
        for module in root.modules():
            kind = type(module).__name__
            if kind in kinds:
                module.compile()
                counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def load_models(pack, tiny: bool, dtype: torch.dtype, compile_blocks: bool = False):
    """(MODEL with temporal layers injected, CLIP, VAE, description); ComfyUI loads the weights."""
    import comfy.sd

    bridge, temporal_pkg = pack.nodes.comfy, pack.zizi_models.temporal
    if tiny:
        model, clip, vae = bridge.sd15_family_from_checkpoint(tiny_base_checkpoint(seed=0), dtype=dtype)
        layout = bridge.unet_layout(model)
        config = dataclasses.replace(
            temporal_pkg.SD15_CONFIG, block_out_channels=layout.block_out_channels, down_layers=layout.layers_per_block,
            up_layers=layout.layers_per_block + 1, in_channels=layout.in_channels, conv_in_kernel=layout.conv_in_kernel,
            time_embed_dim=layout.time_embed_dim, aug_embed_dim=layout.block_out_channels[0])
        torch.manual_seed(10)
        temporal = temporal_pkg.ZiziTemporalModel(config)
        for p in temporal.parameters():  # like sd15_temporal_module(fresh=False): the temporal layers really act
            p.add_(torch.randn_like(p) * 0.02)
        what, vae_how = "TINY random SD1.5-family model + temporal module (smoke run, not SD1.5 scale)", "as --dtype"
    else:
        model, clip, vae = comfy.sd.load_checkpoint_guess_config(str(full_sd15_checkpoint()), model_options={"dtype": dtype})[:3]
        temporal = temporal_pkg.load_temporal_model(sd15_temporal_module(seed=0, fresh=False))
        what, vae_how = "full-size random SD1.5 + full-size random temporal module", "ComfyUI's choice"
    inflated = bridge.inject_temporal_model(model, temporal)
    unet = model.model
    if compile_blocks:
        what += f"; torch.compile'd blocks: {compile_in_place(unet.diffusion_model, temporal)}"
    compute = unet.manual_cast_dtype or unet.get_dtype()
    what += (f"; UNet weights {str(unet.get_dtype())[6:]}, compute {str(compute)[6:]}; "
             f"temporal {str(next(temporal.parameters()).dtype)[6:]}; VAE {str(vae.vae_dtype)[6:]} ({vae_how})")
    return inflated, clip, vae, what


def run_loop(pack, model, positive, negative, vae, size: int, frames: int, window: int, stride: int, steps: int,
             cfg: float, interpolate: bool = True, context_frames: int = 3) -> int:
    """The node's own generate(); returns the number of frames it output."""
    controller = pack.nodes.loop_controller.ZiziLoopController()
    images, _, _ = controller.generate(model, positive, negative, vae, size, size, frames, window, stride, SNR, 0, steps,
                                       cfg, SAMPLER, SCHEDULER, interpolate=interpolate, context_frames=context_frames)
    return int(images.shape[0])


def run_baseline(pack, model, positive, negative, vae, size: int, frames: int, steps: int, cfg: float) -> int:
    """AnimateDiff-style: ceil(frames / 16) whole 16-frame windows, nothing known, no overlap, one sampling
    call per window through ComfyUI's sampling on the same injected model, each window decoded after it."""
    bridge = pack.nodes.comfy
    latent = size // bridge.vae_downscale(vae)
    window = pack.zizi_models.temporal.WindowInputs.contiguous(BASELINE_WINDOW)
    out = 0
    for index in range(math.ceil(frames / BASELINE_WINDOW)):
        bridge.throw_if_interrupted()
        latents = torch.zeros(BASELINE_WINDOW, 4, latent, latent)
        sampled = bridge.sample_window(model, window, latents, torch.ones(BASELINE_WINDOW, dtype=torch.bool), positive,
                                       negative, index, steps, cfg, SAMPLER, SCHEDULER)
        out += bridge.vae_decode(vae, sampled).shape[0]
    return out


def count_syncs(fn: Callable[[], object], repo_root: Path) -> list[tuple[str, int]]:
    """(origin, count) of the CUDA host synchronisations fn makes, most frequent first: origin is the innermost
    Python frame in this repository (ours) or else the innermost one (ComfyUI's, torch's), as file:line."""
    import traceback
    import warnings

    counts: dict[str, int] = {}
    original = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" not in str(message):
            return original(message, category, filename, lineno, file, line)
        frames = [f for f in traceback.extract_stack()[:-1] if "warnings.py" not in f.filename]
        ours = [f for f in frames if f.filename.startswith(str(repo_root)) and "/bench/" not in f.filename]
        where = (ours or frames)[-1]
        key = f"{Path(where.filename).name}:{where.lineno}" + ("" if ours else " (not ours)")
        counts[key] = counts.get(key, 0) + 1

    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        warnings.showwarning = original
    return sorted(counts.items(), key=lambda kv: -kv[1])


def window_call_flops(pack, model, positive, negative, vae, size: int, frames: int, cfg: float) -> int:
    """FLOPs of ONE denoising call (UNet + temporal layers, both CFG halves when cfg != 1) on a window of `frames`."""
    bridge = pack.nodes.comfy
    latent = size // bridge.vae_downscale(vae)
    window = pack.zizi_models.temporal.WindowInputs.contiguous(frames)
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOPS) as counter:  # euler, 1 step = 1 model call
        bridge.sample_window(model, window, torch.zeros(frames, 4, latent, latent), torch.ones(frames, dtype=torch.bool),
                             positive, negative, 0, 1, cfg, SAMPLER, SCHEDULER)
    return counter.get_total_flops()


def vae_decode_flops(pack, vae, size: int) -> int:
    bridge = pack.nodes.comfy
    latent = size // bridge.vae_downscale(vae)
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOPS) as counter:
        bridge.vae_decode(vae, torch.zeros(1, 4, latent, latent))
    return counter.get_total_flops()


def window_overhead(frames: int, window: int, stride: int, max_positions: int, interpolate: bool = True,
                    context_frames: int = 3) -> float:
    """Frames sampled in windows (known + generated) per output frame, for the controller's plan (no hint image)."""
    steps = plan_video(frames, window=window, stride=stride, max_positions=max_positions, hint=False,
                       interpolate=interpolate, context_frames=context_frames)
    return sum(len(s.frames) for s in steps) / frames


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="frame width = height in pixels (default 512)")
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 128, 512], help="lengths of the memory sweep")
    parser.add_argument("--frames-speed", type=int, default=64, help="frames of each frames/s run (default 64)")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 20])
    parser.add_argument("--cfg-modes", nargs="+", choices=list(CFG_SCALES), default=list(CFG_SCALES),
                        help="nocfg = cfg 1.0 (one UNet pass per step), cfg = cfg 7.0 (two)")
    parser.add_argument("--window", type=int, default=16,
                        help="loop controller window (default 16: the node's auto for a module without trained metadata)")
    parser.add_argument("--stride", type=int, default=STRIDE_DEFAULT)
    parser.add_argument("--dtype", choices=list(DTYPES), default=None, help="UNet dtype (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny random SD1.5-family model (CPU smoke run)")
    parser.add_argument("--live", action="store_true", help="live preset: 4 steps, no CFG, the frames/s run only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--interpolate", choices=("on", "off"), default="on",
                        help="the controller's interpolate (off: every window extrapolates, stride 1)")
    parser.add_argument("--context-frames", type=int, default=3, help="the controller's context_frames (default 3)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the UNet's ResBlocks/SpatialTransformers and the temporal transformers")
    args = parser.parse_args(argv)
    if args.live:
        args.steps, args.cfg_modes = [4], ["nocfg"]
    return args


def table(header: str, rows: list[str]) -> None:
    print(f"\n{header}\n", flush=True)
    for row in rows:
        print(row, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)  # ours; ComfyUI logs "Requested to load ..." at INFO for every window
    if args.threads:
        torch.set_num_threads(args.threads)
    pack = import_pack(find_comfyui())
    import comfy.model_management

    device = comfy.model_management.get_torch_device()
    cuda = device.type == "cuda"
    dtype = DTYPES[args.dtype or ("bf16" if cuda else "fp32")]
    try:
        import comfyui_version

        comfy_version = comfyui_version.__version__
    except ImportError:
        comfy_version = "unknown"
    settings = [(steps, mode) for steps in args.steps for mode in args.cfg_modes]
    name = torch.cuda.get_device_name(device) if cuda else f"CPU {platform.processor() or platform.machine()}"

    # tables are printed as soon as their runs finish: a run cut short by a time limit keeps the earlier ones
    with torch.inference_mode():
        log.info("loading models")
        model, clip, vae, what = load_models(pack, args.tiny, dtype, args.compile)
        positive = [[clip.encode_from_tokens(clip.tokenize("a dancer on a stage")), {}]]
        negative = [[clip.encode_from_tokens(clip.tokenize("")), {}]]
        max_positions = pack.nodes.comfy.temporal_model_of(model).config.max_positions
        print(f"device: {name}, {torch.get_num_threads()} CPU threads; torch {torch.__version__}; ComfyUI {comfy_version}; "
              f"{what}; {args.size}x{args.size}, window {args.window}, stride {args.stride}, interpolate {args.interpolate}, "
              f"context_frames {args.context_frames}, snr {SNR}, "
              f"{SAMPLER}/{SCHEDULER}; command: {shlex.join(['python', 'bench/generate.py', *sys.argv[1:]])}", flush=True)

        def loop(frames: int, steps: int, mode: str) -> int:
            return run_loop(pack, model, positive, negative, vae, args.size, frames, args.window, args.stride, steps,
                            CFG_SCALES[mode], args.interpolate == "on", args.context_frames)

        for mode in args.cfg_modes:  # warm-up (kernels, allocator, model load to the device): not reported
            log.info("warm-up, %s", mode)
            _, seconds = timed(lambda mode=mode: loop(max(args.window, min(args.frames + [args.frames_speed])), 1, mode),
                               cuda)
            print(f"warm-up run ({mode}, 1 step{', compiling' if args.compile else ''}): {seconds:.1f} s", flush=True)
        speed = {}
        for steps, mode in settings:
            log.info("loop controller: %d frames, %d steps, %s", args.frames_speed, steps, mode)
            speed[steps, mode] = timed(lambda steps=steps, mode=mode: loop(args.frames_speed, steps, mode), cuda)
        table(f"Loop controller (ZiziLoopController.generate, {args.frames_speed} frames, after a warm-up run):",
              ["| steps | CFG | frames out | seconds | frames/s |", "|---:|---|---:|---:|---:|"]
              + [f"| {steps} | {mode} ({CFG_SCALES[mode]:g}) | {out} | {sec:.2f} | {out / sec:.2f} |"
                 for (steps, mode), (out, sec) in speed.items()])
        if args.live:
            return 0

        if cuda:
            log.info("host synchronisations: %d frames, 1 step", args.frames_speed)
            try:
                syncs = count_syncs(lambda: loop(args.frames_speed, 1, args.cfg_modes[0]),
                                    Path(__file__).resolve().parent.parent)
            except Exception as err:  # a diagnostic: the tables after it matter more
                log.exception("counting host synchronisations failed")
                syncs = [(f"failed: {type(err).__name__}: {err}", 0)]
            table(f"Host synchronisations in one loop run ({args.frames_speed} frames, 1 step, {args.cfg_modes[0]}; "
                  f"torch.cuda.set_sync_debug_mode): {sum(n for _, n in syncs)} in all",
                  ["| origin (innermost frame of the pack, else the innermost) | syncs |", "|---|---:|"]
                  + [f"| {where} | {n} |" for where, n in syncs[:15]])

        log.info("counting FLOPs, measuring matmul throughput")
        flops = {(mode, frames): window_call_flops(pack, model, positive, negative, vae, args.size, frames,
                                                   CFG_SCALES[mode]) / frames
                 for mode in args.cfg_modes for frames in (args.window, BASELINE_WINDOW)}
        vae_flops = vae_decode_flops(pack, vae, args.size)
        tflops, matmul_what = matmul_tflops(device)
        overhead = window_overhead(args.frames_speed, args.window, args.stride, max_positions, args.interpolate == "on",
                                   args.context_frames)

        def limit(steps: int, mode: str, window: int, overhead: float) -> tuple[float, float]:
            """(FLOPs per output frame, frames/s at the measured matmul throughput)."""
            per_frame = flops[mode, window] * steps * overhead + vae_flops
            return per_frame, tflops * 1e12 / per_frame

        rows = ["| steps | CFG | GFLOP per output frame | limit frames/s | loop frames/s | % of limit |",
                "|---:|---|---:|---:|---:|---:|"]
        for (steps, mode), (out, sec) in speed.items():
            per_frame, fps_limit = limit(steps, mode, args.window, overhead)
            rows.append(f"| {steps} | {mode} | {per_frame / 1e9:.4g} | {fps_limit:.2f} | {out / sec:.2f} | "
                        f"{100 * out / sec / fps_limit:.1f}% |")
        per_call = ", ".join(f"{flops[mode, args.window] / 1e9:.4g} GFLOP ({mode})" for mode in args.cfg_modes)
        table(f"The limit: measured matmul throughput {tflops:.1f} TFLOP/s ({matmul_what}); UNet+temporal per frame "
              f"per denoising call (window {args.window}): {per_call}; window overhead {overhead:.3f} frames sampled "
              f"per output frame (plan of {args.frames_speed} frames); VAE decode {vae_flops / 1e9:.4g} GFLOP/frame:", rows)

        memory_setting = (min(args.steps), args.cfg_modes[0])
        memory = []
        for frames in args.frames:
            log.info("memory: %d frames", frames)
            with PeakMemory(cuda) as peak:
                out, sec = timed(lambda frames=frames: loop(frames, *memory_setting), cuda)
            memory.append((frames, out, sec, peak.peak_mib))
        kind = "peak CUDA allocated (MiB)" if cuda else "peak RSS during the run (MiB)"
        (small, *_, small_peak), (large, *_, large_peak) = min(memory), max(memory)
        ratio = large_peak / small_peak if small_peak > 0 else float("nan")
        table(f"Memory vs video length ({memory_setting[0]} steps, {memory_setting[1]}):",
              [f"| frames | frames out | seconds | frames/s | {kind} |", "|---:|---:|---:|---:|---:|"]
              + [f"| {frames} | {out} | {sec:.2f} | {out / sec:.2f} | {peak:.0f} |" for frames, out, sec, peak in memory]
              + ["", f"peak at {large} frames / peak at {small} frames: {ratio:.3f} (target <= 1.05: "
                 f"{'met' if ratio <= 1.05 else 'NOT met'})" + ("" if cuda else "; on the CPU the RSS includes the "
                 "IMAGE batch the node returns, which grows with the length by design")])

        def baseline(steps: int, mode: str) -> int:
            return run_baseline(pack, model, positive, negative, vae, args.size, args.frames_speed, steps, CFG_SCALES[mode])

        for mode in args.cfg_modes:
            baseline(1, mode)  # warm-up for 16-frame windows
        rows = ["| steps | CFG | loop frames/s | baseline frames out | baseline seconds | baseline frames/s | loop / baseline "
                "| baseline GFLOP per output frame | baseline % of its limit |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (steps, mode), (out, sec) in speed.items():
            log.info("baseline: %d frames, %d steps, %s", args.frames_speed, steps, mode)
            b_out, b_sec = timed(lambda steps=steps, mode=mode: baseline(steps, mode), cuda)
            per_frame, fps_limit = limit(steps, mode, BASELINE_WINDOW, 1.0)
            rows.append(f"| {steps} | {mode} | {out / sec:.2f} | {b_out} | {b_sec:.2f} | {b_out / b_sec:.2f} | "
                        f"{out / sec / (b_out / b_sec):.2f} | {per_frame / 1e9:.4g} | {100 * b_out / b_sec / fps_limit:.1f}% |")
        table(f"Side by side: AnimateDiff-style baseline (whole {BASELINE_WINDOW}-frame windows, nothing known, no overlap, "
              f"one sampling call + one decode per window, same injected model; {args.frames_speed} frames asked):", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

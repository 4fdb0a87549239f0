"""bench/quality.py's report: the markdown table, the observations read off the numbers, the plot, the environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from bench.quality_metrics import EARLY_WINDOW, Result, late_window
from bench.quality_settings import Setting

REPO_ROOT = Path(__file__).resolve().parent.parent


def setting_of(result: Result) -> Setting | None:
    return result.extra.get("setting")


def generated(results: list[Result]) -> list[Result]:
    return [r for r in results if setting_of(r) is not None]


def find(results: list[Result], **fields) -> Result | None:
    """The first generated result whose setting has these field values."""
    for r in generated(results):
        s = setting_of(r)
        if all(getattr(s, k) == v for k, v in fields.items()):
            return r
    return None


def best_result(results: list[Result]) -> Result:
    """The grid setting with the highest mean PSNR over frames 1.. (frame 0 is the given hint)."""
    return max((r for r in generated(results) if setting_of(r).in_grid), key=lambda r: r.summary()["psnr_mean"])


def markdown_table(results: list[Result], frames: int) -> str:
    late = late_window(frames)
    e, lt = f"f{EARLY_WINDOW[0]}-{EARLY_WINDOW[1]}", f"f{late[0]}-{late[1]}"
    lines = [
        f"| setting | mean PSNR (dB) | PSNR {e} | PSNR {lt} | drop (dB) | mean SSIM | SSIM {lt} | flicker "
        f"| identity | identity {e} | identity {lt} | late / early | s/frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.summary()
        speed = f"{r.seconds / frames:.2f}" if setting_of(r) is not None else "-"
        identity = (f"{s['identity_mean']:.1f} | {s['identity_early']:.1f} | {s['identity_late']:.1f} | "
                    f"{s['identity_ratio']:.2f}") if "identity_mean" in s else "- | - | - | -"
        lines.append(f"| {r.name} | {s['psnr_mean']:.2f} | {s['psnr_early']:.2f} | {s['psnr_late']:.2f} | "
                     f"{s['psnr_early'] - s['psnr_late']:+.2f} | {s['ssim_mean']:.3f} | {s['ssim_late']:.3f} | "
                     f"{s['flicker']:.2f} | {identity} | {speed} |")
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def target_lines(results: list[Result], shipped: Setting, reference_strength: float) -> list[str]:
    """The issue's targets, read for the shipped setting (and the AnimateDiff-style pair for reference attention)."""
    out = []
    vae = next((r for r in results if setting_of(r) is None), None)
    ship = find(results, **{k: getattr(shipped, k) for k in ("snr", "interpolate", "reference", "conditioning",
                                                              "context_frames", "seed_check")})
    if ship is not None and vae is not None:
        s, v = ship.summary(), vae.summary()
        gap = v["psnr_mean"] - s["psnr_mean"]
        out.append(f"Target, mean PSNR within 1.5 dB of the VAE round trip ({shipped.name}): {s['psnr_mean']:.2f} vs "
                   f"{v['psnr_mean']:.2f} dB, {gap:.2f} dB under it: {_mark(gap <= 1.5)}.")
        drop = s["psnr_early"] - s["psnr_late"]
        out.append(f"Target, PSNR at the end within 1 dB of frames 5-15: {s['psnr_early']:.2f} -> {s['psnr_late']:.2f} dB "
                   f"({drop:+.2f} dB): {_mark(drop <= 1.0)}.")
        if "identity_ratio" in s:
            out.append(f"Target, identity error at the end at most 1.2 x frames 5-15: {s['identity_early']:.1f} -> "
                       f"{s['identity_late']:.1f} levels ({s['identity_ratio']:.2f} x): {_mark(s['identity_ratio'] <= 1.2)}.")
    plain = find(results, conditioning="no-channels", reference=0.0)
    referenced = find(results, conditioning="no-channels", reference=reference_strength)
    if plain is not None and referenced is not None and "identity_mean" in plain.summary():
        a, b = plain.summary(), referenced.summary()
        out.append(f"Target, reference attention lowers identity error without known-frame conditioning "
                   f"(AnimateDiff-style): {a['identity_mean']:.1f} -> {b['identity_mean']:.1f} levels mean, "
                   f"{a['identity_late']:.1f} -> {b['identity_late']:.1f} at the end: "
                   f"{_mark(b['identity_mean'] < a['identity_mean'])}.")
    return out


def observations(results: list[Result], frames: int) -> list[str]:
    """Plain statements read off the numbers (rankings, seed spread, effect of interpolation and reference)."""
    grid = [r for r in generated(results) if setting_of(r).in_grid]
    if not grid:
        return []
    late = late_window(frames)
    best = best_result(results)
    s = best.summary()
    out = [f"**Best grid setting** (highest mean PSNR over frames 1..{frames - 1}): {best.name}: {s['psnr_early']:.2f} dB "
           f"at frames {EARLY_WINDOW[0]}-{EARLY_WINDOW[1]}, {s['psnr_late']:.2f} dB at frames {late[0]}-{late[1]}."]
    if "identity_mean" in s:
        steady = min(grid, key=lambda r: r.summary()["identity_mean"])
        out.append(f"Lowest identity error: {steady.name} ({steady.summary()['identity_mean']:.1f} levels mean).")
    check = next((r for r in generated(results) if setting_of(r).seed_check), None)
    if check is not None:
        c = check.summary()
        spread = max(abs(c["psnr_mean"] - s["psnr_mean"]), abs(c["psnr_late"] - s["psnr_late"]))
        out.append(f"Seed spread: the best setting with another seed: {c['psnr_mean']:.2f} dB mean PSNR "
                   f"({c['psnr_mean'] - s['psnr_mean']:+.2f}), {c['psnr_late']:.2f} dB at the end "
                   f"({c['psnr_late'] - s['psnr_late']:+.2f}); differences under about {spread:.2f} dB are seed noise.")

    def mean_effect(key: str, metric: str) -> float | None:
        """Mean over the grid of metric(with) - metric(without) for the boolean-like field ``key``."""
        diffs = []
        for r in grid:
            st = setting_of(r)
            if key == "interpolate" and st.interpolate:
                other = find(results, snr=st.snr, interpolate=False, reference=st.reference, conditioning="full",
                             context_frames=3, seed_check=False)
            elif key == "reference" and st.reference:
                other = find(results, snr=st.snr, interpolate=st.interpolate, reference=0.0, conditioning="full",
                             context_frames=3, seed_check=False)
            else:
                continue
            if other is not None and metric in r.summary():
                diffs.append(r.summary()[metric] - other.summary()[metric])
        return float(np.mean(diffs)) if diffs else None

    for key, label in (("interpolate", "Interpolation stage on vs off"), ("reference", "Reference attention on vs off")):
        psnr, identity = mean_effect(key, "psnr_mean"), mean_effect(key, "identity_mean")
        if psnr is not None:
            out.append(f"{label} (mean over the grid): {psnr:+.2f} dB mean PSNR"
                       + (f", {identity:+.1f} levels identity error." if identity is not None else "."))
    return out


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean (shorter at the ends); width 1 = unchanged."""
    if width <= 1 or len(values) < 2:
        return values
    kernel = np.ones(width)
    values = np.where(np.isfinite(values), values, np.nan)
    valid = ~np.isnan(values)
    num = np.convolve(np.where(valid, values, 0.0), kernel, mode="same")
    den = np.convolve(valid.astype(float), kernel, mode="same")
    return num / np.maximum(den, 1)


def plot(results: list[Result], path: Path, title: str, smoothing: int) -> None:
    """PSNR, SSIM and identity error vs frame, one column per interpolation mode: the grid in colour per snr
    (solid: reference off, dashed: on), ablations and plan options in grey/red, the VAE ceiling black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = generated(results)
    modes = sorted({setting_of(r).interpolate for r in runs}, reverse=True)
    metrics = [("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
    if all(r.identity is not None for r in runs):
        metrics.append(("identity", "identity error (levels)"))
    fig, axes = plt.subplots(len(metrics), len(modes), figsize=(6.5 * len(modes), 3.6 * len(metrics)), sharex=True,
                             squeeze=False)
    snrs = sorted({setting_of(r).snr for r in runs})
    colours = {snr: plt.cm.viridis(i / max(1, len(snrs) - 1)) for i, snr in enumerate(snrs)}
    others = ["tab:red", "tab:orange", "tab:gray", "tab:brown", "tab:pink", "tab:olive"]
    for col, mode in enumerate(modes):
        for row, (metric, label) in enumerate(metrics):
            ax = axes[row][col]
            for r in results:
                if setting_of(r) is None and getattr(r, metric) is not None:
                    ax.plot(smooth(getattr(r, metric), smoothing), color="black", linestyle="--", linewidth=1.2,
                            label=r.name)
            extra = 0
            for r in runs:
                st = setting_of(r)
                if st.interpolate != mode:
                    continue
                if st.in_grid:
                    colour, style = colours[st.snr], "--" if st.reference else "-"
                else:
                    colour, style = others[extra % len(others)], ":"
                    extra += 1
                ax.plot(smooth(getattr(r, metric), smoothing), color=colour, linestyle=style, linewidth=1.1,
                        label=r.name)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"interpolation stage {'on' if mode else 'off'}")
            if row == len(metrics) - 1:
                ax.set_xlabel("frame index")
            if row == 0:
                ax.legend(fontsize=6, loc="lower left", ncol=2)
    suffix = f" ({smoothing}-frame running mean)" if smoothing > 1 else ""
    fig.suptitle(textwrap.fill(title + suffix, width=50 + 60 * len(modes)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency: 256 colours keep the lines and cut the file ~2.5x

    with Image.open(path) as image:
        quantized = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    quantized.save(path, optimize=True)


def environment(comfyui_dir: Path, dtype: str) -> dict:
    import comfy.model_management
    import skimage
    import torch

    device = comfy.model_management.get_torch_device()
    if device.type == "cuda":
        device_text = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    else:
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        device_text = f"CPU {cpu} ({os.cpu_count()} cores), torch threads: {torch.get_num_threads()}"
    sys.path.insert(0, str(comfyui_dir))
    try:
        from comfyui_version import __version__ as comfy_version
    except ImportError:
        comfy_version = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
        commit += " (uncommitted changes)" if dirty.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {"device": device_text, "python": platform.python_version(), "torch": torch.__version__,
            "comfyui": comfy_version, "numpy": np.__version__, "scikit-image": skimage.__version__,
            "commit": commit, "dtype": dtype}


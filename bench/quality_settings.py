"""What one bench/quality.py video is generated with (a ``Setting``), and the sweep's list of them.

A setting is the augmentation snr of earlier generated frames, the interpolation stage on/off, the reference
attention strength (0 = off), what the model is given of the known frames (``conditioning``), and the
plan's ``context_frames`` (earlier frames in each extrapolation window besides the anchor).

conditioning:
  full         what the loop controller does: known frames in the temporal module's known-frame channels and
               held by the sampler's noise mask
  no-channels  the module's known-frame channels get nothing (the window's known frames are still held by the
               noise mask and seen through temporal attention): what an AnimateDiff motion module, which has no
               known-frame conditioning, does in the same loop
  zeros        every known frame's latent (the anchor's too) replaced by zeros, in both places: what the
               autoregressive conditioning contributes, by its absence
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SNR_OFF = 10000.0  # nodes.window_sampling.SNR_OFF: augmentation off
CONDITIONINGS = ("full", "no-channels", "zeros")


def snr_label(snr: float) -> str:
    return "off" if snr >= SNR_OFF else f"{snr:g}"


def parse_snrs(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        out.append(SNR_OFF if part in ("off", "inf") else float(part))
    if not out:
        raise ValueError("--snrs: give at least one value (e.g. off,0.33,0.66)")
    return out


@dataclass(frozen=True)
class Setting:
    snr: float
    interpolate: bool
    reference: float = 0.0  # reference attention strength; 0 = off
    conditioning: str = "full"
    context_frames: int = 3
    seed: int = 0
    seed_check: bool = False
    noise_init: str = "anchor"  # ZiziLoopController's noise_init (zizi_models/noise_init.py)

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning: expected one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}")

    @property
    def name(self) -> str:
        parts = [f"snr {snr_label(self.snr)}", f"interp {'on' if self.interpolate else 'off'}",
                 f"ref {self.reference:g}" if self.reference else "ref off"]
        if self.conditioning != "full":
            parts.append(f"known: {self.conditioning}")
        if self.context_frames != 3:
            parts.append(f"context {self.context_frames}")
        if self.noise_init != "anchor":
            parts.append(f"start: {self.noise_init}")
        if self.seed_check:
            parts.append(f"seed {self.seed} (seed check)")
        return ", ".join(parts)

    @property
    def in_grid(self) -> bool:
        """Part of the snr x interpolation x reference grid (not an ablation, a plan option or a seed check)."""
        return (self.conditioning == "full" and self.context_frames == 3 and not self.seed_check
                and self.noise_init == "anchor")


def sweep(snrs: list[float], modes: list[bool], references: list[float], ablation_snr: float,
          ablations: list[str], context_frames: list[int], reference_strength: float,
          noise_inits: tuple[str, ...] = ()) -> list[Setting]:
    """The grid (every snr x interpolation mode x reference on/off), then the ablations at ``ablation_snr`` with
    interpolation on (no-channels with and without reference attention), then the plan's other context_frames
    at ``ablation_snr`` (both interpolation modes, reference off), then the other ``noise_inits`` at
    ``ablation_snr`` with interpolation on and reference attention on and off."""
    runs = [Setting(snr, mode, ref) for mode in modes for snr in snrs for ref in references]
    for conditioning in ablations:
        runs.append(Setting(ablation_snr, True, 0.0, conditioning))
        if conditioning == "no-channels":
            runs.append(Setting(ablation_snr, True, reference_strength, conditioning))
    for frames in context_frames:
        if frames != 3:
            runs += [Setting(ablation_snr, mode, 0.0, "full", frames) for mode in modes]
    for init in noise_inits:
        if init != "anchor":
            runs += [Setting(ablation_snr, True, ref, noise_init=init) for ref in sorted(set(references))]
    return runs


def trained_with_reference(metadata: dict[str, str]) -> bool:
    """Whether a temporal module file's recorded config (its safetensors metadata) has reference_attention:
    then the loader turns reference attention on at strength 1."""
    config = metadata.get("config")
    return bool(config and json.loads(config).get("reference_attention", False))


def shipped_setting(text: str, trained_reference: bool) -> Setting:
    """``--shipped`` "snr,on|off,strength" -> a Setting; strength "auto" is what the loader applies: 1 for a
    module trained with reference attention, else 0."""
    snr, mode, reference = (part.strip() for part in text.split(","))
    strength = (1.0 if trained_reference else 0.0) if reference == "auto" else float(reference)
    return Setting(parse_snrs(snr)[0], mode == "on", strength)

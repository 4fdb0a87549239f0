"""The noise schedule a temporal module was trained with, and which one the loader gives the MODEL.

A schedule is recorded in diffusers' terms (what the trainer's DDPMScheduler config says):
    {"beta_schedule": "linear" | "scaled_linear" | "squaredcos_cap_v2", "beta_start": 0.00085,
     "beta_end": 0.012, "num_train_timesteps": 1000}
under the metadata key `noise_schedule` of a Zizi temporal module file.

Names differ between the two worlds (ComfyUI's comfy/ldm/modules/diffusionmodules/util.py
make_beta_schedule):
    diffusers "linear"        betas = linspace(start, end)            = ComfyUI "sqrt_linear"
    diffusers "scaled_linear" betas = linspace(sqrt start, sqrt end)^2 = ComfyUI "linear" (SD1.5's own)
AnimateDiff SD1.5 motion modules (v1, v2, v3) were trained on diffusers "linear" 0.00085 -> 0.012
(AnimateDiff's configs: beta_schedule "linear"); ComfyUI-AnimateDiff-Evolved's `autoselect` picks
"sqrt_linear (AnimateDiff)" for them, with the default 0.00085 / 0.012, 1000 steps, no zero-SNR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

NOISE_SCHEDULE_KEY = "noise_schedule"

# the loader's `beta_schedule` choices
AUTO = "auto"
USE_EXISTING = "use existing"
ANIMATEDIFF_LINEAR = "AnimateDiff linear"
SD15_SCALED_LINEAR = "SD1.5 scaled linear"
SCHEDULE_CHOICES = (AUTO, USE_EXISTING, ANIMATEDIFF_LINEAR, SD15_SCALED_LINEAR)

# diffusers name -> ComfyUI make_beta_schedule name
_COMFY_NAMES = {"linear": "sqrt_linear", "scaled_linear": "linear", "squaredcos_cap_v2": "squaredcos_cap_v2"}
ANIMATEDIFF_SOURCES = ("animatediff", "diffusers-motion-adapter")


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete DDPM beta schedule in diffusers' terms."""

    beta_schedule: str
    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_train_timesteps: int = 1000

    def __post_init__(self) -> None:
        if self.beta_schedule not in _COMFY_NAMES:
            raise ValueError(
                f"beta_schedule {self.beta_schedule!r} is not supported; expected one of {sorted(_COMFY_NAMES)}"
            )
        if not 0 < self.beta_start < self.beta_end < 1 or self.num_train_timesteps < 2:
            raise ValueError(f"not a valid beta schedule: {self}")

    @property
    def comfy_name(self) -> str:
        """The name ComfyUI's make_beta_schedule gives this schedule."""
        return _COMFY_NAMES[self.beta_schedule]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseSchedule:
        return cls(
            beta_schedule=str(data["beta_schedule"]),
            beta_start=float(data.get("beta_start", 0.00085)),
            beta_end=float(data.get("beta_end", 0.012)),
            num_train_timesteps=int(data.get("num_train_timesteps", 1000)),
        )

    def describe(self) -> str:
        return f"{self.beta_schedule} {self.beta_start:g} -> {self.beta_end:g} ({self.num_train_timesteps} steps)"


ANIMATEDIFF_SCHEDULE = NoiseSchedule("linear")
SD15_SCHEDULE = NoiseSchedule("scaled_linear")


def schedule_record(scheduler_config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers scheduler config (e.g. the trainer's DDPMScheduler config) -> the metadata record."""
    return NoiseSchedule.from_dict(scheduler_config).to_dict()


def recorded_schedule(metadata: Mapping[str, Any], source: str = "file") -> NoiseSchedule | None:
    """The schedule a Zizi temporal module's metadata records, or None when it records none."""
    record = metadata.get(NOISE_SCHEDULE_KEY)
    if record is None:
        return None
    if not isinstance(record, Mapping) or "beta_schedule" not in record:
        raise ValueError(f"{source}: metadata '{NOISE_SCHEDULE_KEY}' is {record!r}, expected an object with a beta_schedule")
    try:
        return NoiseSchedule.from_dict(record)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: metadata '{NOISE_SCHEDULE_KEY}': {err}") from None


def trained_schedule(source_format: str, metadata: Mapping[str, Any], source: str = "file") -> NoiseSchedule | None:
    """The schedule the module was trained with: AnimateDiff linear for AnimateDiff / MotionAdapter files,
    the metadata record for Zizi files, None (unknown: keep the MODEL's own) otherwise."""
    if source_format in ANIMATEDIFF_SOURCES:
        return ANIMATEDIFF_SCHEDULE
    return recorded_schedule(metadata, source)


def select_schedule(choice: str, source_format: str, metadata: Mapping[str, Any],
                    source: str = "file") -> NoiseSchedule | None:
    """The loader's `beta_schedule` input -> the schedule to give the MODEL (None: keep the MODEL's own)."""
    if choice == AUTO:
        return trained_schedule(source_format, metadata, source)
    if choice == USE_EXISTING:
        return None
    if choice == ANIMATEDIFF_LINEAR:
        return ANIMATEDIFF_SCHEDULE
    if choice == SD15_SCALED_LINEAR:
        return SD15_SCHEDULE
    raise ValueError(f"beta_schedule: {choice!r} is not a schedule; expected one of {', '.join(SCHEDULE_CHOICES)}")

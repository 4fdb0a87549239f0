"""ZiziTemporalModelLoader: inflate an SD1.5 MODEL with a temporal module file, on its training schedule."""

from __future__ import annotations

import logging
import time

from ..zizi_models.temporal import SCHEDULE_CHOICES, model_from_state, read_temporal_state, select_schedule
from .comfy import folders, model_sampling, temporal_injection

log = logging.getLogger(__name__)

ANIMATEDIFF_PREFIX = "animatediff_models/"
LISTED = 12  # file names a "not found" message lists


def temporal_module_choices() -> list[str]:
    """Files of models/zizi, then AnimateDiff motion modules of models/animatediff_models (prefixed)."""
    zizi = folders.list_model_files(folders.ZIZI_MODEL_FOLDER)
    animatediff = folders.list_model_files(folders.ANIMATEDIFF_MODEL_FOLDER)
    return list(zizi) + [ANIMATEDIFF_PREFIX + name for name in animatediff]


def resolve_temporal_module(name: str):
    try:
        if name.startswith(ANIMATEDIFF_PREFIX):
            return folders.resolve_model_file(
                folders.ANIMATEDIFF_MODEL_FOLDER, name[len(ANIMATEDIFF_PREFIX):], "temporal_module"
            )
        return folders.resolve_model_file(folders.ZIZI_MODEL_FOLDER, name, "temporal_module")
    except FileNotFoundError as e:
        there = temporal_module_choices()
        listed = ", ".join(there[:LISTED]) + (f", ... ({len(there)} in all)" if len(there) > LISTED else "")
        raise FileNotFoundError(f"{e}; available: {listed or 'none'}") from None


class ZiziTemporalModelLoader:
    """Returns a clone of the MODEL with temporal layers; the MODEL you pass in stays untouched."""

    CATEGORY = "Zizi Video/model"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    DESCRIPTION = (
        "Adds temporal layers (a Zizi temporal module, or an AnimateDiff v1/v2/v3 SD1.5 motion module, "
        ".safetensors or .ckpt) to an SD1.5 model, so a latent batch is denoised as one clip (batch axis = "
        "time), on the noise schedule the module was trained with. LoRA and ControlNet nodes compose with it."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 model (Load Checkpoint's MODEL output)."}),
                "temporal_module": (temporal_module_choices(), {
                    "tooltip": "A .safetensors/.ckpt/.pt file from models/zizi (or models/animatediff_models). "
                               "Pickled files are read with torch.load(weights_only=True): tensors only."}),
            },
            "optional": {
                "beta_schedule": (list(SCHEDULE_CHOICES), {
                    "default": SCHEDULE_CHOICES[0],
                    "tooltip": "auto: the schedule the module was trained with (AnimateDiff files: AnimateDiff "
                               "linear, as ADE's autoselect; Zizi files: what their metadata records, else the "
                               "model's own). use existing: the model's own. Or force one."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, temporal_module: str, beta_schedule: str = SCHEDULE_CHOICES[0]) -> bool | str:
        if beta_schedule not in SCHEDULE_CHOICES:
            return f"beta_schedule: {beta_schedule!r} is not a schedule; expected one of {', '.join(SCHEDULE_CHOICES)}"
        try:
            resolve_temporal_module(temporal_module)
        except FileNotFoundError as e:
            return str(e)
        return True

    def load(self, model, temporal_module: str, beta_schedule: str = SCHEDULE_CHOICES[0]):
        if beta_schedule not in SCHEDULE_CHOICES:
            raise ValueError(f"beta_schedule: {beta_schedule!r} is not a schedule; "
                             f"expected one of {', '.join(SCHEDULE_CHOICES)}")
        path = resolve_temporal_module(temporal_module)
        started = time.perf_counter()
        try:
            state = read_temporal_state(path)
            schedule = select_schedule(beta_schedule, state.source_format, state.metadata, path.name)
            temporal = model_from_state(state, name=path.name)
        except ValueError as e:
            raise ValueError(f"temporal_module: {e}") from None
        del state
        try:
            inflated = temporal_injection.inject_temporal_model(model, temporal)
            if schedule is not None:
                model_sampling.set_noise_schedule(inflated, schedule)
        except ValueError as e:
            raise ValueError(f"model: {e}") from None
        log.info("loaded temporal module %s (channels %s, max positions %d, schedule %s) in %.2f s", path.name,
                 temporal.config.block_out_channels, temporal.config.max_positions,
                 schedule.describe() if schedule else "the model's own", time.perf_counter() - started)
        return (inflated,)


NODE_CLASS_MAPPINGS = {"ZiziTemporalModelLoader": ZiziTemporalModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziTemporalModelLoader": "Zizi Temporal Model Loader"}

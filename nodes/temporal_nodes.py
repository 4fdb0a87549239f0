"""ZiziTemporalModelLoader: inflate an SD1.5 MODEL with a temporal module file."""

from __future__ import annotations

import logging
import time

from ..zizi_models.temporal import load_temporal_model
from .comfy import folders, temporal_injection

log = logging.getLogger(__name__)

ANIMATEDIFF_PREFIX = "animatediff_models/"


def temporal_module_choices() -> list[str]:
    """Files of models/zizi, then AnimateDiff motion modules of models/animatediff_models (prefixed)."""
    zizi = folders.list_model_files(folders.ZIZI_MODEL_FOLDER)
    animatediff = folders.list_model_files(folders.ANIMATEDIFF_MODEL_FOLDER)
    return list(zizi) + [ANIMATEDIFF_PREFIX + name for name in animatediff]


def resolve_temporal_module(name: str):
    if name.startswith(ANIMATEDIFF_PREFIX):
        return folders.resolve_model_file(
            folders.ANIMATEDIFF_MODEL_FOLDER, name[len(ANIMATEDIFF_PREFIX):], "temporal_module"
        )
    return folders.resolve_model_file(folders.ZIZI_MODEL_FOLDER, name, "temporal_module")


class ZiziTemporalModelLoader:
    """Returns a clone of the MODEL with temporal layers; the MODEL you pass in stays untouched."""

    CATEGORY = "Zizi Video/model"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    DESCRIPTION = (
        "Adds temporal layers (a Zizi temporal module, or an AnimateDiff v1/v2/v3 SD1.5 motion module) to an "
        "SD1.5 model, so a latent batch is denoised as one clip (batch axis = time). LoRA and ControlNet "
        "nodes compose with the result."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 model (Load Checkpoint's MODEL output)."}),
                "temporal_module": (temporal_module_choices(), {
                    "tooltip": "A .safetensors file from models/zizi (or models/animatediff_models)."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, temporal_module: str) -> bool | str:
        try:
            resolve_temporal_module(temporal_module)
        except FileNotFoundError as e:
            return str(e)
        return True

    def load(self, model, temporal_module: str):
        path = resolve_temporal_module(temporal_module)
        started = time.perf_counter()
        try:
            temporal = load_temporal_model(path)
        except ValueError as e:
            raise ValueError(f"temporal_module: {e}") from None
        try:
            inflated = temporal_injection.inject_temporal_model(model, temporal)
        except ValueError as e:
            raise ValueError(f"model: {e}") from None
        log.info("loaded temporal module %s (channels %s, max positions %d) in %.2f s", path.name,
                 temporal.config.block_out_channels, temporal.config.max_positions, time.perf_counter() - started)
        return (inflated,)


NODE_CLASS_MAPPINGS = {"ZiziTemporalModelLoader": ZiziTemporalModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziTemporalModelLoader": "Zizi Temporal Model Loader"}

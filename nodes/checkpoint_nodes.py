"""ZiziCheckpointLoader: a Zizi small model (UNet, CLIP, VAE in one file, its architecture in the metadata)."""

from __future__ import annotations

import logging
import time

from .comfy import folders, small_models

log = logging.getLogger(__name__)


class ZiziCheckpointLoader:
    """Load Checkpoint for the small SD1.5-family models Zizi Video ships (reduced widths, 3- or 4-level VAE)."""

    CATEGORY = "Zizi Video/model"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = (
        "The UNet, for KSampler and the Zizi temporal model loader.",
        "The text encoder, for CLIPTextEncode.",
        "The VAE. A 3-level VAE decodes each latent pixel to 4x4 image pixels (not 8x8): an Empty Latent "
        "Image of 512x512 then gives a 256x256 image.",
    )
    FUNCTION = "load"
    DESCRIPTION = (
        "Loads a Zizi small model: a whole SD1.5-family model (UNet, VAE, CLIP text encoder) in one "
        ".safetensors file whose metadata records its architecture. Files from models/zizi_checkpoints and "
        "the pack's weights/ folder. Regular SD1.5 checkpoints load with Load Checkpoint."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "ckpt_name": (folders.list_model_files(folders.ZIZI_CHECKPOINT_FOLDER), {
                    "tooltip": "A Zizi small-model .safetensors file (models/zizi_checkpoints or the pack's weights/)."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, ckpt_name: str) -> bool | str:
        try:
            folders.resolve_model_file(folders.ZIZI_CHECKPOINT_FOLDER, ckpt_name, "ckpt_name")
        except FileNotFoundError as e:
            return str(e)
        return True

    def load(self, ckpt_name: str):
        path = folders.resolve_model_file(folders.ZIZI_CHECKPOINT_FOLDER, ckpt_name, "ckpt_name")
        started = time.perf_counter()
        try:
            model, clip, vae = small_models.sd15_family_from_checkpoint(path)
        except ValueError as e:
            raise ValueError(f"ckpt_name: {e}") from None
        except RuntimeError as e:  # torch's load_state_dict: tensors that do not fit the metadata's architecture
            if "state_dict" not in str(e):
                raise
            detail = " ".join(line.strip() for line in str(e).splitlines()[:2])
            raise ValueError(f"ckpt_name: {path.name}: its tensors do not match the architecture in its metadata ({detail})") from None
        log.info("loaded Zizi small model %s (VAE downscale %d) in %.2f s", path.name, vae.downscale_ratio,
                 time.perf_counter() - started)
        return (model, clip, vae)


NODE_CLASS_MAPPINGS = {"ZiziCheckpointLoader": ZiziCheckpointLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziCheckpointLoader": "Zizi Load Small Model"}

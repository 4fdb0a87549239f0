"""The ONE place in the pack that touches ComfyUI internals, one file per concern.

folders.py            model folders the pack registers, input/output files, save paths
runtime.py            progress bars, interrupt checks, the compute device, latent previews
external_models.py    non-ComfyUI models (pose detectors) under ComfyUI's model management
temporal_injection.py the temporal module inserted into ComfyUI's UNet on a MODEL clone
temporal_hooks.py     what those patches call (pure PyTorch)
reference_patch.py    reference attention: attn1 replace patches on a MODEL clone
small_models.py       Zizi small SD1.5-family models as MODEL, CLIP, VAE
conditioning.py       ControlNet hints cut to a window
sampling.py           one window through ComfyUI's sampler machinery
vae.py                VAE encode/decode of frame batches

A ComfyUI update that moves an internal breaks this package only (and the tests on both ComfyUI
versions catch it). Node modules import the submodule they need; this ``__init__`` re-exports the
public names for tests and benchmarks (``pack.nodes.comfy.inject_temporal_model``).
"""

# ruff: noqa: F401 - this module re-exports the package's public names
from __future__ import annotations

from .conditioning import control_hint_counts, slice_conditioning
from .external_models import external_model_handle, external_model_in_use
from .folders import (
    ANIMATEDIFF_MODEL_FOLDER,
    PACK_MODEL_PATHS,
    POSE_MODEL_FOLDER,
    ZIZI_CHECKPOINT_FOLDER,
    ZIZI_MODEL_FOLDER,
    list_input_files,
    list_input_files_with_suffix,
    list_model_files,
    model_folder_paths,
    register_model_folders,
    resolve_input_file,
    resolve_model_file,
    save_path,
)
from .reference_patch import attention_blocks, has_reference_patch, with_reference_attention
from .runtime import (
    SamplingProgress,
    executing_node_id,
    progress_bar,
    progress_text,
    throw_if_interrupted,
    torch_device,
)
from .sampling import latent_to_model_space, sample_window, sampler_names, scheduler_names
from .small_models import sd15_family_from_checkpoint, sd15_model_from_state_dict
from .temporal_hooks import CALL_OPTION, REFERENCE_OPTION, WINDOW_OPTION, InjectedTemporalLayer
from .temporal_injection import TEMPORAL_KEY, inject_temporal_model, temporal_model_of, unet_layout
from .vae import vae_decode, vae_downscale, vae_encode

__all__ = [name for name in dir() if not name.startswith("_") and name != "annotations"]

"""Temporal model core: the layers that turn an SD1.5 image UNet into a video denoiser.

Data flow for one denoising call over a window of F frames of B videos:

    sample [B, F, 4, H, W], positions [B, F] (real frame indices, e.g. 0 1 2 6 10 14 18)
    known latents [B, F, 4, H, W] + mask [B, F]   (hint frames, noise-augmented: noise_augmentation.py)
    aug level [B, F] = 1 / (1 + snr)              (0 = clean anchor)
        |
        v  flatten frames into the batch: [(B F), ...]; FrameContext(positions) for the temporal layers
    2D UNet, unchanged, with temporal parts inserted (video_unet.py for diffusers, nodes/comfy/
    for ComfyUI):
        time embedding      += aug_embedding(level)                       zero at init
        conv_in(x)          += conv_in_extra(cat(mask, mask * known))     zero at init
        after each resnet    -> TemporalConv (optional)                   identity at init
        after each resnet/attention pair -> MotionModule(hidden, ctx)     identity at init
            per-frame GroupNorm -> proj_in -> [(B H W), F, C] tokens -> (LayerNorm, +pe[position],
            self-attention over frames) x2 -> GEGLU feed-forward -> proj_out (zero init) -> + residual
        |
        v
    noise prediction [B, F, 4, H, W]

Hosts look layers up with `ZiziTemporalModel.motion_module_at(kind, block, layer)` /
`temporal_conv_at(...)`; `ldm_block_site` maps LDM/ComfyUI `input_blocks[n]` / `middle_block` /
`output_blocks[n]` to those coordinates. A fresh ZiziTemporalModel leaves the base UNet's output
unchanged. Weights are saved as one .safetensors with motion modules in AnimateDiff's key layout
(checkpoint.py, layout.py), so AnimateDiff v1/v2/v3 motion modules load directly (their released
pickled .ckpt files weights-only: animatediff_files.py); schedules.py says which noise schedule a
module was trained with.
"""

from .checkpoint import (
    TemporalState,
    expected_shapes,
    load_temporal_model,
    model_from_state,
    read_temporal_state,
    save_temporal_model,
)
from .compatibility import UNetLayout, check_unet_compatible
from .config import SD15_CONFIG, TemporalModelConfig
from .context import FrameContext
from .embeddings import AugmentationEmbedding, sinusoidal_embedding
from .frame_call import FrameCall, WindowInputs, add_aug_embedding, add_known_frames, run_temporal_layer
from .layout import infer_config, to_file_key, to_model_key
from .model import MotionBlock, ZiziTemporalModel
from .motion_module import MotionModule, TemporalConv, TemporalTransformer
from .noise_augmentation import (
    augment_latents,
    augmentation_level,
    build_unet_input,
    known_frame_channels,
    signal_fraction,
    snr_from_level,
)
from .positional_encoding import SinusoidalPositionEncoding, sinusoidal_table
from .schedules import (
    ANIMATEDIFF_SCHEDULE,
    SCHEDULE_CHOICES,
    SD15_SCHEDULE,
    NoiseSchedule,
    schedule_record,
    select_schedule,
    trained_schedule,
)
from .sites import ldm_block_site
from .video_unet import ZiziVideoUNet, freeze_backbone, temporal_config_for_unet, unet_layout

__all__ = [
    "ANIMATEDIFF_SCHEDULE",
    "SCHEDULE_CHOICES",
    "SD15_CONFIG",
    "SD15_SCHEDULE",
    "NoiseSchedule",
    "model_from_state",
    "schedule_record",
    "select_schedule",
    "trained_schedule",
    "AugmentationEmbedding",
    "FrameCall",
    "FrameContext",
    "WindowInputs",
    "add_aug_embedding",
    "add_known_frames",
    "run_temporal_layer",
    "MotionBlock",
    "MotionModule",
    "SinusoidalPositionEncoding",
    "TemporalConv",
    "TemporalModelConfig",
    "TemporalState",
    "TemporalTransformer",
    "UNetLayout",
    "ZiziTemporalModel",
    "ZiziVideoUNet",
    "augment_latents",
    "augmentation_level",
    "build_unet_input",
    "check_unet_compatible",
    "expected_shapes",
    "freeze_backbone",
    "infer_config",
    "known_frame_channels",
    "ldm_block_site",
    "load_temporal_model",
    "read_temporal_state",
    "save_temporal_model",
    "signal_fraction",
    "sinusoidal_embedding",
    "sinusoidal_table",
    "snr_from_level",
    "temporal_config_for_unet",
    "to_file_key",
    "to_model_key",
    "unet_layout",
]

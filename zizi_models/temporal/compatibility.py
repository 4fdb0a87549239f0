"""Does a temporal model fit a base UNet? One actionable error when it does not.

The layout is described backbone-neutrally (`UNetLayout`) so the diffusers inflation and the
ComfyUI bridge run the same check: diffusers fills it from `unet.config`, ComfyUI from its
model config (model_channels * channel_mult, num_res_blocks, context_dim).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TemporalModelConfig

_KNOWN_LAYOUTS = {
    (320, 640, 1280, 1280): "SD1.x/SD2.x",
    (320, 640, 1280): "SDXL",
}


@dataclass(frozen=True)
class UNetLayout:
    """What a base UNet looks like to the temporal layers."""

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    in_channels: int = 4
    time_embed_dim: int | None = None
    conv_in_kernel: int = 3
    cross_attention_dim: int | None = None

    def describe(self) -> str:
        name = _KNOWN_LAYOUTS.get(tuple(self.block_out_channels))
        extra = f", context {self.cross_attention_dim}" if self.cross_attention_dim else ""
        return f"channels {tuple(self.block_out_channels)}{extra}" + (f" ({name} layout)" if name else "")


def describe_config(config: TemporalModelConfig) -> str:
    name = _KNOWN_LAYOUTS.get(config.block_out_channels)
    return f"channels {config.block_out_channels}" + (f" ({name} layout)" if name else "")


def check_unet_compatible(config: TemporalModelConfig, layout: UNetLayout) -> None:
    """Raise ValueError (one actionable line) if `config`'s temporal layers cannot sit in `layout`'s UNet."""
    if tuple(layout.block_out_channels) != config.block_out_channels:
        raise ValueError(
            f"temporal module is for a UNet with {describe_config(config)} but the base model has "
            f"{layout.describe()}; load an SD1.5 checkpoint or a temporal module made for this base model"
        )
    if layout.layers_per_block != config.down_layers or layout.layers_per_block + 1 != config.up_layers:
        raise ValueError(
            f"temporal module expects {config.down_layers} resnets per down block and {config.up_layers} per up block "
            f"but the base UNet has layers_per_block={layout.layers_per_block}; use a matching base model"
        )
    if layout.in_channels != config.in_channels:
        raise ValueError(
            f"temporal module expects a {config.in_channels}-channel latent UNet but the base model takes "
            f"{layout.in_channels} input channels (inpainting/already-widened model?); use a plain text-to-image UNet"
        )
    if layout.conv_in_kernel != config.conv_in_kernel:
        raise ValueError(
            f"temporal module's conv_in_extra has kernel {config.conv_in_kernel} but the base conv_in has "
            f"kernel {layout.conv_in_kernel}; use a matching base model"
        )
    if layout.time_embed_dim is not None and layout.time_embed_dim != config.time_embed_dim:
        raise ValueError(
            f"temporal module's augmentation embedding has dim {config.time_embed_dim} but the base UNet's time "
            f"embedding has dim {layout.time_embed_dim}; use a matching base model"
        )

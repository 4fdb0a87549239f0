"""`ZiziTemporalModel`: every trainable temporal part, laid out like AnimateDiff.

    down_blocks[i].motion_modules[j]   i < len(channels), j < down_layers   (after resnet+attention j)
    mid_block.motion_modules[0]        optional (AnimateDiff v1/v3 have none)
    up_blocks[i].motion_modules[j]     i < len(channels), j < up_layers     (after resnet+attention j)
    conv_in_extra                      5 extra input channels (mask, masked known latent), zero init
    aug_embedding                      per-frame augmentation level -> time embedding, zero init
    temporal_convs                     optional pseudo-3D convs after every spatial resnet, identity init
    pose_encoder                       optional: rendered pose images -> conv_in features, zero init

The model holds no backbone. A host (`ZiziVideoUNet` for diffusers, the ComfyUI bridge)
looks layers up with `motion_module_at` / `temporal_conv_at` and calls them with a
`FrameContext`. A fresh model leaves the host's output unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from .config import TemporalModelConfig
from .embeddings import AugmentationEmbedding
from .motion_module import MotionModule, TemporalConv
from .pose_encoder import PoseEncoder

BlockKind = Literal["down", "mid", "up"]


def _motion_module(channels: int, config: TemporalModelConfig) -> MotionModule:
    return MotionModule(
        channels,
        heads=config.heads,
        num_transformer_blocks=config.num_transformer_blocks,
        num_attention_blocks=config.num_attention_blocks,
        max_positions=config.max_positions,
        ff_mult=config.ff_mult,
        norm_num_groups=config.norm_num_groups,
        dropout=config.dropout,
    )


class MotionBlock(nn.Module):
    """The motion modules of one UNet block (key `motion_modules.{j}`)."""

    def __init__(self, channels: int, num_modules: int, config: TemporalModelConfig) -> None:
        super().__init__()
        self.motion_modules = nn.ModuleList([_motion_module(channels, config) for _ in range(num_modules)])


class TemporalConvStack(nn.Module):
    """Temporal convs after every spatial resnet: down_blocks[i][j], mid_block[j], up_blocks[i][j]."""

    def __init__(self, config: TemporalModelConfig) -> None:
        super().__init__()
        kernel = config.temporal_conv_kernel
        self.down_blocks = nn.ModuleList(
            [
                nn.ModuleList([TemporalConv(c, kernel) for _ in range(config.down_layers)])
                for c in config.block_out_channels
            ]
        )
        self.mid_block = nn.ModuleList(
            [TemporalConv(config.mid_channels, kernel) for _ in range(config.mid_resnets)]
        )
        self.up_blocks = nn.ModuleList(
            [
                nn.ModuleList([TemporalConv(c, kernel) for _ in range(config.up_layers)])
                for c in config.up_block_out_channels
            ]
        )


class ZiziTemporalModel(nn.Module):
    """All temporal layers for one base UNet layout (see module docstring)."""

    def __init__(self, config: TemporalModelConfig | None = None) -> None:
        super().__init__()
        config = config or TemporalModelConfig()
        self.config = config
        self.down_blocks = nn.ModuleList(
            [MotionBlock(c, config.down_layers, config) for c in config.block_out_channels]
        )
        self.mid_block = MotionBlock(config.mid_channels, 1, config) if config.has_mid else None
        self.up_blocks = nn.ModuleList(
            [MotionBlock(c, config.up_layers, config) for c in config.up_block_out_channels]
        )
        kernel = config.conv_in_kernel
        self.conv_in_extra = nn.Conv2d(
            config.extra_in_channels, config.block_out_channels[0], kernel, padding=kernel // 2, bias=False
        )
        nn.init.zeros_(self.conv_in_extra.weight)
        self.aug_embedding = AugmentationEmbedding(
            config.aug_embed_dim, config.time_embed_dim, config.aug_level_scale
        )
        self.temporal_convs = TemporalConvStack(config) if config.has_temporal_conv else None
        self.pose_encoder = (
            PoseEncoder(config.pose_channels, config.block_out_channels[0], config.pose_downscale, config.pose_base_width)
            if config.pose_channels
            else None
        )

    # ---- lookup for hosts -------------------------------------------------------------

    def motion_modules_of(self, kind: BlockKind, block: int) -> list[MotionModule]:
        """The motion modules of UNet block `kind`/`block` in resnet order ([] if it has none)."""
        if kind == "mid":
            return list(self.mid_block.motion_modules) if self.mid_block is not None else []
        blocks = self.down_blocks if kind == "down" else self.up_blocks
        return list(blocks[block].motion_modules) if block < len(blocks) else []

    def motion_module_at(self, kind: BlockKind, block: int, layer: int) -> MotionModule | None:
        """The motion module after resnet(+attention) `layer` of UNet block `kind`/`block`, if any."""
        modules = self.motion_modules_of(kind, block)
        return modules[layer] if layer < len(modules) else None

    def temporal_conv_at(self, kind: BlockKind, block: int, layer: int) -> TemporalConv | None:
        """The temporal conv after spatial resnet `layer` of UNet block `kind`/`block`, if any."""
        if self.temporal_convs is None:
            return None
        if kind == "mid":
            convs = self.temporal_convs.mid_block
        else:
            blocks = self.temporal_convs.down_blocks if kind == "down" else self.temporal_convs.up_blocks
            if block >= len(blocks):
                return None
            convs = blocks[block]
        return convs[layer] if layer < len(convs) else None

    def motion_modules(self) -> Iterator[tuple[str, MotionModule]]:
        """(state-dict prefix, module) for every motion module, AnimateDiff order."""
        for name, module in self.named_modules():
            if isinstance(module, MotionModule):
                yield name, module

    # ---- new inputs -------------------------------------------------------------------

    def known_frame_features(self, extra_channels: torch.Tensor) -> torch.Tensor:
        """extra [(B F) 5 H W] (mask, mask * known latent) -> [(B F) C0 H W], to add to conv_in's output."""
        return self.conv_in_extra(extra_channels.to(self.conv_in_extra.weight.dtype))

    def pose_features(self, pose: torch.Tensor) -> torch.Tensor:
        """pose [(B F), C_pose, H * s, W * s] in [0, 1] -> [(B F), C0, H, W], to add to conv_in's output."""
        if self.pose_encoder is None:
            raise ValueError("this temporal model has no pose encoder")
        return self.pose_encoder(pose.to(self.pose_encoder.proj.weight.dtype))

    def widened_conv_in(self, weight: torch.Tensor) -> torch.Tensor:
        """Base conv_in weight [C0, 4, k, k] -> 9-channel weight [C0, 9, k, k] equal to base + extra.

        For hosts that swap conv_in for a wider one and concatenate the 5 extra channels to
        the input (ComfyUI c_concat): cat(x, extra) through it == conv_in(x) + conv_in_extra(extra).
        """
        extra = self.conv_in_extra.weight.to(device=weight.device, dtype=weight.dtype)
        if weight.shape[0] != extra.shape[0] or weight.shape[2:] != extra.shape[2:]:
            raise ValueError(
                f"base conv_in weight {tuple(weight.shape)} does not match conv_in_extra {tuple(extra.shape)}"
            )
        return torch.cat([weight, extra], dim=1)

    def augmentation_embedding(self, level: torch.Tensor) -> torch.Tensor:
        """Per-frame level [(B F)] or [B, F] -> [(B F), time_embed_dim], to add to the time embedding."""
        return self.aug_embedding(level.reshape(-1))

    # ---- training helpers -------------------------------------------------------------

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute motion-module activations in backward instead of storing them."""
        for _, module in self.motion_modules():
            module.gradient_checkpointing = enabled

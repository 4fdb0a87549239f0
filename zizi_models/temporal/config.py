"""Shape of a temporal model: which UNet it fits and which optional parts it has."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TemporalModelConfig:
    """Everything needed to build a `ZiziTemporalModel` (and to check it fits a base UNet).

    Defaults are SD1.5 / AnimateDiff v2: motion modules at 4 resolutions, 2 per down block,
    3 per up block, one in the mid block, 8 heads, 1 transformer block of 2 attentions.
    """

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_layers: int = 2  # motion modules (= resnets) per down block: UNet layers_per_block
    up_layers: int = 3  # motion modules (= resnets) per up block: layers_per_block + 1
    mid_resnets: int = 2  # resnets in the mid block (temporal convs follow each)
    has_mid: bool = True  # AnimateDiff v1/v3 have no mid-block motion module, v2 has one
    heads: int = 8
    num_transformer_blocks: int = 1
    num_attention_blocks: int = 2
    ff_mult: int = 4
    norm_num_groups: int = 32
    max_positions: int = 32
    dropout: float = 0.0
    has_temporal_conv: bool = False
    temporal_conv_kernel: int = 3
    # new (zizi.) parts: known-frame input channels and augmentation-level embedding
    in_channels: int = 4  # base UNet latent channels
    extra_in_channels: int = 5  # 1 mask + 4 masked known latent
    conv_in_kernel: int = 3
    time_embed_dim: int = 1280
    aug_embed_dim: int = 320
    aug_level_scale: float = 1000.0  # level in [0, 1] is scaled like a diffusion timestep before the sinusoid
    # optional pose encoder (zizi.pose_encoder): rendered pose images -> added to conv_in's output
    pose_channels: int = 0  # input channels of the pose images (3 = RGB renders); 0 = no pose encoder
    pose_downscale: int = 8  # pixel grid / latent grid (the VAE's downscale factor)
    pose_base_width: int = 16
    # trained reference attention (zizi.reference_attention): every spatial self-attention of the base UNet
    # also attends to the window's anchor frame, in training and (automatically, at strength 1) in sampling
    reference_attention: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))
        if not self.block_out_channels:
            raise ValueError("block_out_channels must not be empty")
        for channels in self.block_out_channels:
            if channels % self.heads != 0 or channels % self.norm_num_groups != 0:
                raise ValueError(
                    f"motion module channels {channels} must be divisible by heads={self.heads} "
                    f"and norm_num_groups={self.norm_num_groups}"
                )
        if self.pose_channels < 0:
            raise ValueError(f"pose_channels must be >= 0, got {self.pose_channels}")
        if self.max_positions < 1:
            raise ValueError(f"max_positions must be >= 1, got {self.max_positions}")

    @property
    def up_block_out_channels(self) -> tuple[int, ...]:
        return tuple(reversed(self.block_out_channels))

    @property
    def mid_channels(self) -> int:
        return self.block_out_channels[-1]

    def replace(self, **changes: Any) -> TemporalModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["block_out_channels"] = list(self.block_out_channels)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemporalModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown temporal model config fields {unknown}; file written by a newer version?"
            )
        return cls(**data)


SD15_CONFIG = TemporalModelConfig()

"""The module accelerate prepares: only the trainable parts, running the whole video UNet.

`ZiziVideoUNet` holds the frozen 2D UNet and the temporal model. Wrapping it whole with DDP /
DeepSpeed / FSDP would also make accelerate save (and FSDP shard) the ~1.7 GB frozen backbone in
every checkpoint. `TrainableParts` registers only the temporal model (and the LoRA A/B layers, which
live inside the UNet's attention projections) as submodules and keeps the video UNet as a plain
attribute; its forward is the video UNet's forward, so DDP's gradient hooks see every trainable
parameter the forward uses. The same parameter objects are shared, nothing is copied.
"""

from __future__ import annotations

import torch
from torch import nn

from zizi_models.temporal import ZiziVideoUNet


class TrainableParts(nn.Module):
    def __init__(self, video_unet: ZiziVideoUNet, lora: dict[str, nn.Module] | None = None,
                 train_unet: bool = False) -> None:
        super().__init__()
        self.temporal = video_unet.temporal
        self.lora = nn.ModuleDict({name.replace(".", "__"): m for name, m in (lora or {}).items()})
        if train_unet:  # a small model trained from scratch: the 2D UNet is trained (and saved) too
            self.unet = video_unet.unet
        object.__setattr__(self, "video_unet", video_unet)  # not a submodule: never saved or wrapped

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: torch.Tensor,
                positions: torch.Tensor, known_latents: torch.Tensor, mask: torch.Tensor,
                aug_level: torch.Tensor, pose: torch.Tensor | None = None,
                reference: torch.Tensor | None = None) -> torch.Tensor:
        """sample [B, F, 4, h, w], timesteps [B], text [B, 77, D], positions/mask/aug_level [B, F],
        pose [B, F, 3, H, W] (models with a pose encoder), reference [B, F] bool: the anchor frames."""
        return self.video_unet(sample, timesteps, encoder_hidden_states, positions=positions,
                               known_latents=known_latents, mask=mask, aug_level=aug_level, pose=pose,
                               reference=reference)

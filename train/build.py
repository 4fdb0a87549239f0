"""Build what `fit` trains: frozen SD1.5 in fp16/bf16 + fp32 temporal layers (+ LoRA), on one device."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from zizi_models.temporal import (
    ZiziTemporalModel,
    ZiziVideoUNet,
    freeze_backbone,
    load_temporal_model,
    temporal_config_for_unet,
)

from .config import TrainConfig
from .lora import add_lora, lora_layers
from .models import SD15Parts, load_sd15
from .trainable import TrainableParts

logger = logging.getLogger(__name__)

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Model:
    parts: SD15Parts
    video_unet: ZiziVideoUNet
    trainable: TrainableParts
    weight_dtype: torch.dtype

    def param_groups(self, config: TrainConfig) -> list[dict]:
        groups = [{"params": [p for p in self.trainable.temporal.parameters() if p.requires_grad], "name": "temporal"}]
        if config.model.train_unet:
            groups.append({"params": [p for p in self.parts.unet.parameters() if p.requires_grad], "name": "unet"})
        lora = [p for p in self.trainable.lora.parameters() if p.requires_grad]
        if lora:
            groups.append({"params": lora, "name": "lora", "lr": config.lora.lr or config.optimizer.lr})
        return groups


def build_temporal(config: TrainConfig, unet: torch.nn.Module, pose_downscale: int = 8) -> ZiziTemporalModel:
    if config.model.temporal_init:
        temporal = load_temporal_model(config.model.temporal_init, max_positions=config.model.max_positions)
        logger.info("temporal layers initialised from %s", config.model.temporal_init)
        if config.model.reference_attention and not temporal.config.reference_attention:
            temporal.config = temporal.config.replace(reference_attention=True)  # trained with it from here on
        return temporal.float()
    pose = {"pose_channels": 3, "pose_downscale": pose_downscale} if config.model.pose_encoder else {}
    temporal_config = temporal_config_for_unet(
        unet, max_positions=config.model.max_positions, has_temporal_conv=config.model.temporal_conv,
        reference_attention=config.model.reference_attention, **pose
    )
    return ZiziTemporalModel(temporal_config)


def build_model(config: TrainConfig, device: torch.device, need_vae: bool, pose_downscale: int = 8) -> Model:
    """Seed the global RNG before calling: fresh temporal / LoRA weights come from it. `pose_downscale`:
    pixels per latent cell of the dataset (sizes a new pose encoder)."""
    weight_dtype = WEIGHT_DTYPES[config.mixed_precision]
    parts = load_sd15(config.model.pretrained, config.model.tokenizer or None, need_vae=need_vae)
    for module in (parts.unet, parts.text_encoder):
        module.to(device=device)
        if weight_dtype != torch.float32 and not (module is parts.unet and config.model.train_unet):
            module.to(dtype=weight_dtype)
    if parts.vae is not None:
        parts.vae.to(device=device)  # fp32: validation decoding only, and fp16 SD VAEs overflow
    temporal = build_temporal(config, parts.unet, pose_downscale).to(device=device, dtype=torch.float32)
    video_unet = ZiziVideoUNet(parts.unet, temporal, gradient_checkpointing=config.model.gradient_checkpointing)
    if config.model.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()  # diffusers checkpoints whenever grad is enabled
    freeze_backbone(video_unet)
    if config.model.train_unet:
        if config.lora.enabled:
            raise ValueError("model.train_unet and lora.enabled exclude each other (a LoRA adapts a frozen UNet)")
        parts.unet.requires_grad_(True)
        parts.unet.train()
    layers = None
    if config.lora.enabled:
        add_lora(parts.unet, config.lora.rank, config.lora.alpha, config.lora.targets)
        parts.unet.to(device=device)
        layers = lora_layers(parts.unet)
    trainable = TrainableParts(video_unet, layers, train_unet=config.model.train_unet)
    frozen = sum(p.numel() for p in parts.unet.parameters() if not p.requires_grad)
    training = sum(p.numel() for p in trainable.parameters() if p.requires_grad)
    logger.info("backbone %.1f M frozen (%s), trainable %.1f M (fp32)", frozen / 1e6, weight_dtype, training / 1e6)
    return Model(parts, video_unet, trainable, weight_dtype)

"""Files `fit` writes into a checkpoint besides accelerate's state, and that `export` reads.

    temporal.safetensors / temporal_ema.safetensors   Zizi temporal-module format (save_temporal_model)
    lora.safetensors / lora_ema.safetensors           LoRA A/B weights, diffusers module names
    config.yaml                                       the resolved TrainConfig
    trainer_state.json                                summary (step, data position, ...); written last
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file

from zizi_models.temporal import TemporalModelConfig, ZiziTemporalModel, save_temporal_model
from zizi_models.temporal.schedules import NOISE_SCHEDULE_KEY, schedule_record

from .config import TrainConfig, to_dict

TEMPORAL_FILE = "temporal.safetensors"
TEMPORAL_EMA_FILE = "temporal_ema.safetensors"
LORA_FILE = "lora.safetensors"
LORA_EMA_FILE = "lora_ema.safetensors"
UNET_FILE = "unet.safetensors"  # model.train_unet runs: the 2D UNet, diffusers keys, fp32
UNET_EMA_FILE = "unet_ema.safetensors"


def unet_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TrainableParts state dict -> the 2D UNet's (diffusers keys), empty unless model.train_unet."""
    return {k[len("unet."):]: v.detach().float().cpu().contiguous() for k, v in state.items() if k.startswith("unet.")}
CONFIG_FILE = "config.yaml"


def training_metadata(config: TrainConfig, step: int, ema: bool,
                      scheduler_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a temporal module file records about its training (JSON values); `noise_schedule` is the
    training noise schedule (from the base model's DDPMScheduler config) when `scheduler_config` is given."""
    window = config.window
    schedule = {NOISE_SCHEDULE_KEY: schedule_record(scheduler_config)} if scheduler_config is not None else {}
    return {
        **schedule,
        "trained_window": window.frames,
        "trained_stride": {
            "starter": window.starter_strides,
            "extrapolate": window.extrapolate_strides,
            "interpolate": window.interpolate_strides,
            "interpolate_outer": window.interpolate_outer_strides,
        },
        "anchor_gap": window.anchor_gap,
        "snr_range": [config.augmentation.snr_min, config.augmentation.snr_max],
        "steps": step,
        "ema": ema,
        "base_model": Path(config.model.pretrained).name,
        "training_config": to_dict(config),
    }


def temporal_from_state(config: TemporalModelConfig, state: dict[str, torch.Tensor]) -> ZiziTemporalModel:
    """A temporal model holding exactly `state` (built on the meta device: no extra copy)."""
    with torch.device("meta"):
        model = ZiziTemporalModel(config)
    model.load_state_dict({k: v.detach().cpu() for k, v in state.items()}, strict=True, assign=True)
    return model


def split_trainable_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """TrainableParts state dict -> (temporal state, LoRA state with diffusers module names)."""
    temporal = {k[len("temporal."):]: v for k, v in state.items() if k.startswith("temporal.")}
    lora = {}
    for key, value in state.items():
        if not key.startswith("lora."):
            continue
        module, _, rest = key[len("lora."):].partition(".lora_")
        part = "lora_A" if rest.startswith("A") else "lora_B"
        lora[f"{module.replace('__', '.')}.{part}.weight"] = value.detach().float().cpu().contiguous()
    return temporal, lora


def unet_structure(unet_config: Any) -> dict[str, Any]:
    """The parts of a diffusers UNet config that fix LDM key names (stored with LoRA weights)."""
    return {key: (list(unet_config[key]) if key != "layers_per_block" else unet_config[key])
            for key in ("down_block_types", "up_block_types", "layers_per_block")}


def write_weights(folder: Path, config: TrainConfig, temporal_config: TemporalModelConfig, step: int,
                  state: dict[str, torch.Tensor], ema_state: dict[str, torch.Tensor] | None,
                  unet_config: Any, scheduler_config: dict[str, Any] | None = None) -> None:
    """state: the TrainableParts state dict; ema_state: same keys with EMA values (parameters only);
    unet_config: the base UNet's diffusers config (its block structure is stored with the LoRA)."""
    temporal, lora = split_trainable_state(state)
    save_temporal_model(temporal_from_state(temporal_config, temporal), folder / TEMPORAL_FILE,
                        metadata=training_metadata(config, step, ema=False, scheduler_config=scheduler_config))
    if lora:
        save_file(lora, str(folder / LORA_FILE), metadata=_lora_metadata(config, step, unet_config))
    unet = unet_state(state)
    if unet:
        save_file(unet, str(folder / UNET_FILE), metadata={"steps": str(step)})
    if ema_state is not None:
        merged = {**state, **ema_state}  # buffers (pos_encoder.pe) are not averaged
        ema_temporal, ema_lora = split_trainable_state(merged)
        save_temporal_model(temporal_from_state(temporal_config, ema_temporal), folder / TEMPORAL_EMA_FILE,
                            metadata=training_metadata(config, step, ema=True, scheduler_config=scheduler_config))
        if ema_lora:
            save_file(ema_lora, str(folder / LORA_EMA_FILE), metadata=_lora_metadata(config, step, unet_config))
        ema_unet = unet_state(merged)
        if ema_unet:
            save_file(ema_unet, str(folder / UNET_EMA_FILE), metadata={"steps": str(step)})


def _lora_metadata(config: TrainConfig, step: int, unet_config: Any) -> dict[str, str]:
    return {"rank": str(config.lora.rank), "alpha": str(config.lora.alpha), "steps": str(step),
            "targets": json.dumps(config.lora.targets), "unet_structure": json.dumps(unet_structure(unet_config))}


def write_config(folder: Path, config: TrainConfig) -> None:
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def read_config_dict(folder: Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}; not a checkpoint written by `python -m train fit`")
    return yaml.safe_load(path.read_text())


def write_trainer_state(folder: Path, summary: dict[str, Any], name: str) -> None:
    (folder / name).write_text(json.dumps(summary, indent=1))

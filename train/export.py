"""`python -m train export`: a checkpoint -> a temporal module `.safetensors` (+ a ComfyUI LoRA).

The temporal file is zizi_models.temporal's format (loads with `load_temporal_model` and ComfyUI's
ZiziTemporalModelLoader); its metadata records how it was trained: trained_window, trained_stride,
anchor_gap, snr_range, steps, ema, base_model, noise_schedule (the training beta schedule, which
ZiziTemporalModelLoader's `auto` gives the MODEL) and the full training config. `--ema` exports the EMA
weights. `--lora PATH` also writes the run's subject LoRA in the kohya/LDM key format ComfyUI's
LoraLoader reads (lora.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from zizi_models.temporal import ZiziTemporalModel, read_temporal_state, save_temporal_model
from zizi_models.temporal.checkpoint import RESERVED_METADATA

from .artifacts import LORA_EMA_FILE, LORA_FILE, TEMPORAL_EMA_FILE, TEMPORAL_FILE
from .checkpoint import list_checkpoints
from .lora import to_kohya

logger = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class ExportResult:
    temporal: Path
    lora: Path | None
    checkpoint: Path


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (-> its newest checkpoint)."""
    path = Path(path)
    if (path / TEMPORAL_FILE).is_file():
        return path
    found = list_checkpoints(path)
    if found:
        return found[-1]
    raise FileNotFoundError(f"{path}: not a checkpoint folder (no {TEMPORAL_FILE}) nor a run folder with checkpoints")


def export_temporal(checkpoint: Path, output: Path, ema: bool, dtype: torch.dtype) -> Path:
    source = checkpoint / (TEMPORAL_EMA_FILE if ema else TEMPORAL_FILE)
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found" + (" (the run was trained with ema.enabled=false)" if ema else ""))
    state = read_temporal_state(source)
    model = ZiziTemporalModel(state.config)
    model.load_state_dict(state.tensors, strict=True)
    metadata = {k: v for k, v in state.metadata.items() if k not in RESERVED_METADATA}
    metadata["exported_from"] = checkpoint.name
    save_temporal_model(model, output, metadata=metadata, dtype=dtype)
    logger.info("exported %s%s -> %s", checkpoint.name, " (EMA)" if ema else "", output)
    return output


def export_lora(checkpoint: Path, output: Path, ema: bool, dtype: torch.dtype) -> Path:
    source = checkpoint / (LORA_EMA_FILE if ema else LORA_FILE)
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: the run did not train a LoRA (lora.enabled: true)")
    with safe_open(str(source), framework="pt") as handle:
        meta = handle.metadata() or {}
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    alpha = float(meta["alpha"])
    kohya = to_kohya(state, alpha, json.loads(meta["unet_structure"]), dtype=dtype)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_file(kohya, str(output), metadata={
        "ss_network_module": "networks.lora", "ss_network_dim": meta["rank"], "ss_network_alpha": meta["alpha"],
        "zizi.steps": meta.get("steps", ""), "zizi.exported_from": checkpoint.name,
    })
    logger.info("exported LoRA (%d modules, rank %s) -> %s", len(kohya) // 3, meta["rank"], output)
    return output


def export(checkpoint: str | Path, output: str | Path, ema: bool = False, lora: str | Path | None = None,
           dtype: str = "fp16") -> ExportResult:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    folder = find_checkpoint(checkpoint)
    temporal = export_temporal(folder, Path(output), ema, DTYPES[dtype])
    lora_path = export_lora(folder, Path(lora), ema, DTYPES[dtype]) if lora else None
    return ExportResult(temporal, lora_path, folder)

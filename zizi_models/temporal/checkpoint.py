"""Save / load temporal models as one `.safetensors` file; read AnimateDiff `.ckpt` files weights-only.

Keys: see `layout.py` (AnimateDiff layout for motion modules, `zizi.` for the rest).
Metadata (str -> str, every value JSON-encoded):
    format            "zizi-temporal"
    format_version    1
    config            TemporalModelConfig as a JSON object
    block_out_channels, max_positions, parts (which optional parts are present)
    + caller metadata, e.g. trained_window, trained_stride, snr_range

AnimateDiff v1/v2/v3 (`.safetensors`, or `.ckpt` / `.pt` through torch.load(weights_only=True), see
animatediff_files.py) and diffusers MotionAdapter files load too: their config is inferred from the key
names and shapes, and the new parts keep their identity / zero initialisation. SDXL motion modules are
refused by shape.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .animatediff_files import PICKLE_SUFFIXES, looks_pickled, read_pickled_tensors, sdxl_refusal
from .config import TemporalModelConfig
from .layout import (
    ZIZI_PREFIX,
    diffusers_to_animatediff_keys,
    infer_config,
    is_diffusers_motion_adapter,
    is_motion_key,
    to_file_key,
    to_model_key,
)
from .model import ZiziTemporalModel
from .positional_encoding import sinusoidal_table
from .trained_defaults import attach_file_facts

logger = logging.getLogger(__name__)

FORMAT_NAME = "zizi-temporal"
FORMAT_VERSION = 1
RESERVED_METADATA = ("format", "format_version", "config", "block_out_channels", "max_positions", "parts")


@dataclass
class TemporalState:
    """What `read_temporal_state` found: model-key tensors, the config they imply, parsed metadata."""

    tensors: dict[str, torch.Tensor]
    config: TemporalModelConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    source_format: str = FORMAT_NAME  # "zizi-temporal" | "animatediff" | "diffusers-motion-adapter"


def expected_shapes(config: TemporalModelConfig) -> dict[str, tuple[int, ...]]:
    """Model-key -> shape of every tensor of a model with `config` (built on the meta device, no memory)."""
    with torch.device("meta"):
        model = ZiziTemporalModel(config)
    return {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}


def save_temporal_model(
    model: ZiziTemporalModel,
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write `model` to `path` atomically; `metadata` values must be JSON-serialisable."""
    metadata = dict(metadata or {})
    clash = sorted(set(metadata) & set(RESERVED_METADATA))
    if clash:
        raise ValueError(f"metadata keys {clash} are written by save_temporal_model itself; rename them")
    config = model.config
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "block_out_channels": list(config.block_out_channels),
        "max_positions": config.max_positions,
        "parts": {
            "mid_block": config.has_mid,
            "temporal_conv": config.has_temporal_conv,
            "conv_in_extra": True,
            "aug_embedding": True,
            "pose_encoder": config.pose_channels > 0,
        },
        **metadata,
    }
    encoded = {key: json.dumps(value, sort_keys=True) for key, value in header.items()}
    tensors = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[to_file_key(key)] = tensor.cpu().contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=encoded)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.info("saved temporal model (%d tensors) to %s", len(tensors), path)


def _parse_metadata(raw: dict[str, str] | None) -> dict[str, Any]:
    parsed = {}
    for key, value in (raw or {}).items():
        try:
            parsed[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            parsed[key] = value  # foreign metadata that is not JSON
    return parsed


def _not_temporal_error(path: Path, keys: list[str]) -> ValueError:
    if any(k.startswith("model.diffusion_model.") for k in keys) or {
        "conv_in.weight",
        "time_embedding.linear_1.weight",
    } <= set(keys):
        what = "a Stable Diffusion model checkpoint (load it with the checkpoint loader instead)"
    elif any(k.startswith(("lora_", "lora.")) or ".lora_" in k for k in keys):
        what = "a LoRA"
    else:
        what = f"something else ({len(keys)} tensors, e.g. {keys[:3]})"
    return ValueError(
        f"{path} is not a temporal module: it has no motion-module tensors "
        f"(down_blocks.N.motion_modules.M...); it looks like {what}"
    )


def read_temporal_state(path: str | os.PathLike, max_positions: int | None = None) -> TemporalState:
    """Read tensors + config from a Zizi, AnimateDiff or diffusers MotionAdapter file.

    `.safetensors` files are read lazily; pickled AnimateDiff `.ckpt` / `.pt` files only through
    `torch.load(weights_only=True)` (animatediff_files.py), never a full unpickle.
    max_positions: resize the position tables (e.g. start a longer-range model from AnimateDiff's
    32); allowed because pe is the fixed sinusoid, which is checked. The pe tensors are then
    dropped from `tensors` and the new model computes its own.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"temporal module file not found: {path}")
    if looks_pickled(path):
        tensors = read_pickled_tensors(path)
        return _state_from(path, {}, list(tensors), lambda k: tuple(tensors[k].shape), tensors.__getitem__,
                           max_positions)
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ValueError(f"{path} is not a PyTorch .ckpt/.pt file nor a safetensors file (unreadable: "
                             f"{str(err).splitlines()[0][:120]}); expected a motion module file") from None
        raise ValueError(f"{path} is not a safetensors file (unreadable header: {str(err).splitlines()[0][:120]})"
                         ) from None
    with handle:
        return _state_from(path, _parse_metadata(handle.metadata()), list(handle.keys()),
                           lambda k: tuple(handle.get_slice(k).get_shape()), handle.get_tensor, max_positions)


def _state_from(
    path: Path,
    metadata: dict[str, Any],
    file_keys: list[str],
    shape_of: Callable[[str], tuple[int, ...]],
    tensor_of: Callable[[str], torch.Tensor],
    max_positions: int | None,
) -> TemporalState:
    if not any(is_motion_key(k) for k in file_keys):
        hotshot = sdxl_refusal(path, {k: shape_of(k) for k in file_keys if ".temporal_attentions." in k})
        if hotshot:
            raise ValueError(hotshot)
        raise _not_temporal_error(path, file_keys)
    if is_diffusers_motion_adapter(file_keys):
        source = "diffusers-motion-adapter"
        renames = diffusers_to_animatediff_keys(file_keys)
    else:
        zizi = metadata.get("format") == FORMAT_NAME or any(k.startswith(ZIZI_PREFIX) for k in file_keys)
        source = FORMAT_NAME if zizi else "animatediff"
        renames = {k: [to_model_key(k)] for k in file_keys}
    shapes = {new: shape_of(k) for k, news in renames.items() for new in news}
    if source != FORMAT_NAME:
        sdxl = sdxl_refusal(path, shapes)
        if sdxl:
            raise ValueError(sdxl)
    config = _config_for(path, metadata, shapes)
    resize_pe = max_positions is not None and max_positions != config.max_positions
    if resize_pe:
        shapes = {k: v for k, v in shapes.items() if not k.endswith(".pe")}
        config = config.replace(max_positions=max_positions)
    _check_shapes(path, config, shapes)
    tensors = {}
    for key, news in renames.items():
        tensor = tensor_of(key)
        for new in news:
            tensors[new] = tensor if len(news) == 1 else tensor.clone()
    if resize_pe:
        _drop_standard_pe(path, tensors)
    logger.info("read temporal module %s (%s, channels %s)", path.name, source, config.block_out_channels)
    return TemporalState(tensors, config, metadata, source)


def _drop_standard_pe(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    for key in [k for k in tensors if k.endswith(".pe")]:
        pe = tensors.pop(key).float()
        if not torch.allclose(pe, sinusoidal_table(pe.shape[1], pe.shape[2]), atol=1e-3):
            raise ValueError(
                f"{path}: '{to_file_key(key)}' is not the standard sinusoid, so max_positions cannot be "
                f"changed; load it with its own max_positions ({pe.shape[1]})"
            )


def _config_for(
    path: Path, metadata: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> TemporalModelConfig:
    if metadata.get("format") == FORMAT_NAME:
        version = metadata.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{path} has {FORMAT_NAME} format version {version!r}; this code reads up to "
                f"{FORMAT_VERSION}, update Zizi Video"
            )
        if "config" in metadata:
            return TemporalModelConfig.from_dict(metadata["config"])
    try:
        return infer_config(shapes)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _check_shapes(path: Path, config: TemporalModelConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    expected = expected_shapes(config)
    for key, shape in shapes.items():
        if key not in expected:
            raise ValueError(
                f"{path}: unexpected tensor '{to_file_key(key)}' for a temporal model with channels "
                f"{config.block_out_channels}; the file is from another model type or a newer version"
            )
        if tuple(shape) != expected[key]:
            raise ValueError(
                f"{path}: tensor '{to_file_key(key)}' has shape {tuple(shape)}, expected {expected[key]} "
                f"(channels {config.block_out_channels}, max_positions {config.max_positions})"
            )
    missing = [
        k for k in expected if k not in shapes and is_motion_key(k) and not k.endswith("pos_encoder.pe")
    ]
    if missing:
        raise ValueError(
            f"{path}: incomplete temporal module, {len(missing)} motion-module tensors missing, e.g. '{missing[0]}'"
        )


def model_from_state(
    state: TemporalState,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    name: str = "temporal module",
) -> ZiziTemporalModel:
    """Build a ZiziTemporalModel holding `state`; parts the file lacked keep their identity/zero init."""
    model = ZiziTemporalModel(state.config)
    result = model.load_state_dict(state.tensors, strict=False)
    if result.unexpected_keys:  # _check_shapes makes this unreachable; keep the guard
        raise ValueError(f"{name}: unexpected tensors {result.unexpected_keys[:3]}")
    defaults = sorted(
        {"pos_encoder.pe" if k.endswith(".pe") else k.split(".")[0] for k in result.missing_keys}
    )
    if defaults:
        logger.info("%s: no tensors for %s, keeping their initialisation", name, defaults)
    model.to(device=device)
    if dtype is not None:
        model.to(dtype=dtype)
    return attach_file_facts(model, state.metadata, state.source_format)


def load_temporal_model(
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    max_positions: int | None = None,
) -> ZiziTemporalModel:
    """Build a ZiziTemporalModel from a file; parts the file lacks keep their identity/zero init.

    max_positions: see `read_temporal_state` (resizes the sinusoidal position tables).
    """
    return model_from_state(read_temporal_state(path, max_positions), device, dtype, Path(path).name)

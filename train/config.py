"""The `fit` configuration: a tree of dataclasses with defaults, read from YAML + `--set key.sub=value`.

Every key a YAML file or an override names must exist in the schema below; an unknown key is an
error that lists the valid keys at that level (a typo must never be silently ignored: seed 001 lost
runs to settings that were not what the author thought). Values are checked against the field
types (YAML `1e-4` without a dot is read as a string by PyYAML and converted here).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass
class ModelConfig:
    pretrained: str = ""  # local diffusers SD1.5 folder, or a local LDM single-file .safetensors
    tokenizer: str = ""  # folder with vocab.json + merges.txt; needed for single-file checkpoints only
    temporal_init: str = ""  # start from an existing temporal module (.safetensors; AnimateDiff files load too)
    max_positions: int = 32  # position table size of the temporal layers (windows must fit inside)
    temporal_conv: bool = False  # add pseudo-3D temporal convolutions after the spatial resnets
    gradient_checkpointing: bool = False
    train_unet: bool = False  # also train the 2D UNet (fp32), e.g. a small model from scratch (train/puppet.py)
    pose_encoder: bool = False  # add a pose encoder fed with the clips' rendered poses (needs poses in the dataset)
    # spatial self-attention of every frame also attends to its window's anchor (trained reference attention;
    # recorded in the temporal module's config, so sampling applies it too)
    reference_attention: bool = False


@dataclass
class LoraSection:
    enabled: bool = False  # train a subject LoRA on the UNet's spatial attention projections
    rank: int = 8
    alpha: float = 8.0
    targets: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    lr: float = 0.0  # 0 = the optimizer's lr


@dataclass
class DataConfig:
    dataset: str = ""  # a folder written by `python -m train preprocess` (holds index.json)
    batch_size: int = 1  # windows per process per micro-step
    num_workers: int = 0
    prompt: str = ""  # used for clips without a caption
    text_dropout: float = 0.1  # probability of the empty prompt (classifier-free guidance)
    pose_line_scale: float = 1.0  # stroke scale of the rendered pose images (as ZiziRenderPoses' line_scale)


@dataclass
class WindowConfig:
    frames: int = 8  # frames per training window, anchor included
    anchor_gap: int = 2  # position gap between the anchor (position 0) and the first other frame
    no_anchor_prob: float = 0.0  # windows without the anchor frame (unconditional starts)
    task_weights: dict[str, float] = field(
        default_factory=lambda: {"starter": 1.0, "extrapolate": 1.0, "interpolate": 1.0}
    )
    starter_strides: list[int] = field(default_factory=lambda: [1])
    extrapolate_strides: list[int] = field(default_factory=lambda: [1, 4])
    interpolate_strides: list[int] = field(default_factory=lambda: [1])  # spacing inside the generated gap
    interpolate_outer_strides: list[int] = field(default_factory=lambda: [1, 4])  # spacing of the extra known frames
    extrapolate_context: list[int] = field(default_factory=lambda: [1, 3])  # [min, max] known frames
    interpolate_before: list[int] = field(default_factory=lambda: [1, 2])  # [min, max] known before the gap
    interpolate_after: list[int] = field(default_factory=lambda: [1, 2])  # [min, max] known after the gap


@dataclass
class AugmentationConfig:
    snr_min: float = 0.25  # known frames get snr ~ log-uniform [snr_min, snr_max]; the anchor is never augmented
    snr_max: float = 4.0
    clean_prob: float = 0.0  # probability that a non-anchor known frame is fed clean (snr = inf)


@dataclass
class OptimizerConfig:
    name: str = "adamw"  # adamw | adamw8bit (bitsandbytes, CUDA only)
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-2
    eps: float = 1e-8
    max_grad_norm: float = 1.0  # 0 = no clipping
    scheduler: str = "cosine"  # cosine | constant (both after a linear warmup)
    warmup_steps: int = 0


@dataclass
class LossConfig:
    # Min-SNR-gamma weighting (Hang et al. 2023): each window's noise-prediction loss is scaled by
    # min(SNR(t), gamma) / SNR(t), so the many low-noise steps stop drowning out the high-noise ones
    # where a window's colours and layout are decided (and the known frames matter). 0 = plain MSE.
    min_snr_gamma: float = 0.0


@dataclass
class EMAConfig:
    enabled: bool = True
    decay: float = 0.999
    warmup: bool = True  # decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates


@dataclass
class CheckpointConfig:
    every: int = 500  # optimizer steps between checkpoints (the last step is always saved)
    keep: int = 3  # newest K checkpoints kept


@dataclass
class LoggingConfig:
    every: int = 10  # optimizer steps between tensorboard scalars
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass
class ValidationConfig:
    every: int = 0  # optimizer steps between validation videos (0 = never)
    steps: int = 20  # DDIM steps
    guidance_scale: float = 5.0
    prompt: str = ""  # empty = the validation clip's caption
    fps: float = 8.0
    use_ema: bool = True


@dataclass
class PruningConfig:
    enabled: bool = False  # seed 001's prioritised training: drop the clips that stay hardest to learn
    at_step: int = 1000  # optimizer step at which the hardest clips are dropped (once)
    drop_fraction: float = 0.1
    min_visits: int = 1  # clips seen fewer times are never dropped


@dataclass
class TrainConfig:
    seed: int = 0
    output_dir: str = "runs/zizi"
    max_steps: int = 1000  # optimizer steps
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # no | fp16 | bf16: dtype of the frozen backbone (+ autocast)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSection = field(default_factory=LoraSection)
    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)


# Keys that may differ between a checkpoint's config and the resuming run's without changing
# what is trained (everything else is an error unless `--allow-config-change`).
RESUME_SAFE_PREFIXES = ("output_dir", "checkpoint.", "logging.", "validation.", "data.num_workers")


# ---- reading ----------------------------------------------------------------------------


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def valid_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, e.g. `optimizer.lr`."""
    keys = []
    for name, hint in _field_types(cls).items():
        if dataclasses.is_dataclass(hint):
            keys.extend(valid_keys(hint, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def _unknown_key(key: str, cls: type, prefix: str) -> ConfigError:
    options = ", ".join(valid_keys(cls, prefix))
    return ConfigError(f"unknown config key '{prefix}{key}'; valid keys{' under ' + prefix[:-1] if prefix else ''}: {options}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return str(value)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return {str(k): _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"config key '{key}': union types are not supported in the schema")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix[:-1] or '<root>'}' must be a mapping, got {data!r}")
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise _unknown_key(str(key), cls, prefix)
        hint = types_[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, prefix + key)
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], key: str, value: Any, root: type | None = None) -> None:
    parts = key.split(".")
    cls: type = root or TrainConfig
    node = tree
    for depth, part in enumerate(parts):
        prefix = ".".join(parts[:depth]) + ("." if depth else "")
        types_ = _field_types(cls)
        if part not in types_:
            raise _unknown_key(part, cls, prefix)
        hint = types_[part]
        last = depth == len(parts) - 1
        if dataclasses.is_dataclass(hint):
            if last:
                raise ConfigError(
                    f"config key '{key}' is a section; set one of: {', '.join(valid_keys(hint, key + '.'))}"
                )
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
            cls = hint
        elif not last:
            raise ConfigError(f"config key '{'.'.join(parts[: depth + 1])}' has no sub-keys (in '{key}')")
        else:
            node[part] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`key.sub=value` -> (key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply `key.sub=value` overrides; relative paths in
    the model/data sections are resolved against the YAML file's folder."""
    tree: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        tree = yaml.safe_load(path.read_text()) or {}
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of config sections")
        base = path.resolve().parent
        _resolve_paths(tree, base)
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    config = _build(TrainConfig, tree)
    validate(config)
    return config


def _resolve_paths(tree: dict[str, Any], base: Path) -> None:
    """`./x` and `../x` in path-valued keys of a YAML file are relative to that file."""
    for section, key in (("model", "pretrained"), ("model", "tokenizer"), ("model", "temporal_init"), ("data", "dataset")):
        value = (tree.get(section) or {}).get(key)
        if isinstance(value, str) and value.startswith(("./", "../")):
            tree[section][key] = str((base / value).resolve())


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    config = _build(TrainConfig, data)
    validate(config)
    return config


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "task_weights":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def config_changes(saved: dict[str, Any], current: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(key, saved value, current value) for every key that changes what is trained."""
    old, new = flatten(saved), flatten(to_dict(current))
    changes = []
    for key in sorted(set(old) | set(new)):
        if key.startswith(RESUME_SAFE_PREFIXES):
            continue
        if old.get(key) != new.get(key):
            changes.append((key, old.get(key), new.get(key)))
    return changes


def validate(config: TrainConfig) -> None:
    """Cross-field checks that the types alone do not express."""
    problems = []
    if config.max_steps < 1:
        problems.append("max_steps must be >= 1")
    if config.gradient_accumulation_steps < 1:
        problems.append("gradient_accumulation_steps must be >= 1")
    if config.mixed_precision not in ("no", "fp16", "bf16"):
        problems.append(f"mixed_precision must be no, fp16 or bf16, got {config.mixed_precision!r}")
    if config.optimizer.name not in ("adamw", "adamw8bit"):
        problems.append(f"optimizer.name must be adamw or adamw8bit, got {config.optimizer.name!r}")
    if config.optimizer.scheduler not in ("cosine", "constant"):
        problems.append(f"optimizer.scheduler must be cosine or constant, got {config.optimizer.scheduler!r}")
    if len(config.optimizer.betas) != 2:
        problems.append("optimizer.betas must have two values")
    aug = config.augmentation
    if not 0 < aug.snr_min <= aug.snr_max:
        problems.append(f"augmentation needs 0 < snr_min <= snr_max, got [{aug.snr_min}, {aug.snr_max}]")
    if config.loss.min_snr_gamma < 0:
        problems.append(f"loss.min_snr_gamma must be >= 0 (0 = off), got {config.loss.min_snr_gamma}")
    window = config.window
    if window.frames < 2:
        problems.append("window.frames must be >= 2")
    unknown_tasks = sorted(set(window.task_weights) - {"starter", "extrapolate", "interpolate"})
    if unknown_tasks:
        problems.append(f"window.task_weights: unknown tasks {unknown_tasks}; valid: starter, extrapolate, interpolate")
    if not any(w > 0 for w in window.task_weights.values()):
        problems.append("window.task_weights needs at least one task with a positive weight")
    for name in ("extrapolate_context", "interpolate_before", "interpolate_after"):
        bounds = getattr(window, name)
        if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1]:
            problems.append(f"window.{name} must be [min, max] with 0 <= min <= max, got {bounds}")
    for name in ("starter_strides", "extrapolate_strides", "interpolate_strides", "interpolate_outer_strides"):
        strides = getattr(window, name)
        if not strides or any(s < 1 for s in strides):
            problems.append(f"window.{name} must be a non-empty list of strides >= 1, got {strides}")
    if not 0 <= config.data.text_dropout <= 1:
        problems.append("data.text_dropout must be in [0, 1]")
    if config.checkpoint.every < 1 or config.checkpoint.keep < 1:
        problems.append("checkpoint.every and checkpoint.keep must be >= 1")
    if not 0 <= config.pruning.drop_fraction < 1:
        problems.append("pruning.drop_fraction must be in [0, 1)")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))

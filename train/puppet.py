"""`python -m train puppet`: the shipped small puppet model, from nothing, in one reproducible command.

Stages (each skipped when its output exists, so an interrupted run continues; `fit` resumes from its
newest checkpoint):

    clips     puppet clips (zizi_models.puppet): frames + poses + captions     <run>/clips.pt
    base      a small SD1.5-family model at random init (UNet, VAE, text       <run>/base/ (diffusers folder)
              encoder, CLIP tokenizer files), then the VAE fitted on the clips' frames and its latent scale set
    dataset   the clips encoded by that VAE, in `preprocess`'s format        <run>/dataset/
              (latent shards + index.json + one POSE_KEYPOINT json per clip)
    fit       `fit` with the `fit:` section: UNet (model.train_unet) + temporal layers + pose encoder
    export    weights/<name>_base.safetensors (EMA UNet + VAE + text encoder; architecture in the metadata)
              and weights/<name>_temporal.safetensors (EMA temporal layers + pose encoder)

With `puppet.init_from` (a prefix of two exported files) the base stage copies that model instead (no VAE
fit) and `fit` starts its temporal layers from its temporal file: a second stage that continues a build
(train/configs/puppet_more.yaml); the export records the steps of both stages.

The text encoder stays at its seeded random init (frozen): one caption per character acts as a label,
and the first frame gives the appearance anyway. The YAML has two sections, `puppet:` (this file's
settings) and `fit:` (a `fit` config; model.pretrained, data.dataset and output_dir are set here).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from zizi_models.sd15_configs import (
    SD15_SCHEDULER_CONFIG,
    SD15_TEXT_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
)

from .clip_index import ClipIndex, ClipRecord, write_atomic_text, write_shard
from .clip_tokenizer import write_clip_tokenizer
from .config import ConfigError, _build, config_from_dict
from .vae_fit import VAEFitConfig, fit_vae, frames_to_tensor, reconstruction_psnr, set_latent_scale

logger = logging.getLogger(__name__)

# SD1.5's structure at reduced widths (GroupNorm 32 everywhere, so ComfyUI computes what diffusers does);
# a 3-level VAE: 64x64 frames -> 16x16 latents.
PUPPET_UNET_CONFIG = {**SD15_UNET_CONFIG, "sample_size": 16, "block_out_channels": [32, 64, 96, 96],
                      "cross_attention_dim": 32, "attention_head_dim": 2}
PUPPET_VAE_CONFIG = {**SD15_VAE_CONFIG, "down_block_types": ["DownEncoderBlock2D"] * 3,
                     "up_block_types": ["UpDecoderBlock2D"] * 3, "block_out_channels": [32, 64, 64],
                     "layers_per_block": 1, "sample_size": 64}
PUPPET_TEXT_CONFIG = {**SD15_TEXT_CONFIG, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "projection_dim": 32}


INIT_TEMPORAL = "temporal_init.safetensors"  # <run>/base/: the init_from temporal module the fit starts from


@dataclass
class PuppetSection:
    seed: int = 0
    output_dir: str = "runs/puppet"
    weights_dir: str = "weights"  # where `export` writes the two shipped files
    name: str = "zizi_puppet"
    size: int = 64  # square frame size
    clips: int = 96
    clip_frames: int = 48
    fps: float = 12.0
    # 1: the named characters with a caption each (the shipped weights); 2: every clip's appearance drawn from
    # a seed of the "train" split, caption "a puppet" (zizi_models.puppet.appearance)
    world: int = 1
    vae: VAEFitConfig = field(default_factory=VAEFitConfig)
    # Continue an earlier build instead of starting from random weights: the prefix of its two exported files
    # (e.g. "weights/zizi_puppet" -> _base.safetensors gives UNet, VAE and text encoder; _temporal.safetensors
    # initialises the temporal layers and pose encoder). The VAE is then not refitted.
    init_from: str = ""


def load_puppet_config(path: str | Path, overrides: list[str] | None = None) -> tuple[PuppetSection, dict[str, Any]]:
    """(puppet settings, the raw `fit:` tree) of a puppet YAML; overrides are `puppet.x=...` or `fit.x.y=...`."""
    from .config import _set_dotted, parse_override

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    tree = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(tree) - {"puppet", "fit"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level sections {unknown}; valid: ['fit', 'puppet']")
    for text in overrides or []:
        key, value = parse_override(text)
        section, _, rest = key.partition(".")
        if section not in ("puppet", "fit") or not rest:
            raise ConfigError(f"override '{text}': keys start with 'puppet.' or 'fit.'")
        node = tree.get(section)
        if node is None:
            node = tree[section] = {}
        _set_dotted(node, rest, value, PuppetSection if section == "puppet" else None)
    return _build(PuppetSection, tree.get("puppet") or {}, "puppet."), dict(tree.get("fit") or {})


# ---- stages ---------------------------------------------------------------------------------


def make_clips(section: PuppetSection, path: Path) -> dict[str, Any]:
    from zizi_models.puppet import random_clip

    if path.is_file():
        return torch.load(path, weights_only=False)
    frames, poses, captions, kinds = [], [], [], []
    for i in range(section.clips):
        clip = random_clip(section.seed * 100_003 + i, section.clip_frames, section.size, world=section.world)
        frames.append(torch.from_numpy(clip.frames))
        poses.append(clip.poses)
        captions.append(clip.caption)
        kinds.append(clip.kind)
    data = {"frames": torch.stack(frames), "poses": poses, "captions": captions, "kinds": kinds}  # frames [N, T, H, W, 3]
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    logger.info("rendered %d puppet clips of %d frames at %dx%d", section.clips, section.clip_frames, section.size, section.size)
    return data


def init_files(section: PuppetSection) -> tuple[Path, Path] | None:
    """(base file, temporal file) of `init_from`, or None; FileNotFoundError names the missing one."""
    if not section.init_from:
        return None
    files = (Path(f"{section.init_from}_base.safetensors"), Path(f"{section.init_from}_temporal.safetensors"))
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"puppet.init_from: {path} not found (init_from is the prefix of the two files "
                                    "an earlier `python -m train puppet` exported, e.g. weights/zizi_puppet)")
    return files


def init_steps(base_file: Path) -> int:
    """Training steps recorded in an exported base file (0 when it has no puppet metadata)."""
    from safetensors import safe_open

    with safe_open(str(base_file), framework="pt", device="cpu") as handle:
        raw = (handle.metadata() or {}).get("zizi_puppet")
    return int(json.loads(raw).get("steps", 0)) if raw else 0


def make_base(section: PuppetSection, clips: dict[str, Any], folder: Path) -> None:
    """Random small SD1.5-family model with a VAE fitted on the clips' frames (or the `init_from` model), as a
    diffusers folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if (folder / "model_index.json").is_file():
        return
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    init = init_files(section)
    if init is not None:
        from zizi_models.base_checkpoint import load_base_diffusers

        unet, vae, text, _ = load_base_diffusers(init[0])
        logger.info("base model from %s (no VAE fit)", init[0])
        staging.mkdir(parents=True)
        shutil.copy(init[1], staging / INIT_TEMPORAL)  # a copy: the export may overwrite init_from's files
        _write_base_folder(staging, folder, unet, vae, text, {"init_from": section.init_from, "init_steps": init_steps(init[0])})
        return
    torch.manual_seed(section.seed)
    unet = UNet2DConditionModel(**PUPPET_UNET_CONFIG)
    torch.manual_seed(section.seed + 1)
    vae = AutoencoderKL(**PUPPET_VAE_CONFIG)
    torch.manual_seed(section.seed + 2)
    text = CLIPTextModel(CLIPTextConfig(**PUPPET_TEXT_CONFIG))
    frames = clips["frames"]  # [N, T, H, W, 3] uint8
    train_frames = frames[:-1].flatten(0, 1)  # the last clip is held out
    held_out = frames_to_tensor(frames[-1])

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(0, train_frames.shape[0], (n,), generator=generator)
        return frames_to_tensor(train_frames[index])

    fit_vae(vae, sample, section.vae, section.seed)
    set_latent_scale(vae, frames_to_tensor(train_frames[:: max(1, train_frames.shape[0] // 512)]))
    logger.info("vae reconstruction PSNR on the held-out clip: %.2f dB", reconstruction_psnr(vae, held_out))
    _write_base_folder(staging, folder, unet, vae, text)


def _write_base_folder(staging: Path, folder: Path, unet, vae, text, origin: dict[str, Any] | None = None) -> None:
    unet.save_pretrained(str(staging / "unet"), safe_serialization=True)
    vae.save_pretrained(str(staging / "vae"), safe_serialization=True)
    text.save_pretrained(str(staging / "text_encoder"), safe_serialization=True)
    write_clip_tokenizer(staging / "tokenizer")
    (staging / "scheduler").mkdir()
    (staging / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "DDPMScheduler", **SD15_SCHEDULER_CONFIG}, indent=1))
    (staging / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline", "zizi": "puppet",
                                                                **(origin or {})}))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


@torch.no_grad()
def make_dataset(section: PuppetSection, clips: dict[str, Any], base: Path, folder: Path) -> None:
    from diffusers import AutoencoderKL

    if (folder / "index.json").is_file():
        return
    vae = AutoencoderKL.from_pretrained(str(base), subfolder="vae", local_files_only=True).eval()
    scale = float(vae.config.scaling_factor)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "poses").mkdir(parents=True)
    latent = section.size // 2 ** (len(PUPPET_VAE_CONFIG["block_out_channels"]) - 1)
    index = ClipIndex(section.size, section.fps, scale, [4, latent, latent], settings={"source": "train.puppet"})
    tensors = {}
    for i, frames in enumerate(clips["frames"]):
        clip_id = f"puppet-{i:04d}"
        latents = vae.encode(frames_to_tensor(frames)).latent_dist.mean * scale  # [T, 4, h, w]
        tensors[clip_id] = latents.half()
        pose_rel = f"poses/{clip_id}.json"
        write_atomic_text(staging / pose_rel, json.dumps(clips["poses"][i]))
        index.clips.append(ClipRecord(clip_id, f"puppet/{clips['kinds'][i]}/{i}", "shards/shard_00000.safetensors",
                                      clip_id, int(frames.shape[0]), 0.0, clips["captions"][i], pose_rel))
    write_shard(staging / "shards" / "shard_00000.safetensors", tensors)
    index.save(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    logger.info("encoded %d clips into %s", len(tensors), folder)


def fit_config(section: PuppetSection, fit_tree: dict[str, Any], run: Path):
    tree = json.loads(json.dumps(fit_tree))  # a deep copy
    tree.setdefault("model", {})["pretrained"] = str(run / "base")
    tree.setdefault("data", {})["dataset"] = str(run / "dataset")
    tree["output_dir"] = str(run / "fit")
    tree.setdefault("seed", section.seed)
    if section.init_from:
        if tree["model"].get("temporal_init"):
            raise ConfigError("fit.model.temporal_init and puppet.init_from exclude each other")
        tree["model"]["temporal_init"] = str(run / "base" / INIT_TEMPORAL)
    config = config_from_dict(tree)
    if not (config.model.train_unet and config.model.pose_encoder):
        raise ConfigError("fit: the puppet model trains its UNet and a pose encoder (model.train_unet and "
                          "model.pose_encoder must be true)")
    return config


def export_weights(section: PuppetSection, run: Path, config, command: str) -> tuple[Path, Path]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file
    from transformers import CLIPTextModel

    from zizi_models.base_checkpoint import save_base_checkpoint

    from .artifacts import UNET_EMA_FILE, UNET_FILE
    from .checkpoint import checkpoint_step
    from .export import export_temporal, find_checkpoint

    checkpoint = find_checkpoint(run / "fit")
    origin = json.loads((run / "base" / "model_index.json").read_text())
    steps = checkpoint_step(checkpoint) + int(origin.get("init_steps", 0))
    ema = (checkpoint / UNET_EMA_FILE).is_file()
    base = run / "base"
    unet = UNet2DConditionModel.from_pretrained(str(base), subfolder="unet", local_files_only=True)
    unet.load_state_dict(load_file(str(checkpoint / (UNET_EMA_FILE if ema else UNET_FILE))), strict=True)
    vae = AutoencoderKL.from_pretrained(str(base), subfolder="vae", local_files_only=True)
    text = CLIPTextModel.from_pretrained(str(base / "text_encoder"), local_files_only=True)
    weights = Path(section.weights_dir)
    scheduler = {k: v for k, v in SD15_SCHEDULER_CONFIG.items()}
    extra = {"zizi_puppet": {"steps": steps, "ema": ema, "size": section.size, "seed": section.seed,
                             "pose_line_scale": config.data.pose_line_scale, "window": config.window.frames,
                             "command": command}}
    if "init_from" in origin:
        extra["zizi_puppet"]["init_from"] = origin["init_from"]
    base_file = save_base_checkpoint(weights / f"{section.name}_base.safetensors", unet, vae, text, scheduler,
                                     extra_metadata=extra)
    temporal_file = export_temporal(checkpoint, weights / f"{section.name}_temporal.safetensors", ema, torch.float16)
    return base_file, temporal_file


def puppet_command(path: str | Path, overrides: list[str] | None) -> str:
    """The command line that (re)makes a build, recorded in the exported files."""
    return " ".join(["python -m train puppet -c", str(path), *(f"--set {o}" for o in overrides or [])])


def run_puppet(path: str | Path, overrides: list[str] | None = None, stop_after: str | None = None) -> dict[str, Path]:
    """Run (or continue) every stage; returns the files written. `stop_after`: a stage name."""
    from .fit import fit

    section, fit_tree = load_puppet_config(path, overrides)
    run = Path(section.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    clips = make_clips(section, run / "clips.pt")
    out["clips"] = run / "clips.pt"
    if stop_after == "clips":
        return out
    make_base(section, clips, run / "base")
    out["base"] = run / "base"
    if stop_after == "base":
        return out
    make_dataset(section, clips, run / "base", run / "dataset")
    out["dataset"] = run / "dataset"
    if stop_after == "dataset":
        return out
    config = fit_config(section, fit_tree, run)
    fit(config, resume="latest")
    out["fit"] = run / "fit"
    if stop_after == "fit":
        return out
    out["base_checkpoint"], out["temporal"] = export_weights(section, run, config, puppet_command(path, overrides))
    return out

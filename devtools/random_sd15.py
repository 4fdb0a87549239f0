"""Seeded random-weight SD1.5 models for tests, benchmarks and the demo. Nothing is ever downloaded.

- ``full_sd15_checkpoint()``: a full-size SD1.5 single-file checkpoint in the original LDM key layout
  (UNet 320 channels / context 768, CLIP ViT-L text encoder, VAE), fp16, ~2 GB. ComfyUI's
  CheckpointLoaderSimple detects it as SD15. Speed does not depend on weight values, so it serves the
  benchmarks too.
- ``tiny_sd15_diffusers()``: a reduced-width SD1.5-family diffusers folder (unet / vae / text_encoder /
  tokenizer / scheduler) for fast unit tests.
- ``tiny_base_checkpoint()``: the same tiny model as one Zizi small-model file (``save_base_checkpoint``:
  LDM layout, architecture in the metadata), fp16; ``vae_levels=3`` swaps in a 3-level VAE (downscale 4).

Both are cached under ``.cache/models`` (git-ignored), keyed by seed and builder version, and written
atomically (temporary name + rename), so concurrent or interrupted builds never leave a broken file.
``python -m devtools.random_sd15 [--full] [--tiny] [--tiny-base]`` builds them ahead of a test run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from zizi_models.sd15_configs import (
    SD15_SCHEDULER_CONFIG,
    SD15_TEXT_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_CACHE = REPO_ROOT / ".cache" / "models"
BUILDER_VERSION = 3

log = logging.getLogger(__name__)

# Reduced widths, SD1.5's structure and GroupNorm(32) everywhere, so ComfyUI's LDM UNet/VAE (which
# hard-code 32 groups) compute exactly what diffusers computes for the same weights.
TINY_UNET_CONFIG = {
    **SD15_UNET_CONFIG,
    "sample_size": 8,
    "block_out_channels": [32, 64, 64, 64],
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
}
TINY_VAE_CONFIG = {**SD15_VAE_CONFIG, "block_out_channels": [32, 32, 64, 64], "sample_size": 64}
# 3 levels: downscale 4 (a latent pixel covers 4 x 4 image pixels), as a small model's VAE may have
TINY_VAE3_CONFIG = {
    **SD15_VAE_CONFIG,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 64],
    "sample_size": 64,
}
TINY_VAE_CONFIGS = {4: TINY_VAE_CONFIG, 3: TINY_VAE3_CONFIG}  # by number of levels
TINY_TEXT_CONFIG = {
    **SD15_TEXT_CONFIG,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "projection_dim": 32,
}


def build_unet(config: dict, seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**config).eval()


def build_vae(config: dict, seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed + 1)
    return AutoencoderKL(**config).eval()


def build_text_encoder(config: dict, seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed + 2)
    return CLIPTextModel(CLIPTextConfig(**config)).eval()


def _atomic_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


def _publish(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:  # another process published first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)


def full_sd15_checkpoint(seed: int = 0, cache: Path = MODELS_CACHE) -> Path:
    """Path to the cached full-size random SD1.5 LDM checkpoint (built on first use, ~30-60 s)."""
    from safetensors.torch import save_file

    from zizi_models.sd15_keys import to_ldm

    target = cache / f"sd15_random_seed{seed}_v{BUILDER_VERSION}.safetensors"
    if target.is_file():
        return target
    started = time.perf_counter()
    unet = build_unet(SD15_UNET_CONFIG, seed)
    vae = build_vae(SD15_VAE_CONFIG, seed)
    text = build_text_encoder(SD15_TEXT_CONFIG, seed)
    state = to_ldm(unet.state_dict(), vae.state_dict(), text.state_dict(), SD15_UNET_CONFIG, SD15_VAE_CONFIG)
    del unet, vae, text
    state = {k: v.to(torch.float16).contiguous() for k, v in state.items() if not k.endswith("position_ids")}
    staging = _atomic_dir(target)
    save_file(state, str(staging / target.name), metadata={"zizi.random_seed": str(seed), "zizi.kind": "random-sd15"})
    os.replace(staging / target.name, target)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("built %s (%.1f GB) in %.0f s", target.name, target.stat().st_size / 1e9, time.perf_counter() - started)
    return target


def clip_tokenizer_files() -> Path:
    """A folder with CLIP's vocab.json/merges.txt: the copy ComfyUI ships (no hub download)."""
    from devtools.comfyui_provision import find_comfyui

    folder = find_comfyui() / "comfy" / "sd1_tokenizer"
    if not (folder / "vocab.json").is_file():
        raise FileNotFoundError(f"CLIP tokenizer files not found in {folder}")
    return folder


def tiny_sd15_diffusers(seed: int = 0, cache: Path = MODELS_CACHE) -> Path:
    """Path to a cached tiny SD1.5-family diffusers folder (unet, vae, text_encoder, tokenizer, scheduler)."""
    target = cache / f"tiny_sd15_seed{seed}_v{BUILDER_VERSION}"
    if (target / "model_index.json").is_file():
        return target
    staging = _atomic_dir(target)
    build_unet(TINY_UNET_CONFIG, seed).save_pretrained(staging / "unet")
    build_vae(TINY_VAE_CONFIG, seed).save_pretrained(staging / "vae")
    build_text_encoder(TINY_TEXT_CONFIG, seed).save_pretrained(staging / "text_encoder")
    tokenizer_dir = staging / "tokenizer"
    tokenizer_dir.mkdir()
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        src = clip_tokenizer_files() / name
        if src.is_file():
            shutil.copy(src, tokenizer_dir / name)
    (staging / "scheduler").mkdir()
    scheduler = {"_class_name": "DDPMScheduler", **SD15_SCHEDULER_CONFIG}
    (staging / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2))
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDPMScheduler"],
    }
    (staging / "model_index.json").write_text(json.dumps(index, indent=2))
    _publish(staging, target)
    return target


def tiny_base_checkpoint(seed: int = 0, vae_levels: int = 4, cache: Path = MODELS_CACHE) -> Path:
    """Path to the cached tiny model (TINY_* configs) as one Zizi small-model file (fp16, ~13 MB)."""
    from zizi_models.base_checkpoint import save_base_checkpoint

    if vae_levels not in TINY_VAE_CONFIGS:
        raise ValueError(f"vae_levels: {vae_levels} not in {sorted(TINY_VAE_CONFIGS)}")
    target = cache / f"tiny_base_vae{vae_levels}_seed{seed}_v{BUILDER_VERSION}.safetensors"
    if target.is_file():
        return target
    staging = _atomic_dir(target)
    save_base_checkpoint(
        staging / target.name,
        build_unet(TINY_UNET_CONFIG, seed),
        build_vae(TINY_VAE_CONFIGS[vae_levels], seed),
        build_text_encoder(TINY_TEXT_CONFIG, seed),
        {"_class_name": "DDPMScheduler", **SD15_SCHEDULER_CONFIG},
        extra_metadata={"zizi.random_seed": seed, "zizi.kind": "random-tiny-base"},
    )
    os.replace(staging / target.name, target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def sd15_temporal_module(seed: int = 0, fresh: bool = False, cache: Path = MODELS_CACHE) -> Path:
    """A full-size SD1.5 temporal module file (fp16, ~0.9 GB) in the Zizi format.

    fresh=True: exactly as initialised (the inflated model equals the base model);
    fresh=False: every parameter perturbed with seeded noise, so the temporal layers really act.
    """
    from zizi_models.temporal import SD15_CONFIG, ZiziTemporalModel, save_temporal_model

    target = cache / f"sd15_temporal_{'fresh' if fresh else 'random'}_seed{seed}_v{BUILDER_VERSION}.safetensors"
    if target.is_file():
        return target
    torch.manual_seed(seed + 10)
    model = ZiziTemporalModel(SD15_CONFIG)
    if not fresh:
        generator = torch.Generator().manual_seed(seed + 11)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * 0.02)
    staging = _atomic_dir(target)
    save_temporal_model(model, staging / target.name, metadata={"random_seed": seed, "fresh": fresh}, dtype=torch.float16)
    os.replace(staging / target.name, target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the cached random SD1.5 models.")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 LDM checkpoint (~2 GB)")
    parser.add_argument("--tiny", action="store_true", help="tiny diffusers folder")
    parser.add_argument("--tiny-base", action="store_true", help="tiny Zizi small-model files (4- and 3-level VAE)")
    parser.add_argument("--temporal", action="store_true", help="full-size temporal modules (fresh + random)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.full:
        print(full_sd15_checkpoint(args.seed))  # noqa: T201 - the CLI's output is the path
    if args.tiny:
        print(tiny_sd15_diffusers(args.seed))  # noqa: T201
    if args.tiny_base:
        for levels in sorted(TINY_VAE_CONFIGS, reverse=True):
            print(tiny_base_checkpoint(args.seed, vae_levels=levels))  # noqa: T201
    if args.temporal:
        print(sd15_temporal_module(args.seed, fresh=True))  # noqa: T201
        print(sd15_temporal_module(args.seed, fresh=False))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

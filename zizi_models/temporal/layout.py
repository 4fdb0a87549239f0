"""Checkpoint key layout: model keys <-> file keys, and the config implied by tensor shapes.

File layout (one .safetensors):
    down_blocks.{i}.motion_modules.{j}.temporal_transformer.*   AnimateDiff layout, unchanged
    mid_block.motion_modules.0.temporal_transformer.*           (v2-style files only)
    up_blocks.{i}.motion_modules.{j}.temporal_transformer.*
    zizi.<model key>                                            everything new (conv_in_extra, aug_embedding,
                                                                temporal_convs, pose_encoder, ...)

AnimateDiff SD1.5 motion module of C channels (v1/v2/v3 share it; 8 heads, 1 transformer block):
    temporal_transformer.norm.{weight,bias}                                  [C]
    temporal_transformer.proj_in.{weight [C, C], bias [C]}
    temporal_transformer.transformer_blocks.0.attention_blocks.{0,1}.
        to_q.weight, to_k.weight, to_v.weight, to_out.0.weight               [C, C]
        to_out.0.bias                                                        [C]
        pos_encoder.pe                                                       [1, 32, C]  (v1: [1, 24, C])
    temporal_transformer.transformer_blocks.0.norms.{0,1}.{weight,bias}      [C]
    temporal_transformer.transformer_blocks.0.ff.net.0.proj.{weight [8C, C], bias [8C]}
    temporal_transformer.transformer_blocks.0.ff.net.2.{weight [C, 4C], bias [C]}
    temporal_transformer.transformer_blocks.0.ff_norm.{weight,bias}          [C]
    temporal_transformer.proj_out.{weight [C, C], bias [C]}
Down blocks 0..3 hold 2 modules (C = 320, 640, 1280, 1280), up blocks 0..3 hold 3
(C = 1280, 1280, 640, 320), v2 adds mid_block.motion_modules.0 (C = 1280).

diffusers `MotionAdapter` files (no `temporal_transformer.`, attn1/attn2/norm1..3, one
`pos_embed.pe` per transformer block) are renamed to this layout on read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from .config import TemporalModelConfig

logger = logging.getLogger(__name__)

ZIZI_PREFIX = "zizi."
DEFAULT_MAX_POSITIONS = 32
ANIMATEDIFF_HEADS = 8  # not recoverable from shapes; every AnimateDiff SD1.5 module uses 8

_MOTION_KEY = re.compile(r"^(?:(?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.\d+\.")
_MOTION_PARTS = re.compile(
    r"^(?P<prefix>(?:(?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.\d+)\.(?P<rest>.*)$"
)
_DIFFUSERS_BLOCK_PARTS = {
    "attn1": "attention_blocks.0",
    "attn2": "attention_blocks.1",
    "norm1": "norms.0",
    "norm2": "norms.1",
    "norm3": "ff_norm",
}

Shapes = Mapping[str, tuple[int, ...]]


def is_motion_key(key: str) -> bool:
    return _MOTION_KEY.match(key) is not None


def to_file_key(model_key: str) -> str:
    """Model state-dict key -> file key (motion modules unchanged, the rest under `zizi.`)."""
    return model_key if is_motion_key(model_key) else ZIZI_PREFIX + model_key


def to_model_key(file_key: str) -> str:
    return file_key[len(ZIZI_PREFIX) :] if file_key.startswith(ZIZI_PREFIX) else file_key


def is_diffusers_motion_adapter(keys: list[str]) -> bool:
    motion = [k for k in keys if is_motion_key(k)]
    return bool(motion) and not any(".temporal_transformer." in k for k in motion)


def diffusers_to_animatediff_keys(keys: list[str]) -> dict[str, list[str]]:
    """diffusers MotionAdapter key -> AnimateDiff key(s) (`pos_embed.pe` feeds both attention blocks)."""
    mapping: dict[str, list[str]] = {}
    for key in keys:
        match = _MOTION_PARTS.match(key)
        if match is None:
            mapping[key] = [key]
            continue
        prefix, parts = match["prefix"], match["rest"].split(".")
        if parts[0] == "transformer_blocks" and len(parts) > 2:
            head, sub, tail = parts[:2], parts[2], parts[3:]
            if sub == "pos_embed":
                mapping[key] = [
                    ".".join(
                        [prefix, "temporal_transformer", *head, f"attention_blocks.{a}.pos_encoder", *tail]
                    )
                    for a in (0, 1)
                ]
                continue
            parts = [*head, _DIFFUSERS_BLOCK_PARTS.get(sub, sub), *tail]
        mapping[key] = [".".join([prefix, "temporal_transformer", *parts])]
    return mapping


def _indices(pattern: str, keys: list[str]) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def _require_contiguous(name: str, indices: list[int]) -> None:
    if indices != list(range(len(indices))):
        raise ValueError(f"temporal module has {name} {indices}; expected 0..{len(indices) - 1} without gaps")


def infer_config(shapes: Shapes, overrides: Mapping | None = None) -> TemporalModelConfig:
    """Build the config implied by model-key tensor shapes (AnimateDiff files carry no metadata).

    Channels come from proj_in, max_positions from pos_encoder.pe, transformer/attention block
    counts from the key indices, ff_mult from ff.net.2; heads default to AnimateDiff's 8.
    """
    keys = list(shapes)
    down = _indices(r"^down_blocks\.(\d+)\.motion_modules\.", keys)
    up = _indices(r"^up_blocks\.(\d+)\.motion_modules\.", keys)
    if not down or not up:
        raise ValueError("temporal module must have motion modules in both down_blocks and up_blocks")
    _require_contiguous("down block indices", down)
    _require_contiguous("up block indices", up)
    if len(down) != len(up):
        raise ValueError(f"temporal module has {len(down)} down blocks but {len(up)} up blocks")

    def channels(kind: str, block: int, layers: list[int]) -> int:
        found = set()
        for j in layers:
            key = f"{kind}.{block}.motion_modules.{j}.temporal_transformer.proj_in.weight"
            if key not in shapes:
                raise ValueError(f"temporal module is missing '{key}'")
            out_dim, in_dim = shapes[key]
            if out_dim != in_dim:
                raise ValueError(
                    f"'{key}' has shape {tuple(shapes[key])}; only inner dim == channels is supported"
                )
            found.add(in_dim)
        if len(found) != 1:
            raise ValueError(f"{kind}.{block} motion modules disagree on channels: {sorted(found)}")
        return found.pop()

    def layers_of(kind: str, block: int) -> list[int]:
        layers = _indices(rf"^{kind}\.{block}\.motion_modules\.(\d+)\.", keys)
        _require_contiguous(f"{kind}.{block} motion module indices", layers)
        return layers

    down_layers = [layers_of("down_blocks", i) for i in down]
    up_layers = [layers_of("up_blocks", i) for i in up]
    if len({len(x) for x in down_layers}) != 1 or len({len(x) for x in up_layers}) != 1:
        raise ValueError("temporal module has a different number of motion modules per block")
    block_out = tuple(channels("down_blocks", i, down_layers[i]) for i in down)
    up_channels = tuple(channels("up_blocks", i, up_layers[i]) for i in up)
    if up_channels != tuple(reversed(block_out)):
        raise ValueError(
            f"up block channels {up_channels} are not the down block channels {block_out} reversed"
        )

    first = "down_blocks.0.motion_modules.0.temporal_transformer"
    transformer_blocks = _indices(rf"^{re.escape(first)}\.transformer_blocks\.(\d+)\.", keys)
    attention_blocks = _indices(
        rf"^{re.escape(first)}\.transformer_blocks\.0\.attention_blocks\.(\d+)\.", keys
    )
    _require_contiguous("transformer block indices", transformer_blocks)
    _require_contiguous("attention block indices", attention_blocks)
    ff_key = f"{first}.transformer_blocks.0.ff.net.2.weight"
    if ff_key not in shapes:
        raise ValueError(f"temporal module is missing '{ff_key}'")
    ff_mult = shapes[ff_key][1] // block_out[0]

    pe_lengths = {
        shape[1] for k, shape in shapes.items() if k.endswith("pos_encoder.pe") and is_motion_key(k)
    }
    if len(pe_lengths) > 1:
        raise ValueError(f"temporal module's pos_encoder.pe tables disagree on length: {sorted(pe_lengths)}")
    if pe_lengths:
        max_positions = pe_lengths.pop()
    else:
        max_positions = DEFAULT_MAX_POSITIONS
        logger.warning("temporal module has no pos_encoder.pe; assuming max_positions=%d", max_positions)

    fields: dict = dict(
        block_out_channels=block_out,
        down_layers=len(down_layers[0]),
        up_layers=len(up_layers[0]),
        has_mid=any(k.startswith("mid_block.motion_modules.") for k in keys),
        heads=ANIMATEDIFF_HEADS,
        num_transformer_blocks=len(transformer_blocks),
        num_attention_blocks=len(attention_blocks),
        ff_mult=ff_mult,
        max_positions=max_positions,
        time_embed_dim=4 * block_out[0],
        aug_embed_dim=block_out[0],
    )
    if "conv_in_extra.weight" in shapes:
        _, extra, kernel, _ = shapes["conv_in_extra.weight"]
        fields.update(extra_in_channels=extra, conv_in_kernel=kernel)
    if "aug_embedding.linear_1.weight" in shapes:
        time_embed_dim, aug_embed_dim = shapes["aug_embedding.linear_1.weight"]
        fields.update(time_embed_dim=time_embed_dim, aug_embed_dim=aug_embed_dim)
    conv_keys = [k for k in shapes if k.startswith("temporal_convs.") and k.endswith("conv.weight")]
    if conv_keys:
        mid_convs = _indices(r"^temporal_convs\.mid_block\.(\d+)\.", keys)
        fields.update(
            has_temporal_conv=True, temporal_conv_kernel=shapes[conv_keys[0]][2], mid_resnets=len(mid_convs)
        )
    if "pose_encoder.stem.weight" in shapes:
        base_width, pose_channels = shapes["pose_encoder.stem.weight"][:2]
        stages = _indices(r"^pose_encoder\.stages\.(\d+)\.", keys)
        fields.update(pose_channels=pose_channels, pose_base_width=base_width, pose_downscale=2 ** len(stages))
    fields.update(overrides or {})
    return TemporalModelConfig(**fields)

"""Where temporal layers sit in an LDM-style UNet (the original SD / ComfyUI `openaimodel` layout).

diffusers names blocks down_blocks[i].resnets[j]; the LDM UNet flattens them into
`input_blocks[n]` (conv_in, then per level: layers_per_block x (ResBlock[, SpatialTransformer]),
then a Downsample except at the last level), `middle_block` (ResBlock, SpatialTransformer,
ResBlock) and `output_blocks[n]` (per level: layers_per_block + 1 x (ResBlock[, SpatialTransformer]
[, Upsample])). `ldm_block_site` maps an LDM block to the (kind, block, layer) that
`ZiziTemporalModel.motion_module_at` / `temporal_conv_at` take, so a host that patches the LDM
UNet inserts exactly the layers `ZiziVideoUNet` inserts into diffusers' UNet.

In output blocks that end with an Upsample the motion module goes before the Upsample
(after the ResBlock/SpatialTransformer), as in AnimateDiff.
"""

from __future__ import annotations

from typing import Literal

from .model import BlockKind

LdmSection = Literal["input", "middle", "output"]


def ldm_block_site(
    section: LdmSection, index: int = 0, layers_per_block: int = 2, num_levels: int = 4
) -> tuple[BlockKind, int, int] | None:
    """(kind, block, layer) of the temporal layers following LDM block `section[index]`, or None.

    None for input_blocks[0] (conv_in) and the Downsample blocks. For SD1.5
    (layers_per_block 2, 4 levels): input_blocks 1, 2, 4, 5, 7, 8, 10, 11 -> down (0,0) ... (3,1);
    middle_block -> mid (0,0); output_blocks n -> up (n // 3, n % 3).
    """
    if section == "middle":
        return ("mid", 0, 0)
    if section == "input":
        if index == 0:
            return None
        level, position = divmod(index - 1, layers_per_block + 1)
        if position == layers_per_block or level >= num_levels:
            return None  # a Downsample block (or past the end)
        return ("down", level, position)
    if section == "output":
        level, layer = divmod(index, layers_per_block + 1)
        return ("up", level, layer) if level < num_levels else None
    raise ValueError(f"unknown LDM UNet section {section!r}; expected 'input', 'middle' or 'output'")

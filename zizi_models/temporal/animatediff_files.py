"""AnimateDiff motion modules as released: pickled `.ckpt` / `.pt` files, read without running code.

`read_pickled_tensors` opens them with `torch.load(weights_only=True)`, PyTorch's restricted unpickler
(the one ComfyUI's load_torch_file(safe_load=True) uses): only tensors, dicts, lists and plain numbers
come out; a pickle that names any other global (`os.system`, a class with `__reduce__`) is refused
before that global is ever imported or called. An explicit `weights_only=True` is not overridden by
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.

Released layouts (all SD1.5, key names as in layout.py, nothing but motion-module tensors):
    mm_sd_v14.ckpt, mm_sd_v15.ckpt   v1: down/up blocks, no mid block, pos_encoder.pe [1, 24, C]
    mm_sd_v15_v2.ckpt                v2: + mid_block.motion_modules.0,  pos_encoder.pe [1, 32, C]
    v3_sd15_mm.ckpt                  v3: no mid block,                  pos_encoder.pe [1, 32, C]
Training checkpoints wrap the tensors as {"state_dict": {...}, "global_step": N, ...}; both forms load.
SDXL motion modules (AnimateDiff-SDXL: 3 blocks 320/640/1280; HotShot-XL: `temporal_attentions` keys)
are refused by their shapes.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SD15_CHANNELS = (320, 640, 1280, 1280)
_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|global|GLOBAL)\s+([\w.]+)")


def looks_pickled(path: Path) -> bool:
    """True for a PyTorch zip archive or a raw pickle (by the first bytes), whatever the suffix."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def _refused_global(message: str) -> str | None:
    match = _GLOBAL.search(message)
    return match.group(1) if match else None


def read_pickled_tensors(path: Path) -> dict[str, torch.Tensor]:
    """name -> tensor of a pickled state dict (optionally under "state_dict"), loaded weights-only.

    Raises ValueError with one line naming the file for: a pickle that would run code or build objects,
    a truncated or damaged file, a file that holds no dict of tensors.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "weights_only" in text.lower() or "global" in text.lower():
            name = _refused_global(text)
            what = f"'{name}'" if name else "an object other than tensors"
            raise ValueError(
                f"{path} is refused: its pickle would import and call {what}, which can run code; "
                f"a motion module holds tensors only (read with torch.load(weights_only=True))"
            ) from None
        raise ValueError(f"{path} is damaged or truncated ({_first_line(err)}); expected a complete PyTorch .ckpt/.pt file") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as err:
        raise ValueError(
            f"{path} is damaged or truncated ({type(err).__name__}: {_first_line(err)}); "
            f"expected a complete PyTorch .ckpt/.pt file"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, expected a dict of tensors (a motion module state dict)")
    tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    skipped = len(loaded) - len(tensors)
    if skipped:
        logger.info("%s: ignoring %d entries that are not named tensors", path.name, skipped)
    return tensors


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def sdxl_refusal(path: Path, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """A one-line reason when the tensors are an SDXL motion module (else None)."""
    keys = list(shapes)
    if any(".temporal_attentions." in k for k in keys):
        return (f"{path} is a HotShot-XL motion module (for SDXL, 'temporal_attentions' keys); "
                f"expected an SD1.5 motion module (channels {SD15_CHANNELS})")
    channels = []
    for block in range(8):
        key = f"down_blocks.{block}.motion_modules.0.temporal_transformer.proj_in.weight"
        if key not in shapes:
            break
        channels.append(shapes[key][-1])
    if len(channels) == 3 and channels[-1] == 1280:
        return (f"{path} is a motion module for SDXL (AnimateDiff-SDXL layout: {len(channels)} blocks with "
                f"channels {tuple(channels)}); expected an SD1.5 motion module (4 blocks, channels {SD15_CHANNELS})")
    return None


def animatediff_version(shapes: dict[str, tuple[int, ...]]) -> str:
    """'v1' | 'v2' | 'v3' as ADE names them: v2 has a mid block; v3 has none and 32 positions; v1 24."""
    if any(k.startswith("mid_block.") for k in shapes):
        return "v2"
    lengths = {s[1] for k, s in shapes.items() if k.endswith("pos_encoder.pe")}
    return "v3" if lengths == {32} else "v1"

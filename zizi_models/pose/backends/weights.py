"""Finding detector weight files in a local directory (never on a model hub)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# How deep below the given directory to look (comfyui_controlnet_aux nests its checkpoints
# as ckpts/<org>/<repo>/[annotator/ckpts/]<file>).
MAX_DEPTH = 5


class MissingWeightsError(FileNotFoundError):
    """Raised when required weight files are not in the weights directory."""


def _walk(root: Path, max_depth: int) -> dict[str, Path]:
    """file name -> first path found (breadth-first, shallowest wins) under ``root``."""
    found: dict[str, Path] = {}
    level = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.is_file():
                    found.setdefault(e.name, Path(e.path))
                elif e.is_dir():
                    nxt.append(Path(e.path))
        level = nxt
    return found


def find_weights(
    weights_dir: str | os.PathLike[str] | None, required: dict[str, Sequence[str]], what: str
) -> dict[str, Path]:
    """Locate one file per role in ``weights_dir`` (searched recursively, ``MAX_DEPTH`` levels).

    required: role -> accepted file names, in order of preference.
    Raises ``MissingWeightsError`` listing the exact file names expected and the directory searched.
    """
    if weights_dir is None or str(weights_dir) == "":
        raise MissingWeightsError(f"{what}: no weights directory given; expected " + expected_names(required))
    root = Path(weights_dir).expanduser()
    if not root.is_dir():
        raise MissingWeightsError(f"{what}: weights directory {str(root)!r} does not exist; expected " + expected_names(required))
    files = _walk(root, MAX_DEPTH)
    out: dict[str, Path] = {}
    missing: dict[str, Sequence[str]] = {}
    for role, names in required.items():
        hit = next((files[n] for n in names if n in files), None)
        if hit is None:
            missing[role] = names
        else:
            out[role] = hit
    if missing:
        raise MissingWeightsError(
            f"{what}: weight files not found in {str(root.resolve())!r} (searched {MAX_DEPTH} levels deep); "
            + "expected "
            + expected_names(missing)
            + ". Download them yourself and put them there; nothing is downloaded at run time."
        )
    return out


def expected_names(required: dict[str, Sequence[str]]) -> str:
    """{"det": ("a.onnx", "a.pt")} -> "det: 'a.onnx' or 'a.pt'"."""
    return "; ".join(f"{role}: {' or '.join(repr(n) for n in names)}" for role, names in required.items())

"""What ``auto`` (0) means for a node's window and stride: the values the temporal module was trained with.

Our trainer records them in the file's metadata (``train/artifacts.py``)::

    trained_window   int, frames per training window, anchor included (the puppet model: 8)
    trained_stride   {"starter": [...], "extrapolate": [1, 2, 4], "interpolate": [...], ...}
                     (an int or a list of ints is read too)

The stride used is the largest extrapolation stride trained (the loop's stride is the spacing of
extrapolated frames; the gaps are interpolated). A module that records neither (AnimateDiff v1/v2/v3
files, diffusers MotionAdapters, a Zizi file saved without training facts) gets AnimateDiff's training
window, 16 frames, and stride 4 (seed 001's stride; AnimateDiff was trained on contiguous 16-frame clips
at a frame step of 4 in WebVid). The window is never wider than the module's ``max_positions``.

The loader keeps a file's metadata on the model it returns (``attach_file_facts``), so nodes that only
hold the loaded model can still resolve ``auto``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

AUTO = 0  # the widget value that means "the module's own"
ANIMATEDIFF_WINDOW = 16
ANIMATEDIFF_STRIDE = 4
METADATA_ATTR = "file_metadata"  # parsed safetensors metadata of the file the model was loaded from
SOURCE_ATTR = "source_format"  # "zizi-temporal" | "animatediff" | "diffusers-motion-adapter" | ...


@dataclass(frozen=True)
class TrainedDefaults:
    window: int
    stride: int
    source: str  # where the values come from, said in the plan text

    def describe(self) -> str:
        return f"window {self.window}, stride {self.stride} ({self.source})"


def attach_file_facts(model: Any, metadata: Mapping[str, Any] | None, source_format: str | None) -> Any:
    """Keep a file's parsed metadata and source format on the model loaded from it (returns the model)."""
    setattr(model, METADATA_ATTR, dict(metadata or {}))
    setattr(model, SOURCE_ATTR, source_format)
    return model


def _positive_int(value: Any, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < minimum:
        return None
    return int(value)


def _stride_of(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("extrapolate")
    if isinstance(value, list | tuple):
        strides = [s for s in (_positive_int(v, 1) for v in value) if s is not None]
        return max(strides) if strides else None
    return _positive_int(value, 1)


def trained_defaults(metadata: Mapping[str, Any] | None, source_format: str | None = None,
                     max_positions: int | None = None) -> TrainedDefaults:
    """The window and stride for ``auto`` from a temporal module file's parsed metadata."""
    metadata = metadata or {}
    window = _positive_int(metadata.get("trained_window"), 2)
    stride = _stride_of(metadata.get("trained_stride"))
    kind = "AnimateDiff module" if source_format and source_format != "zizi-temporal" else "module"
    if window is not None and stride is not None:
        source = "the module's trained_window / trained_stride"
    elif window is None and stride is None:
        source = (f"{kind} records no trained window/stride: AnimateDiff's {ANIMATEDIFF_WINDOW} frames, "
                  f"stride {ANIMATEDIFF_STRIDE}")
    else:
        source = ("the module's trained_window, stride " + str(ANIMATEDIFF_STRIDE) if stride is None
                  else f"the module's trained_stride, window {ANIMATEDIFF_WINDOW}")
    window = ANIMATEDIFF_WINDOW if window is None else window
    stride = ANIMATEDIFF_STRIDE if stride is None else stride
    if max_positions is not None and window > max_positions:
        window, source = max_positions, f"{source}; window cut to the module's {max_positions} positions"
    return TrainedDefaults(window, stride, source)


def trained_defaults_of(temporal: Any) -> TrainedDefaults:
    """``trained_defaults`` of a loaded ZiziTemporalModel (its file metadata, when the loader kept it)."""
    metadata = getattr(temporal, METADATA_ATTR, None)
    max_positions = getattr(getattr(temporal, "config", None), "max_positions", None)
    if metadata is None:
        log.warning("the temporal module carries no file metadata; auto window/stride use AnimateDiff's defaults")
    return trained_defaults(metadata, getattr(temporal, SOURCE_ATTR, None), max_positions)


def resolve(value: int, default: int) -> int:
    """A widget value: ``AUTO`` (0) -> ``default``, anything else as it is."""
    return default if value == AUTO else value

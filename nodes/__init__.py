"""ComfyUI nodes of the pack: thin wrappers that parse inputs, call zizi_models and report progress."""

from __future__ import annotations

from . import (
    checkpoint_nodes,
    loop_controller,
    pose_nodes,
    reference_nodes,
    temporal_nodes,
    video_nodes,
    window_samplers,
)
from .comfy import folders
from .input_ranges import with_declared_ranges

folders.register_model_folders()

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in (video_nodes, pose_nodes, temporal_nodes, checkpoint_nodes, loop_controller, window_samplers,
                reference_nodes):
    NODE_CLASS_MAPPINGS.update({name: with_declared_ranges(cls) for name, cls in _module.NODE_CLASS_MAPPINGS.items()})
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

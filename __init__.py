"""Zizi Video: ComfyUI entry point. Registers the nodes, nothing else."""

import sys

if "folder_paths" in sys.modules:  # loaded by ComfyUI, whose main.py imports folder_paths first
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:  # imported outside ComfyUI (pytest collects the repo root as a package): nothing to register
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

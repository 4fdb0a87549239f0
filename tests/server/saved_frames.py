"""Helpers for server tests that compare a loop controller's frames losslessly: the prompt's video saver
replaced by SaveImage PNGs, optionally with ZiziReferenceAttention between the temporal loader and the
controller."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from devtools.comfy_client import ComfyClient
from devtools.workflows import node_ids

REFERENCE = "90"  # the node id the tests give ZiziReferenceAttention
SAVE = "91"


def frames_of(comfy: ComfyClient, prompt: dict) -> np.ndarray:
    """Queue the prompt; the controller's frames as saved by SaveImage, [F, H, W, 3] uint8."""
    files = comfy.run(prompt, timeout=900).output_files(SAVE)
    return np.stack([np.asarray(Image.open(io.BytesIO(comfy.view(f))).convert("RGB")) for f in files])


def with_reference(prompt: dict, reference: dict | None, prefix: str) -> dict:
    """The prompt with ZiziReferenceAttention (``reference``: its inputs, None = no node) between the temporal
    loader and the controller, and the controller's IMAGE saved as PNGs."""
    prompt = {k: {**v, "inputs": dict(v["inputs"])} for k, v in prompt.items()}
    loader = node_ids(prompt, "ZiziTemporalModelLoader")[0]
    controller = node_ids(prompt, "ZiziLoopController")[0]
    for saver in node_ids(prompt, "ZiziSaveVideo"):
        del prompt[saver]
    if reference is not None:
        prompt[REFERENCE] = {"class_type": "ZiziReferenceAttention", "inputs": {"model": [loader, 0], **reference}}
        prompt[controller]["inputs"]["model"] = [REFERENCE, 0]
    prompt[SAVE] = {"class_type": "SaveImage", "inputs": {"images": [controller, 0], "filename_prefix": prefix}}
    return prompt


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())

"""Models ComfyUI does not know (MediaPipe graphs, controlnet-aux networks: the pose detectors) are
registered with ComfyUI's model management through a weightless ModelPatcher, so that ComfyUI
unloading models (``POST /free``, ``unload_all_models``, ``free_memory`` under memory pressure)
releases them too. Nothing of ComfyUI is patched: this uses ModelPatcher's ON_DETACH callback.
"""

from __future__ import annotations

from collections.abc import Callable

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
from torch import nn


class ZiziExternalModel(nn.Module):
    """Weightless stand-in that ComfyUI's model management lists for an external model."""


def external_model_handle(name: str, on_unload: Callable[[], None], size_bytes: int = 0) -> object:
    """A handle that puts an external model under ComfyUI's model management.

    ``on_unload()`` is called when ComfyUI unloads it (``LoadedModel.model_unload`` -> ``ModelPatcher.detach``
    with ``unpatch_all=True``: ``/free`` with ``unload_models``/``free_memory``, or ``free_memory`` making
    room for another model). Re-registering it (``external_model_in_use``) and garbage collection detach
    with ``unpatch_all=False`` and do not call it. ``size_bytes`` is what ComfyUI accounts for it.
    Keep the handle alive (e.g. module level) and never drop its last reference inside ``on_unload``:
    ComfyUI's ``free_memory`` loop indexes its model list and breaks if the model it is unloading
    is garbage collected (and removed from that list) in the middle of the unload.
    """
    stub = ZiziExternalModel()
    stub.zizi_external_model = name
    patcher = comfy.model_patcher.ModelPatcher(
        stub,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
        size=max(1, int(size_bytes)),  # > 0, else ComfyUI re-measures the (empty) module every time
    )

    def on_detach(_patcher: object, unpatch_all: bool) -> None:
        if unpatch_all:
            on_unload()

    patcher.add_callback(comfy.patcher_extension.CallbacksMP.ON_DETACH, on_detach)
    return patcher


def external_model_in_use(handle: object) -> None:
    """Tell ComfyUI the external model is (still) loaded and in use: call before each use."""
    comfy.model_management.load_models_gpu([handle])

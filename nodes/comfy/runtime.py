"""ComfyUI's runtime: progress bars, interrupt checks, the compute device."""

from __future__ import annotations

import comfy.model_management
import comfy.utils


def progress_bar(total: int) -> comfy.utils.ProgressBar:
    """ComfyUI's progress bar (shown on the node in the UI and sent as websocket ``progress`` events)."""
    return comfy.utils.ProgressBar(total)


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel or POSTed ``/interrupt``."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def torch_device() -> str:
    """The device ComfyUI computes on ("cuda:0", "cpu", ...); honours ``--cpu``."""
    return str(comfy.model_management.get_torch_device())
